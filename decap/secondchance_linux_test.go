package decap

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/google/gopacket/pcapgo"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/rail-lb/rail/internal/netnstest"
	"github.com/rail-lb/rail/internal/privtest"
)

// The second-chance tests run the program in a network namespace of their
// own: BPF_PROG_TEST_RUN runs it with skb->dev = that namespace's loopback,
// so the socket lookup sees the namespace's sockets and the FIB lookup its
// routes. The namespace has a veth pair sc0/sc1 with the backend's address
// on sc0 (10.1.0.11/24) and the second hop 10.1.0.12 as a permanent
// neighbour there; 10.1.0.13 is on the link but unresolved.
var (
	hop        = netip.MustParseAddr("10.1.0.12")
	hopNoNeigh = netip.MustParseAddr("10.1.0.13")
	unrouted   = netip.MustParseAddr("203.0.113.9")
	hopMAC     = net.HardwareAddr{2, 0, 0, 0, 0xbe, 2}
)

// testNetns is a network namespace the test can step into.
type testNetns struct {
	h     netns.NsHandle
	sc0   net.HardwareAddr // its MAC
	index int              // sc0's ifindex
}

// newTestNetns makes the namespace (closed, and so deleted, at the end).
func newTestNetns(t *testing.T) *testNetns {
	t.Helper()
	privtest.Require(t)
	var (
		h   netns.NsHandle
		err error
	)
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		h, err = netns.New()
	}()
	<-done
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	lo, err := nl.LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	if err := nl.LinkSetUp(lo); err != nil {
		t.Fatal(err)
	}
	if err := nl.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: "sc0"}, PeerName: "sc1"}); err != nil {
		t.Fatal(err)
	}
	n := &testNetns{h: h}
	for _, name := range []string{"sc0", "sc1"} {
		l, err := nl.LinkByName(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := nl.LinkSetUp(l); err != nil {
			t.Fatal(err)
		}
		if name == "sc0" {
			n.sc0, n.index = l.Attrs().HardwareAddr, l.Attrs().Index
		}
	}
	a, _ := netlink.ParseAddr(backend.String() + "/24")
	if err := nl.AddrAdd(&netlink.Device{LinkAttrs: netlink.LinkAttrs{Index: n.index}}, a); err != nil {
		t.Fatal(err)
	}
	if err := nl.NeighAdd(&netlink.Neigh{LinkIndex: n.index, State: netlink.NUD_PERMANENT, IP: hop.AsSlice(), HardwareAddr: hopMAC}); err != nil {
		t.Fatal(err)
	}
	return n
}

// in runs fn on a thread inside the namespace (fn must not call t.Fatal:
// t.Error and return).
func (n *testNetns) in(t *testing.T, fn func()) {
	t.Helper()
	if err := netnstest.DoHandle(n.h, fn); err != nil {
		t.Error(err)
	}
}

// sysctl writes a sysctl of the namespace.
func (n *testNetns) sysctl(t *testing.T, name, value string) {
	t.Helper()
	n.in(t, func() {
		if err := os.WriteFile("/proc/sys/"+name, []byte(value), 0o644); err != nil {
			t.Errorf("sysctl %s=%s: %v", name, value, err)
		}
	})
	if t.Failed() {
		t.FailNow()
	}
}

// run feeds frame through p inside the namespace.
func (n *testNetns) run(t *testing.T, p *Program, frame []byte) (uint32, []byte) {
	t.Helper()
	var (
		v   uint32
		out []byte
		err error
	)
	n.in(t, func() { v, out, err = p.Run(frame) })
	if err != nil {
		t.Fatal(err)
	}
	return v, out
}

