package pipeline

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

type verdictCase struct {
	name    string
	frame   []byte
	verdict Verdict
	reason  Reason
}

// verdictCases has a frame for every row of docs/verdicts.md.
func verdictCases(t testing.TB) []verdictCase {
	in := defaultInner()
	mod := func(f func(*innerSpec)) innerSpec { s := defaultInner(); f(&s); return s }
	mod6 := func(f func(*innerSpec)) innerSpec { s := v6Inner(); f(&s); return s }
	truncate := func(b []byte, n int) []byte { return b[:len(b)-n] }
	set := func(b []byte, off int, v ...byte) []byte { copy(b[off:], v); return b }

	arp := serialize(t, ethLayer(layers.EthernetTypeARP), &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, Operation: 1, SourceHwAddress: routerMAC, SourceProtAddress: routerIP.AsSlice(),
		DstHwAddress: make([]byte, 6), DstProtAddress: localAddr.AsSlice()})
	ssh := plainFrame(t, mod(func(s *innerSpec) { s.dst = localAddr; s.dport = 22 }))
	otherGRE := greFrame(t, in, nil)
	copy(otherGRE[14+16:], netip.MustParseAddr("10.0.0.3").AsSlice()) // GRE to someone else
	otherGRE = fixOuterChecksum(otherGRE)

	return []verdictCase{
		{"gre tcp", greFrame(t, in, nil), Tx, ReasonNone},
		{"gre udp any port", greFrame(t, mod(func(s *innerSpec) {
			s.proto, s.dst, s.dport = layers.IPProtocolUDP, netip.MustParseAddr("192.0.2.53"), 5353
		}), nil), Tx, ReasonNone},
		{"gre with key, sequence and checksum", greFrame(t, in, &layers.GRE{Protocol: layers.EthernetTypeIPv4,
			ChecksumPresent: true, KeyPresent: true, Key: 7, SeqPresent: true, Seq: 9}), Tx, ReasonNone},
		{"plain tcp", plainFrame(t, in), Tx, ReasonNone},
		{"plain tcp no DF", plainFrame(t, mod(func(s *innerSpec) { s.df = false })), Tx, ReasonNone},
		{"arp", arp, Pass, NotIP},
		{"runt", arp[:10], Pass, NotIP},
		{"ipv6 to nobody", serialize(t, ethLayer(layers.EthernetTypeIPv6), gopacket.Payload(make([]byte, 60))), Pass, NotOurs},
		{"lldp", serialize(t, ethLayer(layers.EthernetType(0x88cc)), gopacket.Payload(make([]byte, 60))), Pass, NotIP},
		{"short ipv4", plainFrame(t, in)[:30], Pass, NotOurs},
		{"ssh to node", ssh, Pass, NotOurs},
		{"gre to another address", otherGRE, Pass, NotOurs},
		{"plain to another address", plainFrame(t, mod(func(s *innerSpec) { s.dst = netip.MustParseAddr("203.0.113.1") })), Pass, NotOurs},
		{"vip wrong port", plainFrame(t, mod(func(s *innerSpec) { s.dport = 8080 })), Pass, NoService},
		{"vip wrong proto", plainFrame(t, mod(func(s *innerSpec) { s.proto = layers.IPProtocolUDP })), Pass, NoService},
		{"gre inner not a vip", greFrame(t, mod(func(s *innerSpec) { s.dst = netip.MustParseAddr("203.0.113.1") }), nil), Pass, NoService},
		{"gre inner vip wrong port", greFrame(t, mod(func(s *innerSpec) { s.dport = 81 }), nil), Pass, NoService},
		{"icmp echo to vip: default service", plainFrame(t, mod(func(s *innerSpec) { s.proto = layers.IPProtocolICMPv4 })), Tx, ReasonNone},
		{"icmp other to vip without any-protocol service", plainFrame(t, mod(func(s *innerSpec) { s.proto, s.icmpType, s.icmpBody = layers.IPProtocolICMPv4, 13, []byte{} })), Pass, NoService},
		{"gre truncated outer", truncate(greFrame(t, in, nil), 20), Drop, Malformed},
		{"gre outer ihl 4", set(greFrame(t, in, nil), 14, 0x44), Drop, Malformed},
		{"gre outer version 6", set(greFrame(t, in, nil), 14, 0x65), Drop, Malformed},
		{"gre inner truncated", set(greFrame(t, in, nil), 14+2, 0, 20+4+10), Drop, Malformed},
		{"gre inner bad version", set(greFrame(t, in, nil), 14+24, 0x55), Drop, Malformed},
		{"plain total length past frame", set(plainFrame(t, in), 14+2, 0x05, 0xdc), Drop, Malformed},
		{"plain tcp without ports", set(plainFrame(t, in), 14+2, 0, 22), Drop, Malformed},
		{"gre key flag but too short", set(greFrame(t, mod(func(s *innerSpec) { s.payload = nil }), nil), 14+20, 0xb0), Drop, Malformed},
		{"gre version 1", set(greFrame(t, in, nil), 14+21, 0x01), Drop, Unsupported},
		{"gre routing bit", set(greFrame(t, in, nil), 14+20, 0x40), Drop, Unsupported},
		{"gre recursion bits", set(greFrame(t, in, nil), 14+20, 0x07), Drop, Unsupported},
		{"gre says ipv6 but carries ipv4", set(greFrame(t, in, nil), 14+22, 0x86, 0xdd), Drop, Malformed},
		{"gre carrying arp", set(greFrame(t, in, nil), 14+22, 0x08, 0x06), Drop, Unsupported},
		{"gre outer fragment", fixOuterChecksum(set(greFrame(t, in, nil), 14+6, 0x20)), Drop, Fragment},
		{"inner first fragment", plainFrame(t, mod(func(s *innerSpec) { s.mf, s.df = true, false })), Tx, ReasonNone},
		{"inner later fragment", plainFrame(t, mod(func(s *innerSpec) { s.fragOffset = 100; s.df = false })), Tx, ReasonNone},
		{"gre inner later fragment to a non-vip", greFrame(t, mod(func(s *innerSpec) {
			s.fragOffset, s.df, s.dst = 100, false, netip.MustParseAddr("203.0.113.1")
		}), nil), Pass, NoService},
		// IPv6.
		{"plain ipv6 to ipv6 vip", plainFrame(t, v6Inner()), Tx, ReasonNone},
		{"gre4 carrying ipv6", greFrame(t, v6Inner(), nil), Tx, ReasonNone},
		{"gre6 carrying ipv6", gre6Frame(t, v6Inner()), Tx, ReasonNone},
		{"gre6 carrying ipv4", gre6Frame(t, in), Tx, ReasonNone},
		{"ipv6 vip with ipv4 backends", plainFrame(t, mod6(func(s *innerSpec) { s.dst, s.dport = vipMixed, 443 })), Tx, ReasonNone},
		{"ipv4 vip with ipv6 backends", plainFrame(t, mod(func(s *innerSpec) { s.dst = vip4to6 })), Tx, ReasonNone},
		{"ipv6 extension headers", plainFrame(t, mod6(func(s *innerSpec) { s.extTypes = []uint8{0, 60, 43} })), Tx, ReasonNone},
		{"ipv6 nine extension headers", plainFrame(t, mod6(func(s *innerSpec) { s.extTypes = []uint8{60, 60, 60, 60, 60, 60, 60, 60, 60} })), Drop, Unsupported},
		{"ipv6 extension header past the packet", set(plainFrame(t, mod6(func(s *innerSpec) { s.extTypes = []uint8{60} })), 14+41, 0xff), Drop, Malformed},
		{"ipv6 first fragment", plainFrame(t, mod6(func(s *innerSpec) { s.mf, s.fragID = true, 7 })), Tx, ReasonNone},
		{"ipv6 later fragment", plainFrame(t, mod6(func(s *innerSpec) { s.fragOffset, s.fragID = 100, 7 })), Tx, ReasonNone},
		{"ipv6 vip wrong port", plainFrame(t, mod6(func(s *innerSpec) { s.dport = 81 })), Pass, NoService},
		{"ipv6 payload length past frame", set(plainFrame(t, v6Inner()), 14+4, 0x05, 0xdc), Drop, Malformed},
		{"ipv6 tcp without ports", set(plainFrame(t, mod6(func(s *innerSpec) { s.payload = nil })), 14+4, 0, 2), Drop, Malformed},
		{"gre6 to another address", set(gre6Frame(t, v6Inner()), 14+39, 0x99), Pass, NotOurs},
		{"ipv6 to local but not gre (ssh)", plainFrame(t, mod6(func(s *innerSpec) { s.dst, s.dport = localAddr6, 22 })), Pass, NotOurs},
		{"gre6 with a fragment header", gre6Ext(t, 44), Drop, Fragment},
		{"gre6 behind a destination options header", gre6Ext(t, 60), Tx, ReasonNone},
		{"icmpv6 echo to vip", plainFrame(t, mod6(func(s *innerSpec) { s.proto = layers.IPProtocolICMPv6 })), Tx, ReasonNone},
		{"icmp error quoting a short packet", plainFrame(t, mod(func(s *innerSpec) { s.proto, s.icmpType, s.icmpBody = layers.IPProtocolICMPv4, 3, []byte{0x45, 0} })), Drop, Malformed},
		{"gre checksum valid", greFrame(t, in, &layers.GRE{Protocol: layers.EthernetTypeIPv4, ChecksumPresent: true}), Tx, ReasonNone},
		{"gre checksum wrong", set(greFrame(t, in, &layers.GRE{Protocol: layers.EthernetTypeIPv4, ChecksumPresent: true}), 14+20+4, 0xde, 0xad), Drop, Malformed},
		{"no usable backend", plainFrame(t, mod(func(s *innerSpec) { s.dst, s.dport = netip.MustParseAddr("192.0.2.99"), 443 })), Drop, NoBackend},
	}
}

