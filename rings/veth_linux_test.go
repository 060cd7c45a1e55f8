package rings

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/rail-lb/rail/internal/privtest"
)

// lab is a network namespace with a veth pair: rgtA (the rail side,
// 10.0.0.2 = local, MAC macA) and rgtB (the router side, no address, MAC
// macB). The namespace, and with it the pair, is deleted when the test ends.
type lab struct {
	ns         string
	idxA, idxB int
}

func run(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func newLab(t *testing.T) *lab {
	t.Helper()
	privtest.Require(t)
	ns := fmt.Sprintf("rgt%d-%d", os.Getpid(), time.Now().UnixNano()%100000)
	run(t, "ip", "netns", "add", ns)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v %s", ns, err, out)
		}
	})
	mac := func(m [6]byte) string { return net.HardwareAddr(m[:]).String() }
	for _, args := range [][]string{
		{"link", "add", "rgtA", "address", mac(macA), "type", "veth", "peer", "name", "rgtB", "address", mac(macB)},
		{"link", "set", "rgtA", "up"},
		{"link", "set", "rgtB", "up"},
		{"addr", "add", "10.0.0.2/24", "dev", "rgtA"},
		{"neigh", "replace", "10.0.0.1", "lladdr", mac(macB), "dev", "rgtA"},
	} {
		run(t, append([]string{"ip", "-n", ns}, args...)...)
	}
	l := &lab{ns: ns}
	l.enter(t, func() {
		a, err := net.InterfaceByName("rgtA")
		if err != nil {
			t.Fatal(err)
		}
		b, err := net.InterfaceByName("rgtB")
		if err != nil {
			t.Fatal(err)
		}
		l.idxA, l.idxB = a.Index, b.Index
	})
	return l
}

// enter runs f on this goroutine's OS thread switched into the lab's
// namespace. Sockets and links created inside stay in the namespace.
func (l *lab) enter(t testing.TB, f func()) {
	t.Helper()
	runtime.LockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer orig.Close()
	target, err := os.Open("/var/run/netns/" + l.ns)
	if err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		runtime.UnlockOSThread()
		t.Fatal(err)
	}
	defer func() {
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			t.Errorf("setns back: %v (thread discarded)", err)
			return // keep the thread locked: it dies with the goroutine
		}
		runtime.UnlockOSThread()
	}()
	f()
}

func (l *lab) xdpAttached(t testing.TB) bool {
	return strings.Contains(run(t, "ip", "-n", l.ns, "link", "show", "rgtA"), "xdp")
}

// packetSock is an AF_PACKET socket on the router side.
type packetSock struct {
	fd, ifindex int
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func newPacketSock(t *testing.T, ifindex int) *packetSock {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, int(htons(unix.ETH_P_ALL)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
		t.Fatal(err)
	}
	// Our own sends would otherwise fill the receive buffer.
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_IGNORE_OUTGOING, 1); err != nil {
		t.Fatal(err)
	}
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 8<<20); err != nil {
		t.Fatal(err)
	}
	tv := unix.NsecToTimeval(int64(20 * time.Millisecond))
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	return &packetSock{fd: fd, ifindex: ifindex}
}

func (p *packetSock) send(t *testing.T, frame []byte) {
	t.Helper()
	sa := &unix.SockaddrLinklayer{Ifindex: p.ifindex, Halen: 6}
	copy(sa.Addr[:], frame[0:6])
	if err := unix.Sendto(p.fd, frame, 0, sa); err != nil {
		t.Fatalf("AF_PACKET send of %d bytes: %v", len(frame), err)
	}
}

// recv returns the next frame that arrived on the interface (not one
// sent from it), or nil after the socket's 20 ms timeout.
func (p *packetSock) recv(buf []byte) []byte {
	for {
		n, from, err := unix.Recvfrom(p.fd, buf, 0)
		if err != nil {
			return nil
		}
		if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
			continue
		}
		return buf[:n]
	}
}

// expectFrame reads until match accepts a frame or the deadline passes.
func (p *packetSock) expectFrame(d time.Duration, match func([]byte) bool) bool {
	buf := make([]byte, 9000)
	for end := time.Now().Add(d); time.Now().Before(end); {
		if f := p.recv(buf); f != nil && match(f) {
			return true
		}
	}
	return false
}

const echoType = 0x88b5 // IEEE local experimental EtherType for the echoed frames

