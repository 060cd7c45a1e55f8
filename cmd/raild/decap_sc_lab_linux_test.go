package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"golang.org/x/sys/unix"

	"github.com/rail-lb/rail/internal/privtest"
)

// The second-chance lab (namespaces rd2-*): a generator namespace with a
// bridge br0 (10.1.0.1, standing in for the Rail node and the client) and
// two backends on it, A (10.1.0.11) and B (10.1.0.12), each with the VIP on
// lo and raild decap on eth0. The client connects to the VIP on B directly;
// the test then sends a segment of that connection in GRE to A with B as
// the second hop, as a Rail node whose table moved the flow to A would.
const (
	sc2Gen, sc2A, sc2B = "rd2-gen", "rd2-a", "rd2-b"
	sc2Metrics         = "127.0.0.1:9791"
)

var (
	sc2GenMAC = [6]byte{2, 0, 0, 0, 0x2d, 1}
	sc2AMAC   = [6]byte{2, 0, 0, 0, 0x2d, 0x11}
	sc2BMAC   = [6]byte{2, 0, 0, 0, 0x2d, 0x12}
	sc2GenIP  = netip.MustParseAddr("10.1.0.1")
	sc2AIP    = netip.MustParseAddr("10.1.0.11")
	sc2BIP    = netip.MustParseAddr("10.1.0.12")
	// sc2Ghost is a client address nobody has: the backends reach it
	// through a static neighbour entry (the generator's MAC), and the
	// generator's kernel drops what comes back to it (no forwarding), so
	// it answers nothing while the test plays TCP by hand.
	sc2Ghost = netip.MustParseAddr("10.1.0.50")
)

func sc2LabUp(t *testing.T) {
	t.Helper()
	netnsUp(t, sc2Gen, sc2A, sc2B)
	sh(t, "ip", "-n", sc2Gen, "link", "add", "br0", "type", "bridge")
	sh(t, "ip", "-n", sc2Gen, "link", "set", "br0", "address", net6(sc2GenMAC), "up")
	sh(t, "ip", "-n", sc2Gen, "addr", "add", sc2GenIP.String()+"/24", "dev", "br0")
	sh(t, "ip", "-n", sc2Gen, "route", "add", labVIP.String()+"/32", "via", sc2BIP.String())
	for _, be := range []struct {
		ns   string
		port string
		mac  [6]byte
		ip   netip.Addr
	}{{sc2A, "rd2a0", sc2AMAC, sc2AIP}, {sc2B, "rd2b0", sc2BMAC, sc2BIP}} {
		sh(t, "ip", "link", "add", be.port, "netns", sc2Gen, "type", "veth", "peer", "name", "eth0", "netns", be.ns)
		sh(t, "ip", "-n", sc2Gen, "link", "set", be.port, "master", "br0", "up")
		sh(t, "ip", "-n", be.ns, "link", "set", "eth0", "address", net6(be.mac), "up")
		sh(t, "ip", "-n", be.ns, "addr", "add", be.ip.String()+"/24", "dev", "eth0")
		sh(t, "ip", "-n", be.ns, "addr", "add", labVIP.String()+"/32", "dev", "lo")
		sh(t, "ip", "-n", be.ns, "neigh", "replace", sc2Ghost.String(), "lladdr", net6(sc2GenMAC), "dev", "eth0", "nud", "permanent")
		sh(t, "ip", "netns", "exec", be.ns, "sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1", "net.ipv4.conf.all.arp_announce=2")
	}
}

// sc2Start runs raild decap in ns as root until the test ends.
func sc2Start(t *testing.T, ns string, args ...string) *started {
	t.Helper()
	s := &started{cmd: exec.Command("ip", append([]string{"netns", "exec", ns, raildBinary(t), "decap"}, args...)...), log: &syncBuffer{}, done: make(chan struct{})}
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			s.cmd.Process.Kill()
			<-s.done
		}
	})
	s.waitLog(t, "msg=attached", 10*time.Second)
	return s
}

// sc2Stats runs raild decap --stats in ns and parses its lines.
func sc2Stats(t *testing.T, ns string, args ...string) map[string]uint64 {
	t.Helper()
	out := sh(t, append([]string{"ip", "netns", "exec", ns, raildBinary(t), "decap", "--interface", "eth0", "--stats"}, args...)...)
	m := map[string]uint64{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(l)
		if len(f) != 2 {
			t.Fatalf("--stats line %q", l)
		}
		n, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			t.Fatalf("--stats line %q: %v", l, err)
		}
		m[f[0]] = n
	}
	return m
}