func TestProcessVerdicts(t *testing.T) {
	for _, tc := range verdictCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			w := newTestWorker(t, testConfig())
			p := packetFor(tc.frame)
			r := w.Process(p)
			if r.Verdict != tc.verdict || r.Reason != tc.reason {
				t.Fatalf("got %v/%v, want %v/%v", r.Verdict, r.Reason, tc.verdict, tc.reason)
			}
			if r.Reason.Verdict() != r.Verdict {
				t.Fatalf("reason %v does not belong to verdict %v", r.Reason, r.Verdict)
			}
			if r.Verdict == Tx {
				checkEgress(t, w, p, r, tc.frame)
			}
		})
	}
}

// fixOuterChecksum recomputes the outer IPv4 checksum after a test edited it.
func fixOuterChecksum(b []byte) []byte {
	ip := b[14:34]
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint16(ip[10:], ^onesSum(ip))
	return b
}

func onesSum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return uint16(s)
}

// checkEgress decodes the rewritten frame with gopacket and checks it field
// by field against the egress frame of docs/reference.md.
func checkEgress(t *testing.T, w *Worker, p *Packet, r Result, ingress []byte) {
	t.Helper()
	out := p.Buf[p.Off : p.Off+p.Len]
	pkt := gopacket.NewPacket(out, layers.LayerTypeEthernet, gopacket.Default)
	eth, _ := pkt.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
	if eth == nil {
		t.Fatalf("egress does not decode: %x", out)
	}
	if !bytes.Equal(eth.DstMAC, ingress[6:12]) || !bytes.Equal(eth.SrcMAC, ingress[0:6]) {
		t.Errorf("MACs: dst %v src %v, want dst = ingress src, src = ingress dst", eth.DstMAC, eth.SrcMAC)
	}
	wantBackend := w.snap.BackendAddr(r.Service, r.Backend)
	inner := findInner(t, ingress)
	innerDF := len(inner) > 6 && inner[0]>>4 == 4 && inner[6]&0x40 != 0
	var greAt int
	if wantBackend.Is4() {
		outer, ok := pkt.Layers()[1].(*layers.IPv4)
		if !ok {
			t.Fatalf("layer 1 is %T", pkt.Layers()[1])
		}
		if got, _ := netip.AddrFromSlice(outer.DstIP); got != wantBackend {
			t.Errorf("outer dst %v, want backend %v", got, wantBackend)
		}
		if got, _ := netip.AddrFromSlice(outer.SrcIP); got != localAddr {
			t.Errorf("outer src %v, want %v", got, localAddr)
		}
		if outer.Protocol != layers.IPProtocolGRE || outer.TTL != 64 || outer.IHL != 5 {
			t.Errorf("outer proto %v ttl %d ihl %d", outer.Protocol, outer.TTL, outer.IHL)
		}
		if onesSum(out[14:34]) != 0xffff {
			t.Errorf("outer checksum invalid: %#04x", outer.Checksum)
		}
		if inner[0]>>4 == 6 {
			innerDF = true // IPv6 is never fragmented on the way
		}
		if (outer.Flags&layers.IPv4DontFragment != 0) != innerDF {
			t.Errorf("outer DF %v, inner DF %v", outer.Flags, innerDF)
		}
		if int(outer.Length) != len(out)-14 {
			t.Errorf("outer total length %d, frame carries %d", outer.Length, len(out)-14)
		}
		greAt = 34
	} else {
		outer, ok := pkt.Layers()[1].(*layers.IPv6)
		if !ok {
			t.Fatalf("layer 1 is %T", pkt.Layers()[1])
		}
		if got, _ := netip.AddrFromSlice(outer.DstIP); got != wantBackend {
			t.Errorf("outer dst %v, want backend %v", got, wantBackend)
		}
		if got, _ := netip.AddrFromSlice(outer.SrcIP); got != localAddr6 {
			t.Errorf("outer src %v, want %v", got, localAddr6)
		}
		if outer.NextHeader != layers.IPProtocolGRE || outer.HopLimit != 64 || int(outer.Length) != len(out)-54 {
			t.Errorf("outer next header %v hop limit %d length %d", outer.NextHeader, outer.HopLimit, outer.Length)
		}
		greAt = 54
	}
	gre := out[greAt : greAt+4]
	wantProto := uint16(0x0800)
	if inner[0]>>4 == 6 {
		wantProto = 0x86dd
	}
	if binary.BigEndian.Uint16(gre) != 0 || binary.BigEndian.Uint16(gre[2:]) != wantProto {
		t.Errorf("GRE header %x, want flags 0 and protocol %#x", gre, wantProto)
	}
	// The inner packet must be exactly the one that came in.
	if got := out[greAt+4:]; !bytes.Equal(got, inner) {
		t.Errorf("inner packet changed:\n got %x\nwant %x", got, inner)
	}
}