func TestVethTraffic(t *testing.T) {
	small := DefaultOpts()
	small.FrameSize, small.FrameCount, small.Headroom = 2048, 512, 128
	small.FillSize, small.CompletionSize, small.RxSize, small.TxSize = 256, 256, 256, 64
	for _, c := range []struct {
		name string
		opts Opts
	}{{"default", DefaultOpts()}, {"2048-byte frames, headroom 128", small}} {
		t.Run(c.name, func(t *testing.T) {
			l := newLab(t)
			l.enter(t, func() { vethTraffic(t, l, c.opts) })
			if l.xdpAttached(t) {
				t.Errorf("an XDP program is still attached after Close:\n%s", run(t, "ip", "-n", l.ns, "link", "show", "rgtA"))
			}
		})
	}
}

func vethTraffic(t *testing.T, l *lab, o Opts) {
	// veth has no zero-copy AF_XDP: ZeroCopyOn must fail and say why.
	zo := o
	zo.ZeroCopy = ZeroCopyOn
	if s, err := Open(l.idxA, 0, zo); err == nil {
		s.Close()
		t.Error("ZeroCopyOn on veth succeeded")
	} else if !strings.Contains(err.Error(), "XDP_ZEROCOPY") {
		t.Errorf("ZeroCopyOn error does not name XDP_ZEROCOPY: %v", err)
	} else {
		t.Logf("ZeroCopyOn: %v", err)
	}

	s, err := Open(l.idxA, 0, o)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	defer func() {
		if !closed {
			s.Close()
		}
	}()
	if s.ZeroCopy() {
		t.Error("ZeroCopy() = true on veth, want copy mode")
	}
	fill := min(o.FillSize, o.FrameCount)
	if c := s.Frames(); c != (FrameCounts{Free: o.FrameCount - fill, Fill: fill}) {
		t.Errorf("at rest: %+v", c)
	}

	p, err := LoadSteer()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.SetLocals(testLocals()); err != nil {
		t.Fatal(err)
	}
	if err := p.SetServices(testServices()); err != nil {
		t.Fatal(err)
	}
	mode, err := p.Attach(l.idxA, XDPAuto)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("attached in %s mode", mode)
	if _, err := p.Attach(l.idxA, XDPAuto); err == nil {
		t.Error("second Attach succeeded")
	}
	if !l.xdpAttached(t) {
		t.Fatal("ip link shows no XDP program after Attach")
	}
	if err := p.Register(0, s); err != nil {
		t.Fatal(err)
	}

	// With a socket registered, the attached program itself (steer, not
	// steer_probe) redirects exactly the frames Run calls ours.
	for _, c := range verdictCases() {
		if len(c.frame) < 14 {
			continue
		}
		ret, err := p.objs.Steer.Run(&ebpf.RunOptions{Data: c.frame})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if (ret == xdpRedirect) != c.redirect || (ret != xdpRedirect && ret != xdpPass) {
			t.Errorf("%s: steer returned %d, want redirect=%v", c.name, ret, c.redirect)
		}
	}

	ps := newPacketSock(t, l.idxB)

	// Ours: GRE to the local address carrying TCP to vipWeb:80. The
	// worker echoes every frame back, prepending a 16-byte header into the
	// headroom: Ethernet(dst macB, src macA, echoType) + 2-byte sequence.
	const N = 300
	sent := make([][]byte, N)
	for i := range sent {
		inner := ip4(client, vipWeb, 6, l4(uint16(i), 80, 20+i%200), nil)
		sent[i] = greIn(inner)
		// greIn writes dst macA, src macB: towards rgtA.
	}
	descs := make([]Desc, 64)
	got := 0
	offs := map[int]int{}
	deadline := time.Now().Add(10 * time.Second)
	next := 0
	transmits := 0
	for got < N && time.Now().Before(deadline) {
		// Keep at most 64 frames in flight: bursts larger than the
		// kernel's copy-mode batch per sendto (32), small enough that
		// nothing is dropped for lack of rx room.
		for next < N && next-got < 64 {
			ps.send(t, sent[next])
			next++
		}
		s.Service()
		if err := s.Wait(5 * time.Millisecond); err != nil {
			t.Fatal(err)
		}
		n := s.Receive(descs)
		for i := 0; i < n; i++ {
			d := descs[i]
			buf, off := s.Frame(d.Addr)
			if len(buf) != int(o.FrameSize) {
				t.Fatalf("Frame len %d", len(buf))
			}
			offs[off]++
			pkt := buf[off : off+int(d.Len)]
			seq := int(binary.BigEndian.Uint16(pkt[14+20+4+20:])) // inner TCP source port
			if seq >= N || !bytes.Equal(pkt, sent[seq]) {
				t.Fatalf("received frame %d does not match what was sent", seq)
			}
			start := off - 16
			copy(buf[start:], macB[:])
			copy(buf[start+6:], macA[:])
			binary.BigEndian.PutUint16(buf[start+12:], echoType)
			binary.BigEndian.PutUint16(buf[start+14:], uint16(seq))
			descs[i] = Desc{Addr: s.FrameBase(d.Addr) + uint64(start), Len: d.Len + 16}
		}
		got += n
		if c := s.Frames(); c.Sum() != o.FrameCount || c.Held != uint32(n) {
			t.Fatalf("with %d held: %+v (sum %d)", n, c, c.Sum())
		}
		for k := 0; k < n; {
			m := s.Transmit(descs[k:n])
			transmits++
			if m == 0 {
				s.Service()
			}
			k += m
		}
	}
	if got != N {
		t.Fatalf("received %d of %d frames", got, N)
	}
	want := int(o.Headroom) + packetHeadroom
	for off, n := range offs {
		t.Logf("received data at offset %d of its frame (%d frames); UMEM headroom %d", off, n, o.Headroom)
		if off != want {
			t.Errorf("data offset %d, want Headroom+XDP_PACKET_HEADROOM = %d", off, want)
		}
		if off < 64 {
			t.Errorf("only %d bytes in front of received data, want >= 64", off)
		}
	}

	// Read the echoes on the router side while the worker reaps completions.
	echoed := make([]bool, N)
	nEcho := 0
	buf := make([]byte, 9000)
	for end := time.Now().Add(10 * time.Second); nEcho < N && time.Now().Before(end); {
		s.Service()
		f := ps.recv(buf)
		if f == nil || len(f) < 16 || binary.BigEndian.Uint16(f[12:]) != echoType || !bytes.Equal(f[0:6], macB[:]) {
			continue
		}
		seq := int(binary.BigEndian.Uint16(f[14:]))
		if seq >= N || echoed[seq] || !bytes.Equal(f[16:], sent[seq]) {
			t.Fatalf("bad echo %d: % x", seq, f[:min(len(f), 64)])
		}
		echoed[seq] = true
		nEcho++
	}
	if nEcho != N {
		t.Fatalf("read back %d of %d echoed frames", nEcho, N)
	}

	// At rest after traffic: everything completed and back on free/fill.
	var c FrameCounts
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(time.Millisecond) {
		s.Service()
		if c = s.Frames(); c.Tx == 0 && c.Completion == 0 {
			break
		}
	}
	if c != (FrameCounts{Free: o.FrameCount - fill, Fill: fill}) {
		t.Errorf("at rest after traffic: %+v", c)
	}

	// Not ours: ARP, ICMP to the local address and TCP to a VIP port
	// without a service go to the kernel; ARP and ICMP are answered.
	arp := make([]byte, 28)
	binary.BigEndian.PutUint16(arp[0:], 1)      // Ethernet
	binary.BigEndian.PutUint16(arp[2:], 0x0800) // IPv4
	arp[4], arp[5] = 6, 4
	binary.BigEndian.PutUint16(arp[6:], 1) // request
	copy(arp[8:], macB[:])
	copy(arp[14:], router[:])
	copy(arp[24:], local[:])
	arpReq := ether(0x0806, arp)
	copy(arpReq[0:6], []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	ps.send(t, arpReq)
	if !ps.expectFrame(2*time.Second, func(f []byte) bool {
		return len(f) >= 42 && binary.BigEndian.Uint16(f[12:]) == 0x0806 && binary.BigEndian.Uint16(f[20:]) == 2 &&
			bytes.Equal(f[28:32], local[:])
	}) {
		t.Error("no ARP reply: the ARP request did not reach the kernel")
	}
	icmp := make([]byte, 16)
	icmp[0] = 8 // echo request
	binary.BigEndian.PutUint16(icmp[4:], 0x4242)
	binary.BigEndian.PutUint16(icmp[2:], icmpSum(icmp))
	ps.send(t, ether(0x0800, ip4(router, local, 1, icmp, nil)))
	if !ps.expectFrame(2*time.Second, func(f []byte) bool {
		return len(f) >= 42 && binary.BigEndian.Uint16(f[12:]) == 0x0800 && f[23] == 1 && f[34] == 0 &&
			binary.BigEndian.Uint16(f[38:]) == 0x4242
	}) {
		t.Error("no ICMP echo reply: the echo request did not reach the kernel")
	}
	ps.send(t, greIn(tcp(vipWeb, 81)))
	ps.send(t, ether(0x0800, tcp(vipWeb, 8080)))
	ps.send(t, greIn(tcp(other, 80)))
	for end := time.Now().Add(200 * time.Millisecond); time.Now().Before(end); {
		s.Service()
		s.Wait(10 * time.Millisecond)
		if n := s.Receive(descs); n != 0 {
			t.Errorf("received %d frames that are not ours", n)
			for _, d := range descs[:n] {
				s.Recycle(d.Addr)
			}
		}
	}

	// The real socket (system calls included) allocates nothing either.
	if a := testing.AllocsPerRun(200, func() {
		s.Service()
		n := s.Receive(descs)
		s.Transmit(descs[:0])
		for _, d := range descs[:n] {
			s.Recycle(d.Addr)
		}
		s.Wait(0)
	}); a != 0 {
		t.Errorf("Service/Receive/Transmit/Recycle/Wait on a bound socket: %v allocs per run", a)
	}

	st, err := s.Stats()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("stats: %+v; %d Transmit calls", st, transmits)
	if st.RxDropped != 0 || st.RxInvalidDescs != 0 || st.TxInvalidDescs != 0 || st.KickErrors != 0 ||
		st.BadRecycles != 0 || st.BadTransmits != 0 || st.RingErrors != 0 {
		t.Errorf("unexpected errors in stats: %+v", st)
	}
	if st.TxKicks == 0 {
		t.Error("no tx kicks: copy mode needs sendto to transmit")
	}
	if c := s.Frames(); c.Sum() != o.FrameCount {
		t.Errorf("final: %+v", c)
	}

	if err := p.Close(); err != nil {
		t.Error(err)
	}
	if l.xdpAttached(t) {
		t.Error("XDP program still attached after Steer.Close")
	}
	if err := p.Close(); err != ErrClosed {
		t.Errorf("second Steer.Close = %v", err)
	}
	closed = true
	if err := s.Close(); err != nil {
		t.Error(err)
	}
	if err := s.Close(); err != ErrClosed {
		t.Errorf("second Close = %v", err)
	}
	if _, err := s.Stats(); err != ErrClosed {
		t.Errorf("Stats after Close = %v", err)
	}
	if c := s.Frames(); c != (FrameCounts{}) {
		t.Errorf("Frames after Close = %+v", c)
	}
}

func icmpSum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// TestOpenErrors: bad options and a missing interface fail with a clear error.
func TestOpenErrors(t *testing.T) {
	privtest.Require(t)
	o := DefaultOpts()
	o.FillSize = 1000
	if _, err := Open(1, 0, o); err == nil || !strings.Contains(err.Error(), "FillSize 1000") {
		t.Errorf("Open with FillSize 1000: %v", err)
	}
	if _, err := Open(0, 0, DefaultOpts()); err == nil {
		t.Error("Open on ifindex 0 succeeded")
	}
	if _, err := Open(1<<30, 0, DefaultOpts()); err == nil || !strings.Contains(err.Error(), "bind") {
		t.Errorf("Open on a missing interface: %v", err)
	}
}

const childEnv = "RINGS_TEST_ATTACH_CHILD"

// TestLinkDiesWithProcess attaches from a child process, kills it with
// SIGKILL and requires the NIC to be free of XDP afterwards.
func TestLinkDiesWithProcess(t *testing.T) {
	l := newLab(t)
	cmd := exec.Command(os.Args[0], "-test.run=^TestAttachChild$", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"="+l.ns)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "CHILD ATTACHED") {
				ready <- true
			}
		}
		close(ready)
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatal("child exited without attaching")
		}
	case <-time.After(20 * time.Second):
		t.Fatal("child did not attach")
	}
	if !l.xdpAttached(t) {
		t.Fatal("child reported attached, ip link shows no XDP")
	}
	if err := cmd.Process.Signal(unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	cmd.Wait()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if !l.xdpAttached(t) {
			return
		}
	}
	t.Fatalf("XDP program still attached after the child was killed:\n%s", run(t, "ip", "-n", l.ns, "link", "show", "rgtA"))
}