// sc2Segment is a TCP segment from src to the VIP's port 80.
type sc2Segment struct {
	src      netip.AddrPort
	seq, ack uint32
	flags    string // of S, A, P, R
	payload  string
}

// tcpLayers builds the inner IPv4 + TCP (checksum computed) of s.
func (s sc2Segment) layers() (*layers.IPv4, *layers.TCP) {
	ip := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Flags: layers.IPv4DontFragment, Protocol: layers.IPProtocolTCP,
		SrcIP: s.src.Addr().AsSlice(), DstIP: labVIP.AsSlice()}
	tcp := &layers.TCP{SrcPort: layers.TCPPort(s.src.Port()), DstPort: 80, Seq: s.seq, Ack: s.ack, Window: 502,
		SYN: strings.Contains(s.flags, "S"), ACK: strings.Contains(s.flags, "A"),
		PSH: strings.Contains(s.flags, "P"), RST: strings.Contains(s.flags, "R")}
	tcp.SetNetworkLayerForChecksum(ip)
	return ip, tcp
}

// sc2Frame is s as a frame from the generator: in GRE to the backend at
// (toMAC, to), keyed with the second hop if it is valid, or bare to the
// VIP (to invalid).
func sc2Frame(t *testing.T, s sc2Segment, toMAC [6]byte, to, secondHop netip.Addr) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: sc2GenMAC[:], DstMAC: toMAC[:], EthernetType: layers.EthernetTypeIPv4}
	ip, tcp := s.layers()
	ls := []gopacket.SerializableLayer{eth}
	if to.IsValid() {
		outer := &layers.IPv4{Version: 4, IHL: 5, TTL: 64, Flags: layers.IPv4DontFragment, Protocol: layers.IPProtocolGRE,
			SrcIP: sc2GenIP.AsSlice(), DstIP: to.AsSlice()}
		gre := &layers.GRE{Protocol: layers.EthernetTypeIPv4}
		if secondHop.IsValid() {
			gre.KeyPresent = true
			gre.Key = binary.BigEndian.Uint32(secondHop.AsSlice())
		}
		ls = append(ls, outer, gre)
	}
	ls = append(ls, ip, tcp, gopacket.Payload(s.payload))
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// synAck waits on the packet socket fd for the SYN-ACK from the VIP's port
// 80 to client and returns its sequence number and what it acknowledges.
func synAck(t *testing.T, fd int, client netip.AddrPort) (seq, ack uint32) {
	t.Helper()
	buf := make([]byte, 4096)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		n, err := unix.Read(fd, buf)
		if err != nil {
			continue
		}
		p := gopacket.NewPacket(buf[:n], layers.LayerTypeEthernet, gopacket.NoCopy)
		ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if ip == nil || tcp == nil || !tcp.SYN || !tcp.ACK || tcp.SrcPort != 80 || uint16(tcp.DstPort) != client.Port() ||
			!ip.DstIP.Equal(client.Addr().AsSlice()) {
			continue
		}
		return tcp.Seq, tcp.Ack
	}
	t.Fatalf("no SYN-ACK to %v", client)
	return 0, 0
}

// handedOnFrames reads the packet socket fd (on B) until it has been quiet
// for half a second and returns the GRE frames from A to B.
func handedOnFrames(fd int) [][]byte {
	var got [][]byte
	buf := make([]byte, 1<<16) // a GSO packet is passed on whole
	for quiet := time.Now().Add(500 * time.Millisecond); time.Now().Before(quiet); {
		n, err := unix.Read(fd, buf)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			break
		}
		f := buf[:n]
		if outerDst(f) == sc2BIP && f[23] == 47 && netip.AddrFrom4([4]byte(f[26:30])) == sc2AIP {
			got = append(got, append([]byte(nil), f...))
			quiet = time.Now().Add(500 * time.Millisecond)
		}
	}
	return got
}