// findInner returns the client packet inside an ingress frame (GRE over
// IPv4 or IPv6 without outer extension headers, or plain), without padding.
func findInner(t *testing.T, f []byte) []byte {
	t.Helper()
	at := 14
	switch binary.BigEndian.Uint16(f[12:]) {
	case 0x0800:
		if f[14+9] == 47 && netip.AddrFrom4([4]byte(f[30:34])) == localAddr {
			at = 14 + int(f[14]&0xf)*4
			at += greLen(f[at:])
		}
	case 0x86dd:
		if netip.AddrFrom16([16]byte(f[38:54])) == localAddr6 {
			at = 54
			if f[20] == 60 { // one destination options header in gre6Ext
				at += 8
			}
			at += greLen(f[at:])
		}
	}
	in := f[at:]
	if in[0]>>4 == 4 {
		return in[:binary.BigEndian.Uint16(in[2:])]
	}
	return in[:40+int(binary.BigEndian.Uint16(in[4:]))]
}

func greLen(g []byte) int {
	n := 4
	for _, bit := range []byte{0x80, 0x20, 0x10} {
		if g[0]&bit != 0 {
			n += 4
		}
	}
	return n
}

// gre6Ext builds a GRE-over-IPv6 frame whose outer header is followed by
// one extension header of type ext before GRE.
func gre6Ext(t testing.TB, ext uint8) []byte {
	f := gre6Frame(t, defaultInner())
	h := make([]byte, 8)
	h[0] = 47
	if ext == 44 {
		binary.BigEndian.PutUint16(h[2:], 1) // first fragment, M set
	}
	out := append(append(append([]byte(nil), f[:54]...), h...), f[54:]...)
	out[20] = ext
	binary.BigEndian.PutUint16(out[18:], binary.BigEndian.Uint16(out[18:])+8)
	return out
}

