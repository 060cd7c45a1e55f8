package decap

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"
	"time"

	"github.com/rail-lb/rail/internal/privtest"
	"github.com/rail-lb/rail/pipeline"
)

var (
	backendMAC = [6]byte{2, 0, 0, 0, 0xbe, 1}
	routerMAC  = [6]byte{2, 0, 0, 0, 0x0e, 1}
	node       = netip.MustParseAddr("10.0.0.2")
	node6      = netip.MustParseAddr("2001:db8::2")
	backend    = netip.MustParseAddr("10.1.0.11")
	backend6   = netip.MustParseAddr("2001:db8:1::11")
	elsewhere  = netip.MustParseAddr("10.1.0.99")
	client     = netip.MustParseAddr("198.51.100.7")
	client6    = netip.MustParseAddr("2001:db8:c::7")
	vip        = netip.MustParseAddr("192.0.2.10")
	vip6       = netip.MustParseAddr("2001:db8:f::10")
)

func ether(etype uint16, payload []byte) []byte {
	f := append(append([]byte{}, backendMAC[:]...), routerMAC[:]...)
	f = binary.BigEndian.AppendUint16(f, etype)
	return append(f, payload...)
}

func csum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}

// ip4 is an IPv4 header (no options, DF) around payload.
func ip4(src, dst netip.Addr, proto uint8, payload []byte) []byte {
	h := make([]byte, 20)
	h[0] = 0x45
	binary.BigEndian.PutUint16(h[2:], uint16(20+len(payload)))
	h[6] = 0x40
	h[8] = 64
	h[9] = proto
	s, d := src.As4(), dst.As4()
	copy(h[12:], s[:])
	copy(h[16:], d[:])
	binary.BigEndian.PutUint16(h[10:], csum(h))
	return append(h, payload...)
}

func ip6(src, dst netip.Addr, next uint8, payload []byte) []byte {
	h := make([]byte, 40)
	h[0] = 0x60
	binary.BigEndian.PutUint16(h[4:], uint16(len(payload)))
	h[6] = next
	h[7] = 64
	s, d := src.As16(), dst.As16()
	copy(h[8:], s[:])
	copy(h[24:], d[:])
	return append(h, payload...)
}

// tcpSeg is a TCP header with a SYN and some payload (checksum left 0:
// the program never looks).
func tcpSeg(sport, dport uint16, payload string) []byte {
	h := make([]byte, 20)
	binary.BigEndian.PutUint16(h[0:], sport)
	binary.BigEndian.PutUint16(h[2:], dport)
	h[12] = 5 << 4
	h[13] = 0x02
	return append(h, payload...)
}

// gre is a GRE header with the given first flag byte, second byte and
// protocol, plus 4 bytes for each of C, K and S set.
func gre(flags, ver byte, proto uint16, payload []byte) []byte {
	h := []byte{flags, ver, byte(proto >> 8), byte(proto)}
	for _, bit := range []byte{0x80, 0x20, 0x10} {
		if flags&bit != 0 {
			h = append(h, 0xaa, 0xbb, 0xcc, 0xdd)
		}
	}
	return append(h, payload...)
}

