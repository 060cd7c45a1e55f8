package pipeline

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"

	"github.com/rail-lb/rail/pipeline/header"
)

// FuzzProcess feeds arbitrary frames to Process. It must never panic, never
// write outside the frame and the headroom it may use (EncapLen bytes in
// front), give a verdict from the enum with a reason of that verdict, and
// for Tx transmit a frame that gopacket decodes as a valid one
// (checkTransmitted: outer IPv4 or IPv6 with valid lengths and checksum,
// GRE, an inner packet; or an ICMP too-big reply with valid checksums)
// with the inner packet byte for byte as it came in. The interface MTU is
// 1500, so that too-big replies are among the frames checked.
func FuzzProcess(f *testing.F) {
	for _, tc := range append(verdictCases(f), mtuCases(f)...) {
		f.Add(tc.frame)
	}
	c := testConfig()
	c.MTU = 1500
	w := newTestWorker(f, c)
	const guard = 64
	f.Fuzz(func(t *testing.T, frame []byte) {
		buf := make([]byte, guard+testHeadroom+len(frame)+guard)
		for i := range buf {
			buf[i] = 0xa5
		}
		copy(buf[guard+testHeadroom:], frame)
		orig := append([]byte(nil), buf...)
		// The packet's buffer ends where the frame ends, as a UMEM frame
		// would end; the guard beyond is outside the slice entirely.
		p := &Packet{Buf: buf[:guard+testHeadroom+len(frame)], Off: guard + testHeadroom, Len: len(frame)}
		r := w.Process(p)
		w.Flush()
		if r.Verdict > Drop || r.Reason >= NumReasons || r.Reason.Verdict() != r.Verdict {
			t.Fatalf("verdict %v reason %v", r.Verdict, r.Reason)
		}
		lo := guard + testHeadroom - MaxHeadroom
		hi := guard + testHeadroom + len(frame)
		if !bytes.Equal(buf[:lo], orig[:lo]) || !bytes.Equal(buf[hi:], orig[hi:]) {
			t.Fatalf("Process wrote outside the frame and its headroom")
		}
		if r.Verdict != Tx {
			if !bytes.Equal(buf, orig) {
				t.Fatalf("Process changed a frame it did not forward (%v/%v)", r.Verdict, r.Reason)
			}
			return
		}
		if p.Off < lo || p.Off+p.Len > hi || p.Len < outerLen {
			t.Fatalf("egress frame [%d,%d) outside [%d,%d)", p.Off, p.Off+p.Len, lo, hi)
		}
		out := buf[p.Off : p.Off+p.Len]
		if err := checkTransmitted(out, c.Local, c.Local6); err != nil {
			t.Fatalf("transmitted frame (%v): %v\n%x", r.Reason, err, out)
		}
		if r.Reason == ICMPTooBig {
			return
		}
		// The inner packet did not move: it is at the same place in the
		// original bytes, right after the GRE header.
		at := p.Off + outerLen
		if out[12] == 0x86 {
			at = p.Off + header.EthernetLen + EncapLen6
		}
		inner := buf[at : p.Off+p.Len]
		if !bytes.Equal(inner, orig[at:at+len(inner)]) {
			t.Fatalf("inner packet changed")
		}
	})
}

// FuzzFastPathMatchesGeneral checks that the fast path of Process decides
// and rewrites exactly as the general path would, for any frame.
func FuzzFastPathMatchesGeneral(f *testing.F) {
	for _, tc := range verdictCases(f) {
		f.Add(tc.frame)
	}
	c := testConfig()
	fast, general := newTestWorker(f, c), newTestWorker(f, c)
	f.Fuzz(func(t *testing.T, frame []byte) {
		a, b := packetFor(frame), packetFor(frame)
		ra := fast.Process(a)
		rb := general.general(b)
		if ra != rb {
			t.Fatalf("fast path %+v, general path %+v", ra, rb)
		}
		if a.Off != b.Off || a.Len != b.Len || !bytes.Equal(a.Buf, b.Buf) {
			t.Fatalf("fast and general paths wrote different frames")
		}
	})
}

// TestFastPathMatchesGeneral runs the fuzz target's property over many
// systematic one-byte corruptions of each form a fast path takes (GRE-in
// IPv4, GRE-in IPv6 to IPv6 and to IPv4 backends, plain IPv4, with and
// without an MTU that some of them exceed), on flows both workers have as
// established, so that every fast-path condition is exercised on each
// run; and it checks that each form's uncorrupted frame did take a fast
// path.
// fastForm is a frame of a form a fast path takes, or one it must not.
type fastForm struct {
	name  string
	frame []byte
	fast  bool // the frame takes a fast path once its flow is established (with no MTU)
}