func TestProcessFlowStickiness(t *testing.T) {
	w := newTestWorker(t, testConfig())
	used := map[uint16]int{}
	for i := 0; i < 300; i++ {
		in := defaultInner()
		in.sport = uint16(10000 + i)
		var first uint16
		for rep := 0; rep < 3; rep++ {
			f := greFrame(t, in, nil)
			if rep > 0 {
				f[14+24+20+13] = tcpACK // the SYN, then the rest of the connection
			}
			r := w.Process(packetFor(f))
			if r.Verdict != Tx {
				t.Fatalf("flow %d: %v/%v", i, r.Verdict, r.Reason)
			}
			if rep == 0 {
				first = r.Backend
			} else if r.Backend != first {
				t.Fatalf("flow %d moved from backend %d to %d", i, first, r.Backend)
			}
		}
		used[first]++
	}
	if len(used) != len(backends) {
		t.Fatalf("300 flows used backends %v, want all %d", used, len(backends))
	}
	w.Flush()
	st := w.Stats()
	if hits, miss := st.ConntrackHits.Load(), st.ConntrackMiss.Load(); hits != 600 || miss != 300 {
		t.Errorf("conntrack hits %d misses %d, want 600/300", hits, miss)
	}
	var sum uint64
	for id := range backends {
		sum += st.Backends[id].Load()
	}
	if sum != 900 || st.Reasons[ReasonNone].Load() != 900 {
		t.Errorf("backend counters sum %d, tx %d, want 900", sum, st.Reasons[ReasonNone].Load())
	}
}