func loadTest(t *testing.T) *Program {
	t.Helper()
	privtest.Require(t)
	p, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if err := p.SetAddrs([]netip.Addr{backend, backend6}); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestDecap feeds frames through the program with BPF_PROG_TEST_RUN:
// every GRE frame to one of the addresses comes out as Ethernet + the
// inner packet (the Ethernet type following the inner family); everything
// else comes out untouched.
func TestDecap(t *testing.T) {
	p := loadTest(t)
	in4 := ip4(client, vip, 6, tcpSeg(40000, 80, "GET / HTTP/1.1\r\n\r\n"))
	in6 := ip6(client6, vip6, 6, tcpSeg(40000, 80, "GET / HTTP/1.1\r\n\r\n"))
	type tc struct {
		name  string
		frame []byte
		want  []byte // nil: untouched
		count int    // which counter goes up
	}
	cases := []tc{
		{"ipv4 in ipv4", ether(0x0800, ip4(node, backend, 47, gre(0, 0, 0x0800, in4))), ether(0x0800, in4), countDelivered},
		{"ipv6 in ipv4", ether(0x0800, ip4(node, backend, 47, gre(0, 0, 0x86dd, in6))), ether(0x86dd, in6), countDelivered},
		{"ipv6 in ipv6", ether(0x86dd, ip6(node6, backend6, 47, gre(0, 0, 0x86dd, in6))), ether(0x86dd, in6), countDelivered},
		{"ipv4 in ipv6", ether(0x86dd, ip6(node6, backend6, 47, gre(0, 0, 0x0800, in4))), ether(0x0800, in4), countDelivered},
		{"gre checksum key sequence", ether(0x0800, ip4(node, backend, 47, gre(0xb0, 0, 0x0800, in4))), ether(0x0800, in4), countDelivered},
		{"gre key only", ether(0x0800, ip4(node, backend, 47, gre(0x20, 0, 0x0800, in4))), ether(0x0800, in4), countDelivered},
		{"ipv4-mapped address is ipv4", ether(0x0800, ip4(node, backend, 47, gre(0, 0, 0x0800, in4))), ether(0x0800, in4), countDelivered},
		{"not our address", ether(0x0800, ip4(node, elsewhere, 47, gre(0, 0, 0x0800, in4))), nil, countPass},
		{"plain packet to the vip", ether(0x0800, in4), nil, countPass},
		{"udp to us", ether(0x0800, ip4(node, backend, 17, make([]byte, 16))), nil, countPass},
		{"arp", ether(0x0806, make([]byte, 28)), nil, countPass},
		{"ipv4 options", ether(0x0800, append([]byte{0x46}, ip4(node, backend, 47, gre(0, 0, 0x0800, in4))[1:]...)), nil, countPass},
		{"ipv4 fragment", ether(0x0800, func() []byte {
			b := ip4(node, backend, 47, gre(0, 0, 0x0800, in4))
			b[6] |= 0x20 // more fragments
			return b
		}()), nil, countPass},
		{"ipv6 extension header", ether(0x86dd, ip6(node6, backend6, 60, append([]byte{47, 0, 0, 0, 0, 0, 0, 0}, gre(0, 0, 0x0800, in4)...))), nil, countPass},
		{"truncated gre", ether(0x0800, ip4(node, backend, 47, []byte{0, 0})), nil, countPass},
		{"gre version 1", ether(0x0800, ip4(node, backend, 47, gre(0, 1, 0x0800, in4))), nil, countUnsupported},
		{"gre routing bit", ether(0x0800, ip4(node, backend, 47, gre(0x40, 0, 0x0800, in4))), nil, countUnsupported},
		{"transparent ethernet bridging", ether(0x0800, ip4(node, backend, 47, gre(0, 0, 0x6558, ether(0x0800, in4)))), nil, countUnsupported},
		{"type says ipv4, packet is ipv6", ether(0x0800, ip4(node, backend, 47, gre(0, 0, 0x0800, in6))), nil, countUnsupported},
		{"gre without an inner packet", ether(0x0800, ip4(node, backend, 47, gre(0, 0, 0x0800, nil))), nil, countPass},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before, err := p.Counts()
			if err != nil {
				t.Fatal(err)
			}
			v, out, err := p.Run(c.frame)
			if err != nil {
				t.Fatal(err)
			}
			if v != ActOK {
				t.Errorf("verdict %d, want TC_ACT_OK", v)
			}
			want := c.want
			if want == nil {
				want = c.frame
			}
			if !bytes.Equal(out, want) {
				t.Errorf("out\n% x\nwant\n% x", out, want)
			}
			after, _ := p.Counts()
			checkCounted(t, before, after, c.count)
		})
	}
}

// counters returns c by map index (decap.c's COUNT_ constants).
func counters(c Counts) [numCounts]uint64 {
	var a [numCounts]uint64
	a[countDelivered], a[countPass], a[countError], a[countUnsupported] = c.Delivered, c.Passed, c.Errors, c.Unsupported
	a[countHandedOn], a[countNoSocket], a[countNoRoute], a[countHandOnError] = c.HandedOn, c.NoSocketNoSecondHop, c.NoRoute, c.HandOnFailed
	return a
}

// checkCounted wants exactly counter want to have gone up, by one.
func checkCounted(t *testing.T, before, after Counts, want int) {
	t.Helper()
	b, a := counters(before), counters(after)
	for i := range a {
		w := uint64(0)
		if i == want {
			w = 1
		}
		if n := a[i] - b[i]; n != w {
			t.Errorf("counter %d went up by %d, want %d", i, n, w)
		}
	}
	if d := after.Decapsulated - before.Decapsulated; d != a[countDelivered]-b[countDelivered]+a[countNoSocket]-b[countNoSocket]+a[countNoRoute]-b[countNoRoute] {
		t.Errorf("Decapsulated went up by %d, not by the sum of the three ways of delivering", d)
	}
}