// fastForms are the frames TestFastPathMatchesGeneral corrupts and
// TestNoAllocs forwards; their services are testConfig's and udpService.
func fastForms(t testing.TB) []fastForm {
	ack := func(frame []byte, flagsAt int) []byte {
		f := append([]byte(nil), frame...)
		f[flagsAt] = tcpACK
		return f
	}
	mixed := v6Inner()
	mixed.dst, mixed.dport = vipMixed, 443
	big := defaultInner()
	big.payload = make([]byte, 600)
	udp := defaultInner() // to the service below
	udp.proto, udp.dport = 17, 443
	wild := defaultInner() // to a port-0 service: no exact slot, the general path
	wild.proto, wild.dst, wild.dport = 17, netip.MustParseAddr("192.0.2.53"), 53
	const gre4, gre6, plain = outerLen + header.IPv4MinLen + tcpFlagAt, outerLen + header.IPv6Len + tcpFlagAt, ethIPv4Len + tcpFlagAt
	return []fastForm{
		{"GRE-in IPv4", ack(greFrame(t, defaultInner(), nil), gre4), true},
		{"GRE-in IPv4 UDP", greFrame(t, udp, nil), true},
		{"GRE-in IPv6 to IPv6", ack(greFrame(t, v6Inner(), nil), gre6), true},
		{"GRE-in IPv6 to IPv4", ack(greFrame(t, mixed, nil), gre6), true},
		{"plain IPv4", ack(plainFrame(t, defaultInner()), plain), true},
		{"plain IPv4 padded", append(ack(plainFrame(t, defaultInner()), plain), 0, 0, 0, 0, 0, 0), true},
		{"plain IPv4 UDP", plainFrame(t, udp), true},
		{"plain IPv4 UDP, port-0 service", plainFrame(t, wild), false},
		{"plain IPv4 over the MTU", ack(plainFrame(t, big), plain), true},
		{"GRE-in IPv6 SYN", greFrame(t, v6Inner(), nil), false},
	}
}

// udpService is a UDP service on the web VIP, for fastForms' UDP frames.
func udpService(c *Config) {
	c.Services = append(c.Services, ServiceConfig{Name: "quic", VIP: vip, Port: 443, Proto: 17, TableSize: 251, Backends: c.Services[0].Backends})
}

func TestFastPathMatchesGeneral(t *testing.T) {
	forms := fastForms(t)
	for _, mtu := range []int{0, 600} {
		c := testConfig()
		c.MTU = mtu
		udpService(&c)
		fast, general := newTestWorker(t, c), newTestWorker(t, c)
		for _, form := range forms {
			// Establish the flow on both workers: its first packet records
			// it, the second makes it established.
			for range 2 {
				fast.Process(packetFor(form.frame))
				general.general(packetFor(form.frame))
			}
			fast.Flush()
			before := fast.Stats().FastPath.Load()
			a, b := packetFor(form.frame), packetFor(form.frame)
			ra, rb := fast.Process(a), general.general(b)
			fast.Flush()
			if ra != rb || a.Off != b.Off || a.Len != b.Len || !bytes.Equal(a.Buf, b.Buf) {
				t.Fatalf("MTU %d, %s: fast %+v, general %+v", mtu, form.name, ra, rb)
			}
			took := fast.Stats().FastPath.Load() > before
			if want := form.fast && (mtu == 0 || len(form.frame) < 600); took != want {
				t.Errorf("MTU %d, %s: took a fast path %v, want %v (%+v)", mtu, form.name, took, want, ra)
			}
			fr := form.frame
			for i := 0; i < len(fr) && i < fast6Len+16; i++ {
				for _, v := range []byte{0x00, 0x01, 0x06, 0x11, 0x2f, 0x40, 0x45, 0x46, 0x60, 0x80, 0x86, 0xdd, 0xff, fr[i] + 1, fr[i] - 1} {
					m := append([]byte(nil), fr...)
					m[i] = v
					for _, cut := range []int{0, 1, 4} {
						in := m[:len(m)-cut]
						a, b := packetFor(in), packetFor(in)
						ra, rb := fast.Process(a), general.general(b)
						if ra != rb || a.Off != b.Off || a.Len != b.Len || !bytes.Equal(a.Buf, b.Buf) {
							t.Fatalf("MTU %d, %s, byte %d = %#x, cut %d: fast %+v, general %+v", mtu, form.name, i, v, cut, ra, rb)
						}
					}
				}
			}
		}
		fast.Flush()
		if fast.Stats().FastPath.Load() == 0 {
			t.Fatalf("MTU %d: no frame took a fast path: the test exercises nothing", mtu)
		}
	}
}

// TestServicesOfAVIPSpread: the services of one VIP (ports and protocols)
// start at different slots, so most of them are found by the fast paths'
// exact lookup. With the port/protocol word shifted into the hash instead
// of multiplied, all eight started at one slot and only one was found.
func TestServicesOfAVIPSpread(t *testing.T) {
	c := Config{Local: localAddr}
	for _, port := range []uint16{80, 443, 8080, 8443} {
		for _, proto := range []uint8{6, 17} {
			c.Services = append(c.Services, ServiceConfig{Name: fmt.Sprint(port, "/", proto), VIP: vip, Port: port, Proto: proto, TableSize: 251,
				Backends: []BackendConfig{{Address: backends[0], Weight: 1, Healthy: true}}})
		}
	}
	s, err := NewSnapshot(c)
	if err != nil {
		t.Fatal(err)
	}
	d := vip.As4()
	exact := 0
	for _, sc := range c.Services {
		if s.exactService4(be.Uint32(d[:]), portProto(sc.Port, sc.Proto)) != nil {
			exact++
		}
	}
	t.Logf("%d of %d services of one VIP in their own slot", exact, len(c.Services))
	if exact < len(c.Services)/2 {
		t.Errorf("only %d of %d services of one VIP are in their own slot", exact, len(c.Services))
	}
}