// The same config on two nodes (two workers, separate tables) picks the
// same backend for every flow, without talking.
func TestProcessSameChoiceOnEveryNode(t *testing.T) {
	a, b := newTestWorker(t, testConfig()), newTestWorker(t, testConfig())
	for i := 0; i < 500; i++ {
		in := defaultInner()
		in.src = netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)})
		ra, rb := a.Process(packetFor(plainFrame(t, in))), b.Process(packetFor(greFrame(t, in, nil)))
		if ra.Backend != rb.Backend {
			t.Fatalf("flow %d: node A backend %d, node B %d", i, ra.Backend, rb.Backend)
		}
	}
}

func TestProcessUnhealthyBackendRepicked(t *testing.T) {
	c := testConfig()
	w := newTestWorker(t, c)
	in := defaultInner()
	r := w.Process(packetFor(greFrame(t, in, nil)))
	c.Services[0].Backends[r.Backend].Healthy = false
	s, err := NewSnapshot(c)
	if err != nil {
		t.Fatal(err)
	}
	w.Begin(s, w.epoch)
	r2 := w.Process(packetFor(greFrame(t, in, nil)))
	if r2.Verdict != Tx || r2.Backend == r.Backend {
		t.Fatalf("flow stayed on unhealthy backend %d (%v)", r.Backend, r2)
	}
	// Draining (weight 0) keeps existing flows where they are; a new
	// connection (a SYN) on the same tuple goes elsewhere.
	c = testConfig()
	w = newTestWorker(t, c)
	r = w.Process(packetFor(greFrame(t, in, nil)))
	c.Services[0].Backends[r.Backend].Weight = 0
	s, _ = NewSnapshot(c)
	w.Begin(s, w.epoch)
	ack := greFrame(t, in, nil)
	ack[14+24+20+13] = tcpACK
	if r3 := w.Process(packetFor(ack)); r3.Backend != r.Backend {
		t.Fatalf("drained backend lost its existing flow: %d → %d", r.Backend, r3.Backend)
	}
	if r4 := w.Process(packetFor(greFrame(t, in, nil))); r4.Backend == r.Backend {
		t.Fatalf("a new connection (SYN) went to the drained backend %d", r.Backend)
	}
}