// TestAttachChild is the child half of TestLinkDiesWithProcess; without
// the environment variable it does nothing.
func TestAttachChild(t *testing.T) {
	ns := os.Getenv(childEnv)
	if ns == "" {
		return
	}
	l := &lab{ns: ns}
	l.enter(t, func() {
		ifi, err := net.InterfaceByName("rgtA")
		if err != nil {
			t.Fatal(err)
		}
		p, err := LoadSteer()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Attach(ifi.Index, XDPAuto); err != nil {
			t.Fatal(err)
		}
		fmt.Println("CHILD ATTACHED")
		time.Sleep(time.Minute) // killed long before
	})
}

// TestTakeTransmitOnly sends frames that were never received: Take free
// frames, write them, Transmit, and Service until every frame has come
// back through the completion ring; the peer sees each one once.
func TestTakeTransmitOnly(t *testing.T) {
	l := newLab(t)
	l.enter(t, func() {
		o := DefaultOpts()
		o.FrameSize, o.FrameCount, o.FillSize = 2048, 64, 2
		o.ZeroCopy = ZeroCopyOff
		s, err := Open(l.idxA, 0, o)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		p := newPacketSock(t, l.idxB)
		const rounds, per = 4, 48
		addrs := make([]uint64, per)
		descs := make([]Desc, per)
		for r := 0; r < rounds; r++ {
			n := s.Take(addrs)
			if n != per && r == 0 {
				t.Fatalf("Take(%d) with 62 free = %d", per, n)
			}
			for i, a := range addrs[:n] {
				buf, _ := s.Frame(a)
				copy(buf[0:6], macB[:])
				copy(buf[6:12], macA[:])
				binary.BigEndian.PutUint16(buf[12:], echoType)
				binary.BigEndian.PutUint32(buf[14:], uint32(r*per+i))
				descs[i] = Desc{Addr: a, Len: 60}
			}
			if sent := s.Transmit(descs[:n]); sent != n {
				t.Fatalf("round %d: Transmit = %d of %d", r, sent, n)
			}
			got := map[uint32]bool{}
			buf := make([]byte, 2048)
			for end := time.Now().Add(2 * time.Second); time.Now().Before(end) && (len(got) < n || s.Frames().Free != 62); {
				s.Service()
				if f := p.recv(buf); f != nil && len(f) >= 18 && binary.BigEndian.Uint16(f[12:]) == echoType {
					got[binary.BigEndian.Uint32(f[14:])] = true
				}
			}
			if len(got) != n {
				t.Fatalf("round %d: the peer got %d distinct frames of %d", r, len(got), n)
			}
			if c := s.Frames(); c != (FrameCounts{Free: 62, Fill: 2}) {
				t.Fatalf("round %d: after completion %+v, want every frame free again but the fill ring's 2", r, c)
			}
		}
		st, err := s.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if st.BadTransmits != 0 || st.RingErrors != 0 || st.KickErrors != 0 {
			t.Errorf("stats %+v", st)
		}
	})
}

// TestOpenBusyQueue: a queue another live socket holds is refused after
// bindBusyWait, saying so; once that socket is closed, the queue binds
// again at once, in a loop of close and reopen (a restart's pattern).
func TestOpenBusyQueue(t *testing.T) {
	l := newLab(t)
	l.enter(t, func() {
		o := DefaultOpts()
		o.ZeroCopy = ZeroCopyOff
		a, err := Open(l.idxA, 0, o)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		if b, err := Open(l.idxA, 0, o); err == nil {
			b.Close()
			t.Fatal("a second socket bound a held queue")
		} else if !errors.Is(err, unix.EBUSY) || !strings.Contains(err.Error(), "still holds this queue") {
			t.Errorf("a held queue: %v", err)
		}
		if took := time.Since(start); took < bindBusyWait {
			t.Errorf("gave up on a held queue after %v, want at least %v", took, bindBusyWait)
		}
		for i := range 5 {
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			if a, err = Open(l.idxA, 0, o); err != nil {
				t.Fatalf("reopen %d after close: %v", i, err)
			}
		}
		a.Close()
	})
}