// tcpFlags is a TCP header with the given flags, sequence and
// acknowledgment numbers, and payload (checksum left 0).
func tcpFlags(sport, dport uint16, flags byte, seq, ack uint32, payload string) []byte {
	h := make([]byte, 20)
	binary.BigEndian.PutUint16(h[0:], sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	binary.BigEndian.PutUint32(h[4:], seq)
	binary.BigEndian.PutUint32(h[8:], ack)
	h[12] = 5 << 4
	h[13] = flags
	binary.BigEndian.PutUint16(h[14:], 512)
	return append(h, payload...)
}

const (
	flagSYN = 0x02
	flagRST = 0x04
	flagPSH = 0x08
	flagACK = 0x10
)

// keyed is Ethernet | IPv4(node → to, GRE) | GRE(K, key) | inner: the frame
// a Rail node sends with a second hop.
func keyed(to, key netip.Addr, inner []byte) []byte {
	proto := uint16(0x0800)
	if inner[0]>>4 == 6 {
		proto = 0x86dd
	}
	k := key.As4()
	g := append([]byte{0x20, 0, byte(proto >> 8), byte(proto)}, k[:]...)
	return ether(0x0800, ip4(node, to, 47, append(g, inner...)))
}

// unkeyed is the same frame without a second hop, as Rail sends today.
func unkeyed(to netip.Addr, inner []byte) []byte {
	proto := uint16(0x0800)
	if inner[0]>>4 == 6 {
		proto = 0x86dd
	}
	return ether(0x0800, ip4(node, to, 47, gre(0, 0, proto, inner)))
}

// wantHandedOn checks a handed-on frame: outer source = our address
// (where the keyed frame went), destination = the second hop, a GRE header
// without key, the inner packet unchanged, a valid header checksum; with
// dstMAC non-nil the Ethernet addresses are the neighbour's and sc0's, else
// unchanged (bpf_redirect_neigh fills them in later).
func wantHandedOn(t *testing.T, in, out []byte, self, to netip.Addr, dstMAC, srcMAC net.HardwareAddr) {
	t.Helper()
	if len(out) != len(in)-4 {
		t.Fatalf("handed-on frame of %d bytes, want %d (the key removed)", len(out), len(in)-4)
	}
	if dstMAC != nil {
		if !bytes.Equal(out[0:6], dstMAC) || !bytes.Equal(out[6:12], srcMAC) {
			t.Errorf("Ethernet dst %x src %x, want %x %x", out[0:6], out[6:12], dstMAC, srcMAC)
		}
	} else if !bytes.Equal(out[:12], in[:12]) {
		t.Errorf("Ethernet addresses changed: % x -> % x", in[:12], out[:12])
	}
	if et := binary.BigEndian.Uint16(out[12:]); et != 0x0800 {
		t.Errorf("Ethernet type %#x", et)
	}
	ip := out[14:34]
	if ip[0] != 0x45 || ip[9] != 47 || ip[8] != 64 {
		t.Errorf("outer header % x: want IPv4, GRE, TTL 64", ip)
	}
	if tot := binary.BigEndian.Uint16(ip[2:]); int(tot) != len(out)-14 {
		t.Errorf("outer total length %d, frame carries %d", tot, len(out)-14)
	}
	if csum(ip) != 0 {
		t.Errorf("outer header checksum wrong: % x", ip)
	}
	if src, _ := netip.AddrFromSlice(ip[12:16]); src != self {
		t.Errorf("outer source %v, want %v", src, self)
	}
	if dst, _ := netip.AddrFromSlice(ip[16:20]); dst != to {
		t.Errorf("outer destination %v, want %v", dst, to)
	}
	if ip[6] != in[20] || ip[1] != in[15] {
		t.Errorf("DF or TOS changed: % x -> % x", in[14:34], ip)
	}
	if !bytes.Equal(out[34:38], []byte{0, 0, in[36], in[37]}) {
		t.Errorf("GRE header % x, want flags 0 and protocol % x", out[34:38], in[36:38])
	}
	if !bytes.Equal(out[38:], in[42:]) {
		t.Errorf("inner packet changed:\n% x\nwant\n% x", out[38:], in[42:])
	}
}

// decided runs frame and checks the verdict and the decision counted.
func decided(t *testing.T, n *testNetns, p *Program, frame []byte, verdict uint32, count int) []byte {
	t.Helper()
	before, err := p.Counts()
	if err != nil {
		t.Fatal(err)
	}
	v, out := n.run(t, p, frame)
	after, _ := p.Counts()
	if v != verdict {
		t.Errorf("verdict %d, want %d", v, verdict)
	}
	checkCounted(t, before, after, count)
	return out
}

// wantDelivered: out is the inner packet in Ethernet, as without second
// chance (the Ethernet addresses of the frame in, the type of the inner
// family).
func wantDelivered(t *testing.T, in, out, inner []byte) {
	t.Helper()
	etype := uint16(0x0800)
	if inner[0]>>4 == 6 {
		etype = 0x86dd
	}
	want := append(append([]byte{}, in[:12]...), ether(etype, inner)[12:]...)
	if !bytes.Equal(out, want) {
		t.Errorf("delivered\n% x\nwant\n% x", out, want)
	}
}

// delivers runs frame, wants it delivered here with decision count.
func delivers(t *testing.T, n *testNetns, p *Program, frame, inner []byte, count int) {
	t.Helper()
	wantDelivered(t, frame, decided(t, n, p, frame, ActOK, count), inner)
}

// TestDecapSecondChance: every decision the program takes on a frame with a
// second hop (and without), in a namespace with the sockets and routes
// that decide it.
func TestDecapSecondChance(t *testing.T) {
	p := loadTest(t)
	n := newTestNetns(t)
	n.sysctl(t, "net/ipv4/ip_forward", "1")

	// A connection in the namespace: established on the server side.
	var (
		ln         net.Listener
		cli, srv   net.Conn
		err        error
		cliAddr    netip.AddrPort
		serverAddr netip.AddrPort
	)
	n.in(t, func() {
		if ln, err = net.Listen("tcp4", "127.0.0.1:0"); err != nil {
			return
		}
		if cli, err = net.Dial("tcp4", ln.Addr().String()); err != nil {
			return
		}
		srv, err = ln.Accept()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	defer cli.Close()
	defer srv.Close()
	cliAddr = cli.LocalAddr().(*net.TCPAddr).AddrPort()
	serverAddr = ln.Addr().(*net.TCPAddr).AddrPort()
	lo := netip.MustParseAddr("127.0.0.1")

	// A mid-connection segment of a connection this host does not have.
	lost := ip4(client, vip, 6, tcpFlags(40000, 80, flagACK|flagPSH, 1000, 2000, "more data"))
	lost6 := ip6(client6, vip6, 6, tcpFlags(40000, 80, flagACK, 1000, 2000, "more data"))
	// A mid-connection segment of the established connection.
	mine := ip4(lo, lo, 6, tcpFlags(cliAddr.Port(), serverAddr.Port(), flagACK|flagPSH, 1, 1, "data"))
	// A segment to the listening port from a client it never saw.
	toListener := ip4(lo, lo, 6, tcpFlags(45000, serverAddr.Port(), flagACK, 1000, 2000, ""))

	t.Run("no socket: handed on, neighbour known", func(t *testing.T) {
		in := keyed(backend, hop, lost)
		out := decided(t, n, p, in, ActRedirect, countHandedOn)
		wantHandedOn(t, in, out, backend, hop, hopMAC, n.sc0)

		// The second hop delivers it: it has no key, so it can never be
		// handed on again (even there, with no socket either).
		p2, err := Load()
		if err != nil {
			t.Fatal(err)
		}
		defer p2.Close()
		if err := p2.SetAddrs([]netip.Addr{hop}); err != nil {
			t.Fatal(err)
		}
		delivers(t, n, p2, out, lost, countDelivered)
	})
	t.Run("no socket: handed on, neighbour unresolved", func(t *testing.T) {
		in := keyed(backend, hopNoNeigh, lost)
		wantHandedOn(t, in, decided(t, n, p, in, ActRedirect, countHandedOn), backend, hopNoNeigh, nil, nil)
	})
	t.Run("no socket: ipv6 inside", func(t *testing.T) {
		in := keyed(backend, hop, lost6)
		wantHandedOn(t, in, decided(t, n, p, in, ActRedirect, countHandedOn), backend, hop, hopMAC, n.sc0)
	})
	t.Run("no socket: rst handed on", func(t *testing.T) {
		in := keyed(backend, hop, ip4(client, vip, 6, tcpFlags(40000, 80, flagRST, 1000, 0, "")))
		wantHandedOn(t, in, decided(t, n, p, in, ActRedirect, countHandedOn), backend, hop, hopMAC, n.sc0)
	})
	t.Run("no socket: listener alone is no socket", func(t *testing.T) {
		in := keyed(backend, hop, toListener)
		wantHandedOn(t, in, decided(t, n, p, in, ActRedirect, countHandedOn), backend, hop, hopMAC, n.sc0)
	})
	t.Run("no route to the second hop: delivered", func(t *testing.T) {
		delivers(t, n, p, keyed(backend, unrouted, lost), lost, countNoRoute)
	})
	t.Run("established: delivered", func(t *testing.T) {
		delivers(t, n, p, keyed(backend, hop, mine), mine, countDelivered)
	})
	t.Run("syn: delivered", func(t *testing.T) {
		syn := ip4(client, vip, 6, tcpFlags(40000, 80, flagSYN, 1000, 0, ""))
		delivers(t, n, p, keyed(backend, hop, syn), syn, countDelivered)
	})
	t.Run("udp: delivered", func(t *testing.T) {
		udp := ip4(client, vip, 17, make([]byte, 12))
		delivers(t, n, p, keyed(backend, hop, udp), udp, countDelivered)
	})
	t.Run("inner fragment: delivered", func(t *testing.T) {
		frag := ip4(client, vip, 6, tcpFlags(40000, 80, flagACK, 1000, 2000, "x"))
		frag[6] |= 0x20
		delivers(t, n, p, keyed(backend, hop, frag), frag, countDelivered)
	})
	for _, self := range []netip.Addr{backend, netip.MustParseAddr("0.0.0.0"), netip.MustParseAddr("127.0.0.1"), netip.MustParseAddr("224.0.0.5"), netip.MustParseAddr("255.255.255.255")} {
		t.Run("second hop "+self.String()+" is none: delivered", func(t *testing.T) {
			delivers(t, n, p, keyed(backend, self, lost), lost, countNoSocket)
		})
	}
	t.Run("no key: delivered as today, no lookup", func(t *testing.T) {
		delivers(t, n, p, unkeyed(backend, lost), lost, countDelivered)
	})
	t.Run("key with checksum: no second hop", func(t *testing.T) {
		k := hop.As4()
		g := append([]byte{0xa0, 0, 8, 0, 0, 0, 0, 0}, k[:]...)
		delivers(t, n, p, ether(0x0800, ip4(node, backend, 47, append(g, lost...))), lost, countDelivered)
	})
	t.Run("ipv6 outer: the key is skipped", func(t *testing.T) {
		k := hop.As4()
		g := append([]byte{0x20, 0, 8, 0}, k[:]...)
		delivers(t, n, p, ether(0x86dd, ip6(node6, backend6, 47, append(g, lost...))), lost, countDelivered)
	})

	// Forwarding off, a backend's default: bpf_fib_lookup answers
	// FWD_DISABLED, bpf_redirect_neigh routes on the ingress interface.
	n.sysctl(t, "net/ipv4/ip_forward", "0")
	t.Run("forwarding off: handed on through bpf_redirect_neigh", func(t *testing.T) {
		in := keyed(backend, hop, lost)
		wantHandedOn(t, in, decided(t, n, p, in, ActRedirect, countHandedOn), backend, hop, nil, nil)
	})
	t.Run("forwarding off: established still delivered", func(t *testing.T) {
		delivers(t, n, p, keyed(backend, hop, mine), mine, countDelivered)
	})
}

// TestDecapSecondChanceLookupUnkeyed: with Options.LookupUnkeyed an unkeyed
// segment without a socket counts as no_socket_no_second_hop; the output
// is what it always was.
func TestDecapSecondChanceLookupUnkeyed(t *testing.T) {
	privtest.Require(t)
	p, err := LoadWith(Options{LookupUnkeyed: true})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if err := p.SetAddrs([]netip.Addr{backend, backend6}); err != nil {
		t.Fatal(err)
	}
	n := newTestNetns(t)
	var (
		ln       net.Listener
		cli, srv net.Conn
	)
	n.in(t, func() {
		if ln, err = net.Listen("tcp6", "[::1]:0"); err != nil {
			return
		}
		if cli, err = net.Dial("tcp6", ln.Addr().String()); err != nil {
			return
		}
		srv, err = ln.Accept()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	defer cli.Close()
	defer srv.Close()
	c, s := cli.LocalAddr().(*net.TCPAddr).AddrPort(), ln.Addr().(*net.TCPAddr).AddrPort()

	lost := ip4(client, vip, 6, tcpFlags(40000, 80, flagACK, 1000, 2000, "x"))
	mine6 := ip6(c.Addr(), s.Addr(), 6, tcpFlags(c.Port(), s.Port(), flagACK, 1, 1, "x"))
	delivers(t, n, p, unkeyed(backend, lost), lost, countNoSocket)
	delivers(t, n, p, ether(0x86dd, ip6(node6, backend6, 47, gre(0, 0, 0x86dd, mine6))), mine6, countDelivered)
	syn := ip4(client, vip, 6, tcpSeg(40000, 80, ""))
	delivers(t, n, p, unkeyed(backend, syn), syn, countDelivered)
}

// tcpChecksum fills in the TCP checksum of seg (IPv4 pseudo header).
func tcpChecksum(src, dst netip.Addr, seg []byte) {
	seg[16], seg[17] = 0, 0
	s, d := src.As4(), dst.As4()
	ph := append(append(append([]byte{}, s[:]...), d[:]...), 0, 6, byte(len(seg)>>8), byte(len(seg)))
	binary.BigEndian.PutUint16(seg[16:], csum(append(ph, seg...)))
}

// TestDecapSecondChanceSynCookie: with tcp_syncookies=2 the listener keeps no
// request socket; the ACK that completes a cookie it sent is delivered
// (bpf_tcp_check_syncookie), an ACK with a wrong cookie is handed on.
func TestDecapSecondChanceSynCookie(t *testing.T) {
	p := loadTest(t)
	n := newTestNetns(t)
	n.sysctl(t, "net/ipv4/ip_forward", "1")
	n.sysctl(t, "net/ipv4/tcp_syncookies", "2")
	lo := netip.MustParseAddr("127.0.0.1")
	const sport = 45678
	var (
		ln     net.Listener
		err    error
		cookie uint32
	)
	const isn = 0x11223344
	n.in(t, func() {
		if ln, err = net.Listen("tcp4", "127.0.0.1:0"); err != nil {
			return
		}
		lport := uint16(ln.Addr().(*net.TCPAddr).Port)
		var fd int
		if fd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW, unix.IPPROTO_TCP); err != nil {
			return
		}
		defer unix.Close(fd)
		tv := unix.NsecToTimeval(int64(100 * time.Millisecond))
		unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		syn := tcpFlags(sport, lport, flagSYN, isn, 0, "")
		tcpChecksum(lo, lo, syn)
		if err = unix.Sendto(fd, syn, 0, &unix.SockaddrInet4{Addr: lo.As4()}); err != nil {
			return
		}
		buf := make([]byte, 1500)
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); {
			m, _, rerr := unix.Recvfrom(fd, buf, 0)
			if rerr != nil || m < 40 {
				continue
			}
			tcp := buf[(buf[0]&0xf)*4 : m]
			if binary.BigEndian.Uint16(tcp[0:]) == lport && binary.BigEndian.Uint16(tcp[2:]) == sport &&
				tcp[13]&(flagSYN|flagACK) == flagSYN|flagACK && binary.BigEndian.Uint32(tcp[8:]) == isn+1 {
				cookie = binary.BigEndian.Uint32(tcp[4:])
				return
			}
		}
		err = os.ErrDeadlineExceeded
	})
	if err != nil {
		t.Fatalf("no SYN-ACK from the listener: %v", err)
	}
	defer ln.Close()
	lport := uint16(ln.Addr().(*net.TCPAddr).Port)
	t.Logf("SYN cookie %#x", cookie)

	ack := ip4(lo, lo, 6, tcpFlags(sport, lport, flagACK, isn+1, cookie+1, ""))
	delivers(t, n, p, keyed(backend, hop, ack), ack, countDelivered)
	// A wrong cookie: its hash bits changed (the low bits only encode the
	// MSS, and a neighbouring value may be valid too).
	bad := ip4(lo, lo, 6, tcpFlags(sport, lport, flagACK, isn+1, cookie^0x00f00000+1, ""))
	in := keyed(backend, hop, bad)
	wantHandedOn(t, in, decided(t, n, p, in, ActRedirect, countHandedOn), backend, hop, hopMAC, n.sc0)
}

// TestDecapSecondChanceCost measures what the socket lookup costs a packet:
// BPF_PROG_TEST_RUN with repeat 1 (the program changes the frame, so a
// repeated run would see its own output), many times, the kernel's own
// time per run. "keyed ACK, established" minus "keyed SYN" is the lookup
// (both read the key and the inner headers; the SYN stops there); minus
// "unkeyed ACK" it is all second chance costs a delivered packet. The
// times include the test run's timer.
func TestDecapSecondChanceCost(t *testing.T) {
	p := loadTest(t)
	n := newTestNetns(t)
	n.sysctl(t, "net/ipv4/ip_forward", "1")
	var (
		ln       net.Listener
		cli, srv net.Conn
		err      error
	)
	n.in(t, func() {
		if ln, err = net.Listen("tcp4", "127.0.0.1:0"); err != nil {
			return
		}
		if cli, err = net.Dial("tcp4", ln.Addr().String()); err != nil {
			return
		}
		srv, err = ln.Accept()
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	defer cli.Close()
	defer srv.Close()
	c, s := cli.LocalAddr().(*net.TCPAddr).AddrPort(), ln.Addr().(*net.TCPAddr).AddrPort()
	mine := ip4(c.Addr(), s.Addr(), 6, tcpFlags(c.Port(), s.Port(), flagACK, 1, 1, "0123456789"))
	lost := ip4(client, vip, 6, tcpFlags(40000, 80, flagACK, 1, 1, "0123456789"))
	cases := []struct {
		name  string
		frame []byte
	}{
		{"unkeyed ACK (no lookup)", unkeyed(backend, mine)},
		{"keyed SYN (no lookup)", keyed(backend, hop, ip4(client, vip, 6, tcpFlags(40000, 80, flagSYN, 1, 0, "0123456789")))},
		{"keyed ACK, established (lookup, delivered)", keyed(backend, hop, mine)},
		{"keyed ACK, listener only (lookup + cookie check, handed on)", keyed(backend, hop, ip4(c.Addr(), s.Addr(), 6, tcpFlags(45000, s.Port(), flagACK, 1, 1, "0123456789")))},
		{"keyed ACK, no socket (lookup + FIB + rewrite, handed on)", keyed(backend, hop, lost)},
	}
	runs := 20000
	if testing.Short() {
		runs = 2000
	}
	// Round-robin over the cases, so that drift (the host, the CPU's
	// clock) weighs on all of them alike.
	times := make([][]time.Duration, len(cases))
	var rerr error
	n.in(t, func() {
		for range runs {
			for i, cs := range cases {
				_, d, err := p.objs.Decap.Benchmark(cs.frame, 1, nil)
				if err != nil {
					rerr = err
					return
				}
				times[i] = append(times[i], d)
			}
		}
	})
	if rerr != nil {
		t.Fatal(rerr)
	}
	var base int64
	for i, cs := range cases {
		ts := times[i]
		slices.Sort(ts)
		var sum time.Duration
		for _, d := range ts {
			sum += d
		}
		med := ts[len(ts)/2].Nanoseconds()
		if i == 0 {
			base = med
		}
		t.Logf("%-62s median %5d ns (%+5d)  mean %5.0f ns  p10 %5d  p90 %5d", cs.name, med, med-base,
			float64(sum.Nanoseconds())/float64(len(ts)), ts[len(ts)/10].Nanoseconds(), ts[len(ts)*9/10].Nanoseconds())
	}
}

// TestDecapSecondChanceNodeFrames reads the keyed frame a Rail node sends
// (pipeline's golden egress frame, pipeline/testdata/secondchance): the
// program finds the second hop where the node put it. Its SYN is
// delivered; the same frame as a mid-connection ACK without a socket is
// handed on to the node's second hop.
func TestDecapSecondChanceNodeFrames(t *testing.T) {
	f, err := os.Open("../pipeline/testdata/secondchance/second-chance-keyed.out.pcap")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	frame, _, err := r.ReadPacketData()
	if err != nil {
		t.Fatal(err)
	}
	if len(frame) < 42+40 || frame[34] != 0x20 || frame[23] != 47 {
		t.Fatalf("not a keyed GRE frame: % x", frame)
	}
	to := netip.AddrFrom4([4]byte(frame[30:34]))
	second := netip.AddrFrom4([4]byte(frame[38:42]))
	t.Logf("the node's frame: to %v, second hop %v", to, second)

	p := loadTest(t)
	if err := p.SetAddrs([]netip.Addr{to}); err != nil {
		t.Fatal(err)
	}
	n := newTestNetns(t)
	n.sysctl(t, "net/ipv4/ip_forward", "1")
	inner := frame[42:]
	if inner[33]&flagSYN == 0 {
		t.Fatalf("the golden frame is no longer a SYN: % x", inner[20:40])
	}
	delivers(t, n, p, frame, inner, countDelivered)

	ack := append([]byte(nil), frame...)
	ack[42+33] = flagACK
	if !netip.MustParsePrefix("10.1.0.0/24").Contains(second) {
		t.Fatalf("second hop %v is not on the test namespace's link", second)
	}
	wantHandedOn(t, ack, decided(t, n, p, ack, ActRedirect, countHandedOn), to, second, nil, nil)
}