func TestNextHopMAC(t *testing.T) {
	c := testConfig()
	c.NextHop, c.NextHopMAC = NextHopMAC, [6]byte{0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff}
	w := newTestWorker(t, c)
	p := packetFor(greFrame(t, defaultInner(), nil))
	if r := w.Process(p); r.Verdict != Tx {
		t.Fatal(r)
	}
	if got := p.Buf[p.Off : p.Off+6]; !bytes.Equal(got, c.NextHopMAC[:]) {
		t.Fatalf("dst MAC %x", got)
	}
}

func TestNoHeadroom(t *testing.T) {
	w := newTestWorker(t, testConfig())
	f := plainFrame(t, defaultInner())
	p := &Packet{Buf: f, Off: 0, Len: len(f)}
	if r := w.Process(p); r.Reason != NoHeadroom {
		t.Fatalf("got %v", r.Reason)
	}
}

func TestNoAllocs(t *testing.T) {
	w := newTestWorker(t, testConfig())
	frame := greFrame(t, defaultInner(), nil)
	p := packetFor(frame)
	allocs := testing.AllocsPerRun(1000, func() {
		copy(p.Buf[testHeadroom:], frame)
		p.Off, p.Len = testHeadroom, len(frame)
		if r := w.Process(p); r.Verdict != Tx {
			t.Fatal(r)
		}
		w.Flush()
	})
	if allocs != 0 {
		t.Fatalf("Process+Flush allocates %v times per packet", allocs)
	}
	// Every fast path, taken on each run.
	c := testConfig()
	udpService(&c)
	w = newTestWorker(t, c)
	for _, form := range fastForms(t) {
		if !form.fast {
			continue
		}
		p := packetFor(form.frame)
		before := w.Stats().FastPath.Load()
		allocs := testing.AllocsPerRun(100, func() {
			copy(p.Buf[testHeadroom:], form.frame)
			p.Off, p.Len = testHeadroom, len(form.frame)
			if r := w.Process(p); r.Verdict != Tx {
				t.Fatal(form.name, r)
			}
			w.Flush()
		})
		if allocs != 0 {
			t.Errorf("%s: Process+Flush allocates %v times per packet", form.name, allocs)
		}
		// AllocsPerRun runs once more than asked; the first two packets of
		// a flow go the general way (they establish it).
		if n := w.Stats().FastPath.Load() - before; n < 99 {
			t.Errorf("%s: %d of 101 packets took a fast path", form.name, n)
		}
	}
}