// TestLabDecapSecondChance: a mid-connection segment sent to A for a
// connection that lives on B, with B as the second hop, reaches B's socket
// by way of A (tc and tcx on A, forwarding off and on), `raild decap
// --stats` and /metrics on A count it handed on; B, with SYN cookies, takes
// a keyed cookie ACK itself.
func TestLabDecapSecondChance(t *testing.T) {
	privtest.Require(t, "ip", "mount", "curl", "sysctl", "ethtool")
	sc2LabUp(t)

	// B: pinned (tcx), counters read from the pins.
	dir := filepath.Join(t.TempDir(), "bpffs")
	os.Mkdir(dir, 0o700)
	sh(t, "mount", "-t", "bpf", "rail-sc2", dir)
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	pinB := filepath.Join(dir, "decap-b")
	sh(t, "ip", "netns", "exec", sc2B, raildBinary(t), "decap", "--interface", "eth0", "--pin", pinB)
	t.Cleanup(func() {
		exec.Command("ip", "netns", "exec", sc2B, raildBinary(t), "decap", "--interface", "eth0", "--detach", "--pin", pinB).Run()
	})

	// B's server: every connection's bytes, by client address.
	var ln net.Listener
	var err error
	inNetns(t, sc2B, func() { ln, err = net.Listen("tcp4", ":80") })
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	type got struct {
		from string
		data string
	}
	received := make(chan got, 16)
	accepted := make(chan string, 16)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c.RemoteAddr().String()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				buf := make([]byte, 256)
				for {
					c.SetReadDeadline(time.Now().Add(10 * time.Second))
					n, err := c.Read(buf)
					if n > 0 {
						received <- got{c.RemoteAddr().String(), string(buf[:n])}
					}
					if err != nil {
						return
					}
				}
			}()
		}
	}()

	genFd := packetSocket(t, sc2Gen, "br0")
	bFd := packetSocket(t, sc2B, "eth0")

	for _, c := range []struct {
		mode    string
		forward string // A's net.ipv4.ip_forward
	}{{"tc", "0"}, {"tcx", "0"}, {"tcx", "1"}} {
		t.Run(c.mode+"/ip_forward="+c.forward, func(t *testing.T) {
			sh(t, "ip", "netns", "exec", sc2A, "sysctl", "-qw", "net.ipv4.ip_forward="+c.forward)
			a := sc2Start(t, sc2A, "--interface", "eth0", "--mode", c.mode, "--metrics-address", sc2Metrics)
			bBefore := sc2Stats(t, sc2B, "--pin", pinB)

			// A real connection from the generator to the VIP on B.
			var conn net.Conn
			inNetns(t, sc2Gen, func() { conn, err = net.DialTimeout("tcp4", labVIP.String()+":80", 5*time.Second) })
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			cli := conn.LocalAddr().(*net.TCPAddr).AddrPort()
			sseq, sack := synAck(t, genFd, cli)
			select {
			case from := <-accepted:
				if from != cli.String() {
					t.Fatalf("B accepted %s, want %s", from, cli)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("B accepted nothing")
			}

			// Its next segment, in GRE to A, second hop B.
			payload := "second chance via " + c.mode
			seg := sc2Segment{src: cli, seq: sack, ack: sseq + 1, flags: "PA", payload: payload}
			sendFrames(t, genFd, [][]byte{sc2Frame(t, seg, sc2AMAC, sc2AIP, sc2BIP)})
			select {
			case g := <-received:
				if g.from != cli.String() || g.data != payload {
					t.Errorf("B's socket read %q from %s, want %q from %s", g.data, g.from, payload, cli)
				}
			case <-time.After(5 * time.Second):
				t.Errorf("B's socket got nothing:\n%s", a.log)
			}

			// On B's wire: one GRE frame from A, without key, the inner
			// segment unchanged.
			frames := handedOnFrames(bFd)
			if len(frames) != 1 {
				t.Errorf("%d GRE frames from A to B, want 1", len(frames))
			}
			for _, f := range frames {
				p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
				gre, _ := p.Layer(layers.LayerTypeGRE).(*layers.GRE)
				tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
				if gre == nil || gre.KeyPresent || gre.ChecksumPresent || gre.SeqPresent || tcp == nil ||
					string(tcp.Payload) != payload || tcp.Seq != seg.seq {
					t.Errorf("handed-on frame: %v", p)
				}
				if !bytes.Equal(f[0:6], sc2BMAC[:]) || !bytes.Equal(f[6:12], sc2AMAC[:]) {
					t.Errorf("handed-on frame from %x to %x, want A's MAC to B's", f[6:12], f[0:6])
				}
			}

			// A counted one hand-on: --stats of the running instance and
			// its /metrics agree; B delivered one frame.
			st := sc2Stats(t, sc2A)
			if st["handed_on"] != 1 || st["hand_on_failed"] != 0 || st["no_route"] != 0 {
				t.Errorf("A's --stats: %v, want handed_on 1", st)
			}
			metrics := sh(t, "ip", "netns", "exec", sc2A, "curl", "-sf", "http://"+sc2Metrics+"/metrics")
			if !strings.Contains(metrics, `rail_decap_packets_total{decision="handed_on"} 1`+"\n") {
				t.Errorf("A's /metrics:\n%s", metrics)
			}
			bAfter := sc2Stats(t, sc2B, "--pin", pinB)
			if d := bAfter["delivered"] - bBefore["delivered"]; d != 1 || bAfter["handed_on"] != 0 {
				t.Errorf("B delivered %d frames (want 1), handed on %d (want 0): %v", d, bAfter["handed_on"], bAfter)
			}
			a.stop(t)
			if !strings.Contains(a.log.String(), "handed_on=1 ") {
				t.Errorf("A's log:\n%s", a.log)
			}
		})
	}

	// GRO on A's interface: the keyed segments of a burst arrive as one
	// GSO packet (gso_type GRE|TCPV4) and are handed on as one, without
	// their keys; B must still read every byte, in order.
	// With tx-gre-segmentation off on A's eth0 the kernel segments the
	// handed-on GSO packet itself (gre_gso_segment), as for a NIC without
	// GRE TSO: B gets one keyless GRE frame per segment.
	for _, c := range []struct {
		forward string
		swGSO   bool
	}{{"0", false}, {"1", false}, {"0", true}} {
		name := "gro/ip_forward=" + c.forward
		if c.swGSO {
			name += "/software_gso"
		}
		t.Run(name, func(t *testing.T) {
			sh(t, "ip", "netns", "exec", sc2A, "sysctl", "-qw", "net.ipv4.ip_forward="+c.forward)
			if c.swGSO {
				sh(t, "ip", "netns", "exec", sc2A, "ethtool", "-K", "eth0", "tx-gre-segmentation", "off", "tx-gre-csum-segmentation", "off")
				defer exec.Command("ip", "netns", "exec", sc2A, "ethtool", "-K", "eth0", "tx-gre-segmentation", "on", "tx-gre-csum-segmentation", "on").Run()
			}
			sh(t, "ip", "netns", "exec", sc2A, "ethtool", "-K", "eth0", "gro", "on")
			defer exec.Command("ip", "netns", "exec", sc2A, "ethtool", "-K", "eth0", "gro", "off").Run()
			// A veth takes the NAPI (GRO) path only for frames from a peer
			// without TSO; threaded NAPI lets the burst pile up in the ring
			// while the NAPI thread wakes, so GRO gets several at once.
			sh(t, "ip", "netns", "exec", sc2Gen, "ethtool", "-K", "rd2a0", "tso", "off")
			sh(t, "ip", "netns", "exec", sc2A, "sh", "-c", "echo 1 >/sys/class/net/eth0/threaded")
			a := sc2Start(t, sc2A, "--interface", "eth0", "--mode", "tcx")
			var conn net.Conn
			inNetns(t, sc2Gen, func() { conn, err = net.DialTimeout("tcp4", labVIP.String()+":80", 5*time.Second) })
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			cli := conn.LocalAddr().(*net.TCPAddr).AddrPort()
			sseq, sack := synAck(t, genFd, cli)
			<-accepted
			const segs, size = 32, 1000
			var want strings.Builder
			for i := range segs {
				chunk := strings.Repeat(string(rune('a'+i%26)), size)
				want.WriteString(chunk)
				flags := "A"
				if i == segs-1 {
					flags = "PA"
				}
				f := sc2Frame(t, sc2Segment{src: cli, seq: sack + uint32(i*size), ack: sseq + 1, flags: flags, payload: chunk}, sc2AMAC, sc2AIP, sc2BIP)
				if _, err := unix.Write(genFd, f); err != nil { // a burst: no pause
					t.Fatal(err)
				}
			}
			var data strings.Builder
			for deadline := time.After(5 * time.Second); data.Len() < segs*size; {
				select {
				case g := <-received:
					if g.from == cli.String() {
						data.WriteString(g.data)
					}
				case <-deadline:
					t.Fatalf("B's socket read %d of %d bytes:\n%s", data.Len(), segs*size, a.log)
				}
			}
			if data.String() != want.String() {
				t.Errorf("B's socket read %d bytes, not those sent", data.Len())
			}
			st := sc2Stats(t, sc2A)
			t.Logf("%d segments in a burst: A handed on %d packets (fewer: GRO merged them), %d failed", segs, st["handed_on"], st["hand_on_failed"])
			if st["hand_on_failed"] != 0 || st["handed_on"] == 0 || st["handed_on"] > segs {
				t.Errorf("A's --stats: %v", st)
			}
			frames := handedOnFrames(bFd)
			t.Logf("B's wire: %d GRE frames from A", len(frames))
			for _, f := range frames {
				p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
				ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
				gre, _ := p.Layer(layers.LayerTypeGRE).(*layers.GRE)
				if ip == nil || gre == nil || gre.KeyPresent || int(ip.Length) != len(f)-14 {
					t.Errorf("handed-on frame: %v", p)
				}
			}
			if c.swGSO && len(frames) != segs {
				t.Errorf("software GSO: %d frames on B's wire, want %d", len(frames), segs)
			}
			a.stop(t)
		})
	}

	// SYN cookies on B: the listener keeps no request socket, so only
	// bpf_tcp_check_syncookie tells the ACK that completes a cookie from a
	// segment of a connection B does not have.
	t.Run("syn cookie", func(t *testing.T) {
		sh(t, "ip", "netns", "exec", sc2B, "sysctl", "-qw", "net.ipv4.tcp_syncookies=2")
		cli := netip.AddrPortFrom(sc2Ghost, 47001)
		const isn = 0x0badcafe
		sendFrames(t, genFd, [][]byte{sc2Frame(t, sc2Segment{src: cli, seq: isn, flags: "S"}, sc2BMAC, netip.Addr{}, netip.Addr{})})
		cookie, ack := synAck(t, genFd, cli)
		if ack != isn+1 {
			t.Fatalf("SYN-ACK acknowledges %#x, want %#x", ack, isn+1)
		}
		before := sc2Stats(t, sc2B, "--pin", pinB)
		// A wrong cookie first: no socket for it on B, so it is handed on
		// to A, the second hop.
		sendFrames(t, genFd, [][]byte{sc2Frame(t, sc2Segment{src: cli, seq: isn + 1, ack: cookie ^ 0x00f00000 + 1, flags: "A"}, sc2BMAC, sc2BIP, sc2AIP)})
		time.Sleep(200 * time.Millisecond)
		mid := sc2Stats(t, sc2B, "--pin", pinB)
		if mid["handed_on"]-before["handed_on"] != 1 {
			t.Errorf("a wrong cookie ACK was not handed on: %v -> %v", before, mid)
		}
		sendFrames(t, genFd, [][]byte{sc2Frame(t, sc2Segment{src: cli, seq: isn + 1, ack: cookie + 1, flags: "A"}, sc2BMAC, sc2BIP, sc2AIP)})
		select {
		case from := <-accepted:
			if from != cli.String() {
				t.Errorf("B accepted %s, want %s", from, cli)
			}
		case <-time.After(5 * time.Second):
			t.Error("B made no connection from the cookie ACK")
		}
		after := sc2Stats(t, sc2B, "--pin", pinB)
		if after["delivered"]-mid["delivered"] != 1 || after["handed_on"] != mid["handed_on"] {
			t.Errorf("the cookie ACK: %v -> %v, want delivered +1, handed_on +0", mid, after)
		}
		t.Logf("B: %v", after)
	})
}