// TestDecapRoundTrip: what Rail's pipeline sends to a backend, the
// program turns back into the client's frame, byte for byte after the
// Ethernet addresses — for the plain form (encapsulated by the node) and
// the GRE form (re-targeted), IPv4 and IPv6 backends, IPv4 and IPv6
// clients.
func TestDecapRoundTrip(t *testing.T) {
	p := loadTest(t)
	for _, be := range []netip.Addr{backend, backend6} {
		snap, err := pipeline.NewSnapshot(pipeline.Config{
			Local: node, Local6: node6, Seed: 1,
			Services: []pipeline.ServiceConfig{
				{Name: "web", VIP: vip, Port: 80, Proto: 6, TableSize: 101,
					Backends: []pipeline.BackendConfig{{Address: be, Key: be.String(), Weight: 1, Healthy: true}}},
				{Name: "web6", VIP: vip6, Port: 80, Proto: 6, TableSize: 101,
					Backends: []pipeline.BackendConfig{{Address: be, Key: be.String(), Weight: 1, Healthy: true, ID: 1}}},
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		ct, err := pipeline.NewConntrack(1024, time.Hour, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		w := pipeline.NewWorker(ct)
		inners := map[string][]byte{
			"ipv4 client": ip4(client, vip, 6, tcpSeg(40001, 80, "hello")),
			"ipv6 client": ip6(client6, vip6, 6, tcpSeg(40001, 80, "hello")),
		}
		for name, inner := range inners {
			etype := uint16(0x0800)
			if inner[0]>>4 == 6 {
				etype = 0x86dd
			}
			forms := map[string][]byte{
				"plain": ether(etype, inner),
				"gre":   ether(0x0800, ip4(netip.MustParseAddr("10.0.0.1"), node, 47, gre(0, 0, etype, inner))),
			}
			for form, frame := range forms {
				t.Run(be.String()+"/"+name+"/"+form, func(t *testing.T) {
					buf := make([]byte, 256+len(frame)+pipeline.MaxHeadroom)
					copy(buf[256:], frame)
					pk := pipeline.Packet{Buf: buf, Off: 256, Len: len(frame)}
					w.Begin(snap, time.Now())
					r := w.Process(&pk)
					w.Flush()
					if r.Verdict != pipeline.Tx {
						t.Fatalf("pipeline: %v %v", r.Verdict, r.Reason)
					}
					sent := pk.Buf[pk.Off : pk.Off+pk.Len]
					v, out, err := p.Run(sent)
					if err != nil || v != ActOK {
						t.Fatalf("Run = %d, %v", v, err)
					}
					if got := binary.BigEndian.Uint16(out[12:]); got != etype {
						t.Errorf("Ethernet type %#x, want %#x", got, etype)
					}
					if !bytes.Equal(out[14:], inner) {
						t.Errorf("inner packet\n% x\nwant\n% x", out[14:], inner)
					}
					if !bytes.Equal(out[:12], sent[:12]) {
						t.Errorf("Ethernet addresses changed: % x -> % x", sent[:12], out[:12])
					}
				})
			}
		}
	}
}

func TestDecapSetAddrs(t *testing.T) {
	p := loadTest(t)
	frame := ether(0x0800, ip4(node, backend, 47, gre(0, 0, 0x0800, ip4(client, vip, 6, tcpSeg(1, 80, "")))))
	decapsulated := func() bool {
		t.Helper()
		_, out, err := p.Run(frame)
		if err != nil {
			t.Fatal(err)
		}
		return len(out) < len(frame)
	}
	if !decapsulated() {
		t.Fatal("not decapsulated with the address in the set")
	}
	if err := p.SetAddrs([]netip.Addr{elsewhere}); err != nil {
		t.Fatal(err)
	}
	if decapsulated() {
		t.Error("decapsulated after the address was removed")
	}
	if err := p.SetAddrs([]netip.Addr{netip.MustParseAddr("::ffff:10.1.0.11")}); err != nil {
		t.Fatal(err)
	}
	if !decapsulated() {
		t.Error("an IPv4-mapped address did not stand for the IPv4 one")
	}
	if err := p.SetAddrs([]netip.Addr{{}}); err == nil {
		t.Error("SetAddrs accepted the zero address")
	}
	if err := p.SetAddrs([]netip.Addr{netip.MustParseAddr("fe80::1%eth0")}); err == nil {
		t.Error("SetAddrs accepted an address with a zone")
	}
	if _, err := p.Attach(1, Mode(9)); err == nil {
		t.Error("Attach accepted mode 9")
	}
	p.Close()
	if err := p.SetAddrs(nil); err != ErrClosed {
		t.Errorf("SetAddrs after Close = %v, want ErrClosed", err)
	}
}

func TestParseMode(t *testing.T) {
	for _, m := range []Mode{ModeAuto, ModeTCX, ModeTC} {
		if got, err := ParseMode(m.String()); err != nil || got != m {
			t.Errorf("ParseMode(%q) = %v, %v", m.String(), got, err)
		}
	}
	if _, err := ParseMode("xdp"); err == nil {
		t.Error("ParseMode accepted xdp")
	}
}