// BenchmarkProcess forwards one GRE frame over and over (a conntrack hit
// every time); railbench pipeline and bench.BenchmarkProcess spread the
// packets over many flows.
func BenchmarkProcess(b *testing.B) {
	w := newTestWorker(b, testConfig())
	frame := greFrame(b, defaultInner(), nil)
	p := packetFor(frame)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		copy(p.Buf[testHeadroom:], frame[:outerLen])
		p.Off, p.Len = testHeadroom, len(frame)
		w.Process(p)
		if i&63 == 63 {
			w.Flush()
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pkts/s")
}

func TestNextHopBackend(t *testing.T) {
	c := testConfig()
	c.NextHop = NextHopBackend
	for i := range c.Services[0].Backends {
		c.Services[0].Backends[i].MAC = [6]byte{0x02, 0xbb, 0, 0, 0, byte(i)}
		c.Services[0].Backends[i].HasMAC = i != 1 // backend 1 is not resolved yet
	}
	w := newTestWorker(t, c)
	seen := map[Reason]int{}
	for i := 0; i < 100; i++ {
		in := defaultInner()
		in.sport = uint16(20000 + i)
		p := packetFor(greFrame(t, in, nil))
		r := w.Process(p)
		seen[r.Reason]++
		switch {
		case r.Verdict == Tx && r.Backend == 1:
			t.Fatal("forwarded to a backend without a next-hop MAC")
		case r.Verdict == Tx:
			if got := p.Buf[p.Off : p.Off+6]; !bytes.Equal(got, c.Services[0].Backends[r.Backend].MAC[:]) {
				t.Fatalf("dst MAC %x, want backend %d's", got, r.Backend)
			}
		case r.Reason != NoNeighbor:
			t.Fatalf("got %v/%v", r.Verdict, r.Reason)
		}
	}
	if seen[NoNeighbor] == 0 || seen[ReasonNone] == 0 {
		t.Fatalf("reasons %v: want both tx and no_neighbor", seen)
	}
}

func TestNewSnapshotFromReusesUnchangedTables(t *testing.T) {
	c := testConfig()
	a, err := NewSnapshot(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Rebuilt()) != len(c.Services) {
		t.Fatalf("first build rebuilt %v", a.Rebuilt())
	}
	c.Services[1].Backends = append([]BackendConfig(nil), c.Services[1].Backends...)
	c.Services[1].Backends[0].Weight = 5 // changes "dns" only
	b, err := NewSnapshotFrom(a, c)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.Rebuilt(); len(got) != 1 || got[0] != "dns" {
		t.Fatalf("rebuilt %v, want [dns]", got)
	}
	if a.services[0].table != b.services[0].table || a.services[1].table == b.services[1].table {
		t.Fatal("tables not reused/rebuilt as reported")
	}
	c.Seed++ // a new seed changes every table
	d, _ := NewSnapshotFrom(b, c)
	if len(d.Rebuilt()) != len(c.Services) {
		t.Fatalf("seed change rebuilt %v", d.Rebuilt())
	}
}

// TestNoAllocsEveryPath: no verdict, on the fast path or the general one
// (IPv6, fragments, ICMP, too-big replies, drops and passes), allocates.
func TestNoAllocsEveryPath(t *testing.T) {
	c := testConfig()
	c.MTU = 1500
	w := newTestWorker(t, c)
	for _, tc := range append(verdictCases(t), mtuCases(t)...) {
		p := packetFor(tc.frame)
		allocs := testing.AllocsPerRun(50, func() {
			copy(p.Buf[testHeadroom:], tc.frame)
			p.Off, p.Len = testHeadroom, len(tc.frame)
			w.Process(p)
			w.Flush()
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per packet", tc.name, allocs)
		}
	}
}

// Removing a backend shifts the ones after it in the list: their flows must
// stay with them (found by address, not by position).
func TestRemovingABackendMovesNoOtherFlow(t *testing.T) {
	c := testConfig()
	w := newTestWorker(t, c)
	type flow struct {
		in      innerSpec
		backend netip.Addr
	}
	var flows []flow
	for i := 0; i < 300; i++ {
		in := defaultInner()
		in.sport = uint16(5000 + i)
		r := w.Process(packetFor(greFrame(t, in, nil)))
		flows = append(flows, flow{in, w.snap.BackendAddr(r.Service, r.Backend)})
	}
	removed := c.Services[0].Backends[0].Address
	c.Services[0].Backends = c.Services[0].Backends[1:]
	s, err := NewSnapshotFrom(w.snap, c)
	if err != nil {
		t.Fatal(err)
	}
	w.Begin(s, w.epoch)
	moved := 0
	for _, f := range flows {
		r := w.Process(packetFor(greFrame(t, f.in, nil)))
		got := s.BackendAddr(r.Service, r.Backend)
		if f.backend != removed && got != f.backend {
			moved++
		}
		if got == removed {
			t.Fatal("a flow still goes to the removed backend")
		}
	}
	if moved != 0 {
		t.Fatalf("%d flows of remaining backends moved", moved)
	}
}