// TestPrivilegeDecapSecondChanceAsUnit: the program variant that looks up
// unkeyed segments too (--lookup-unkeyed: the verifier sees more paths
// into the socket lookup) loads with the unit's capabilities alone, as
// user nobody, and serves its counters at --metrics-address (namespace
// rd2-priv).
func TestPrivilegeDecapSecondChanceAsUnit(t *testing.T) {
	privtest.Require(t, "ip", "setpriv", "curl")
	a := newAsUnit(t, false)
	const ns, dev, peer = "rd2-priv", "rd2p0", "rd2p1"
	netnsUp(t, ns)
	sh(t, "ip", "-n", ns, "link", "add", dev, "type", "veth", "peer", "name", peer)
	sh(t, "ip", "-n", ns, "link", "set", dev, "up")
	sh(t, "ip", "-n", ns, "link", "set", peer, "up")
	sh(t, "ip", "-n", ns, "addr", "add", sc2AIP.String()+"/24", "dev", dev)
	d := a.start(t, ns, "decap", "--interface", dev, "--lookup-unkeyed", "--metrics-address", sc2Metrics)
	d.waitLog(t, "msg=metrics", 10*time.Second)
	if !strings.Contains(d.log.String(), "lookup_unkeyed=true") {
		t.Errorf("not loaded with lookup_unkeyed:\n%s", d.log)
	}
	m := sh(t, "ip", "netns", "exec", ns, "curl", "-sf", "http://"+sc2Metrics+"/metrics")
	if !strings.Contains(m, `rail_decap_packets_total{decision="handed_on"} 0`) {
		t.Errorf("/metrics:\n%s", m)
	}
	d.stop(t)
}
