package pipeline

import (
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
)

// egress decodes a transmitted frame's outer destination and GRE key.
func egress(t *testing.T, frame []byte) (dst netip.Addr, key uint32, keyed bool) {
	t.Helper()
	pk := gopacket.NewPacket(frame, layers.LayerTypeEthernet, gopacket.Default)
	ip, _ := pk.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
	gre, _ := pk.Layer(layers.LayerTypeGRE).(*layers.GRE)
	if ip == nil || gre == nil {
		t.Fatalf("egress frame does not decode as IPv4 | GRE: %v", pk)
	}
	if err := pk.ErrorLayer(); err != nil {
		t.Fatalf("egress frame: %v", err.Error())
	}
	if ip.Length != uint16(len(frame)-14) || ip.Checksum != ipv4Checksum(frame[14:34]) {
		t.Fatalf("outer IPv4 length %d (frame %d) or checksum wrong", ip.Length, len(frame)-14)
	}
	dst, _ = netip.AddrFromSlice(ip.DstIP)
	return dst, gre.Key, gre.KeyPresent
}

func ipv4Checksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i < len(h); i += 2 {
		if i == 10 {
			continue
		}
		sum += uint32(h[i])<<8 | uint32(h[i+1])
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// TestSecondChance: with backends in transition — one draining and two
// filling at once — a flow whose pick differs between the current table
// and the table before the transition carries the other pick in its GRE
// key, and no other flow does; the second hop is the backend the flow went
// to before (computed here by a worker given the configuration before the
// transition). Without second_chance the same transition leaves every
// egress frame without a key.
func TestSecondChance(t *testing.T) {
	addrs := []netip.Addr{
		netip.MustParseAddr("10.1.0.11"), netip.MustParseAddr("10.1.0.12"), netip.MustParseAddr("10.1.0.13"),
		netip.MustParseAddr("10.1.0.14"), netip.MustParseAddr("10.1.0.15"),
	}
	cfg := func(second bool, states ...BackendState) Config {
		c := testConfig()
		c.Services[0].Backends = nil
		c.Services[0].SecondChance = second
		for i, st := range states {
			c.Services[0].Backends = append(c.Services[0].Backends, BackendConfig{Address: addrs[i], Weight: 1, Healthy: true, ID: uint32(i), State: st})
		}
		return c
	}
	// Before: three active backends. Now: the third drains, two are added.
	before := newTestWorker(t, cfg(false, Active, Active, Active))
	now := newTestWorker(t, cfg(true, Active, Active, Draining, Filling, Filling))
	plain := newTestWorker(t, cfg(false, Active, Active, Draining, Filling, Filling))
	keyed, moved := 0, 0
	for i := range 3000 {
		in := defaultInner()
		in.sport = uint16(1024 + i)
		old, _, _ := egress(t, transmit(t, before, greFrame(t, in, nil)))
		cur, key, hasKey := egress(t, transmit(t, now, greFrame(t, in, nil)))
		if cur == addrs[2] {
			t.Fatalf("flow %d went to the draining backend", i)
		}
		if old != cur {
			moved++
			if !hasKey || key != be.Uint32(old.AsSlice()) {
				t.Fatalf("flow %d moved %v → %v: key %v %#x, want the old backend as second hop", i, old, cur, hasKey, key)
			}
			keyed++
		} else if hasKey {
			t.Fatalf("flow %d stayed on %v but carries key %#x", i, cur, key)
		}
		if _, _, k := egress(t, transmit(t, plain, greFrame(t, in, nil))); k {
			t.Fatalf("flow %d: a key without second_chance", i)
		}
	}
	t.Logf("%d of 3000 flows moved and carry their old backend as second hop (1 draining, 2 filling at once)", keyed)
	if moved < 3000/5 {
		t.Errorf("only %d of 3000 flows moved: the transition did not change the table", moved)
	}
}

// transmit runs one frame through w and returns the egress frame.
func transmit(t *testing.T, w *Worker, frame []byte) []byte {
	t.Helper()
	p := packetFor(frame)
	if r := w.Process(p); r.Verdict != Tx {
		t.Fatalf("verdict %v %v, want tx", r.Verdict, r.Reason)
	}
	return p.Buf[p.Off : p.Off+p.Len]
}

// secondChanceConfig is testConfig with web in transition and second_chance
// on: the third backend drains, a fourth fills.
func secondChanceConfig() Config {
	c := testConfig()
	s := &c.Services[0]
	s.SecondChance = true
	s.Backends = append(s.Backends, BackendConfig{Address: netip.MustParseAddr("10.1.0.14"), Weight: 1, Healthy: true, ID: 3, State: Filling})
	s.Backends[2].State = Draining
	return c
}

// secondChanceFrames returns a frame whose flow carries a second hop and
// one whose flow does not, under secondChanceConfig.
func secondChanceFrames(t testing.TB) (keyed, plain []byte) {
	w := newTestWorker(t, secondChanceConfig())
	for i := 0; keyed == nil || plain == nil; i++ {
		in := defaultInner()
		in.sport = uint16(2000 + i)
		f := greFrame(t, in, nil)
		p := packetFor(f)
		w.Process(p)
		out := p.Buf[p.Off : p.Off+p.Len]
		if out[14+20] == 0x20 && keyed == nil { // GRE flags: K
			keyed = f
		} else if out[14+20] == 0 && plain == nil {
			plain = f
		}
	}
	return keyed, plain
}

// TestSecondChanceNoAllocs: the second-chance path allocates nothing.
func TestSecondChanceNoAllocs(t *testing.T) {
	w := newTestWorker(t, secondChanceConfig())
	keyed, plain := secondChanceFrames(t)
	for name, f := range map[string][]byte{"keyed": keyed, "not keyed": plain} {
		p := packetFor(f)
		allocs := testing.AllocsPerRun(100, func() {
			copy(p.Buf[testHeadroom:], f)
			p.Off, p.Len = testHeadroom, len(f)
			w.Process(p)
			w.Flush()
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per packet", name, allocs)
		}
	}
}

// TestSecondChanceGolden: the keyed and the unkeyed egress frames are those
// of testdata/secondchance/*.pcap (go test -run TestSecondChanceGolden
// -update rewrites them).
func TestSecondChanceGolden(t *testing.T) {
	keyed, plain := secondChanceFrames(t)
	for name, f := range map[string][]byte{"second-chance-keyed": keyed, "second-chance-not-keyed": plain} {
		w := newTestWorker(t, secondChanceConfig())
		p := packetFor(f)
		r := w.Process(p)
		if r.Verdict != Tx {
			t.Fatalf("%s: %v %v", name, r.Verdict, r.Reason)
		}
		checkGolden(t, filepath.Join("testdata", "secondchance"), name, f, p.Buf[p.Off:p.Off+p.Len], r)
	}
}

// TestSecondChanceFreshNodeAgrees: a node that has run through the changes
// (its snapshot rebuilt from the one before, its connection table warm)
// and a node started a moment ago from the same configuration pick the
// same backend and the same second hop for every flow Maglev decides (a
// SYN, or any packet of a flow ECMP just moved to a node): the table before
// the transition comes from the configuration alone, not from what a
// process saw.
func TestSecondChanceFreshNodeAgrees(t *testing.T) {
	before := testConfig()
	old := newTestWorker(t, before)
	for i := range 2000 { // warm: flows on the old tables
		in := defaultInner()
		in.sport = uint16(3000 + i)
		old.Process(packetFor(greFrame(t, in, nil)))
	}
	now := secondChanceConfig()
	s, err := NewSnapshotFrom(old.snap, now)
	if err != nil {
		t.Fatal(err)
	}
	old.Begin(s, old.epoch)
	fresh := newTestWorker(t, now)
	keyed := 0
	for i := range 2000 {
		in := defaultInner()
		in.sport = uint16(3000 + i)
		a := transmit(t, old, greFrame(t, in, nil))
		b := transmit(t, fresh, greFrame(t, in, nil))
		da, ka, hasA := egress(t, a)
		db, kb, hasB := egress(t, b)
		if hasA != hasB || ka != kb || da != db {
			t.Fatalf("flow %d: the running node sends to %v (key %v %#x), the fresh one to %v (key %v %#x)", i, da, hasA, ka, db, hasB, kb)
		}
		if hasA {
			keyed++
		}
	}
	t.Logf("%d of 2000 flows carry the same second hop from both nodes", keyed)
	if keyed == 0 {
		t.Error("no flow carried a second hop: the transition changed nothing")
	}
}

// TestSecondChanceTooBig: a flow that carries a second hop has 4 more
// bytes of GRE; the ICMP fragmentation-needed it may get names the MTU
// that fits with them (else the client would send 4 bytes too many again).
func TestSecondChanceTooBig(t *testing.T) {
	c := secondChanceConfig()
	c.MTU = 1500
	keyed, _ := secondChanceFrames(t) // a flow whose egress is keyed
	in := gopacket.NewPacket(keyed, layers.LayerTypeEthernet, gopacket.Default)
	tcp := in.Layer(layers.LayerTypeTCP).(*layers.TCP)
	spec := defaultInner()
	spec.sport, spec.df = uint16(tcp.SrcPort), true
	spec.payload = make([]byte, 1474-20-20) // fits in 1500 with 24 bytes of GRE, not with 28
	w := newTestWorker(t, c)
	p := packetFor(greFrame(t, spec, nil))
	if r := w.Process(p); r.Verdict != Tx || r.Reason != ICMPTooBig {
		t.Fatalf("%v %v, want tx icmp_too_big", r.Verdict, r.Reason)
	}
	reply := gopacket.NewPacket(p.Buf[p.Off:p.Off+p.Len], layers.LayerTypeEthernet, gopacket.Default)
	icmp, ok := reply.Layer(layers.LayerTypeICMPv4).(*layers.ICMPv4)
	if !ok {
		t.Fatalf("no ICMP in the reply: %v", reply)
	}
	if mtu := be.Uint16(icmp.Contents[6:8]); mtu != 1500-28 {
		t.Errorf("next-hop MTU %d, want %d (1500 - 20 - 4 - 4)", mtu, 1500-28)
	}
}
