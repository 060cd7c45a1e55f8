package pipeline

import (
	"encoding/binary"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/gopacket/layers"
	"github.com/rail-lb/rail/quiclb"
)

var (
	vipQUIC  = netip.MustParseAddr("192.0.2.43")
	quicKey  = []byte{0x8f, 0x95, 0xf0, 0x92, 0x45, 0x76, 0x5f, 0x80, 0x25, 0x69, 0x34, 0xe5, 0x0c, 0x66, 0x20, 0x7f}
	quicSIDs = []string{"0a01", "0a02", "0a03"}
)

// quicConfigs are QUIC-LB configurations of each algorithm: plaintext,
// single pass (2 + 14 octets) and four passes (2 + 6).
var quicConfigs = []struct {
	name string
	c    quiclb.Config
}{
	{"plaintext", quiclb.Config{ID: 1, ServerIDLen: 2, NonceLen: 14}},
	{"single-pass", quiclb.Config{ID: 1, ServerIDLen: 2, NonceLen: 14, Key: quicKey}},
	{"four-pass", quiclb.Config{ID: 1, ServerIDLen: 2, NonceLen: 6, Key: quicKey}},
}

// quicTestConfig is testConfig with a UDP service on vipQUIC:443 whose
// three backends have QUIC-LB server ids (nil qc: the same service
// without the option).
func quicTestConfig(qc *quiclb.Config) Config {
	c := testConfig()
	var bs []BackendConfig
	for i, a := range backends {
		b := BackendConfig{Address: a, Weight: 1, Healthy: true, ID: uint32(30 + i)}
		if qc != nil {
			b.QUICServerID, _ = quiclb.ParseServerID(quicSIDs[i])
		}
		bs = append(bs, b)
	}
	sc := ServiceConfig{Name: "h3", VIP: vipQUIC, Port: 443, Proto: 17, TableSize: 65537, Backends: bs}
	if qc != nil {
		sc.QUIC = []quiclb.Config{*qc}
	}
	c.Services = append(c.Services, sc)
	return c
}

// quicCID is a connection ID backend i of the configuration issues.
func quicCID(t testing.TB, c quiclb.Config, i int, nonce byte) []byte {
	k, err := quiclb.NewCodec(c)
	if err != nil {
		t.Fatal(err)
	}
	sid, _ := quiclb.ParseServerID(quicSIDs[i])
	n := make([]byte, c.NonceLen)
	for j := range n {
		n[j] = nonce + byte(j)
	}
	cid := make([]byte, k.CIDLen())
	if err := k.Encode(cid, sid, n); err != nil {
		t.Fatal(err)
	}
	return cid
}

// shortHeader is a 1-RTT packet to dcid: first octet, DCID, then what
// would be the packet number and the protected payload.
func shortHeader(dcid []byte) []byte {
	b := append([]byte{0x41}, dcid...)
	return append(b, make([]byte, 40)...)
}

// longHeader is a QUIC long-header packet of type typ (the two type bits)
// and version.
func longHeader(typ byte, version uint32, dcid, scid []byte) []byte {
	b := []byte{0xc0 | typ<<4}
	b = binary.BigEndian.AppendUint32(b, version)
	b = append(b, byte(len(dcid)))
	b = append(b, dcid...)
	b = append(b, byte(len(scid)))
	b = append(b, scid...)
	return append(b, make([]byte, 40)...)
}

func quicInner(sport uint16, payload []byte) innerSpec {
	return innerSpec{src: clientIP, dst: vipQUIC, proto: layers.IPProtocolUDP, sport: sport, dport: 443, payload: payload}
}

// The backend a packet goes to, and the service it matched.
func quicPick(t *testing.T, w *Worker, in innerSpec) uint16 {
	t.Helper()
	r := w.Process(packetFor(greFrame(t, in, nil)))
	if r.Verdict != Tx || w.snap.services[r.Service].name != "h3" {
		t.Fatalf("%v", r)
	}
	return r.Backend
}

// A connection whose client moves to port after port stays with the
// backend its connection ID names; without the option most moves change
// backend.
func TestQUICRoutesByConnectionID(t *testing.T) {
	for _, qc := range quicConfigs {
		t.Run(qc.name, func(t *testing.T) {
			w := newTestWorker(t, quicTestConfig(&qc.c))
			plain := newTestWorker(t, quicTestConfig(nil))
			moved := 0
			for i := range backends {
				cid := quicCID(t, qc.c, i, byte(i))
				for port := uint16(1000 + 100*i); port < uint16(1100+100*i); port++ {
					pkt := quicInner(port, shortHeader(cid))
					if got := quicPick(t, w, pkt); got != uint16(i) {
						t.Fatalf("port %d: backend %d, want %d (server id %s)", port, got, i, quicSIDs[i])
					}
					// Again: the connection table has the tuple now, and
					// the fast path must agree.
					if got := quicPick(t, w, pkt); got != uint16(i) {
						t.Fatalf("port %d, second packet: backend %d, want %d", port, got, i)
					}
					if quicPick(t, plain, pkt) != uint16(i) {
						moved++
					}
				}
			}
			if moved < 150 {
				t.Errorf("without QUIC-LB only %d of 300 tuples left their backend: the test does not exercise routing", moved)
			}
			if r := w.Stats(); r.QUICRouted.Load() != 0 {
				t.Errorf("counted before Flush")
			}
			w.Flush()
			if n := w.Stats().QUICRouted.Load(); n != 300 {
				t.Errorf("routed %d, want 300 (the second packets take the fast path)", n)
			}
		})
	}
}

// Everything that does not name a healthy backend goes by the 5-tuple,
// exactly as without the option.
func TestQUICFallsBack(t *testing.T) {
	qc := quicConfigs[1].c
	cfg := quicTestConfig(&qc)
	cfg.Services[len(cfg.Services)-1].Backends[2].Healthy = false
	good := quicCID(t, qc, 0, 7)
	unhealthy := quicCID(t, qc, 2, 7)
	other := qc
	other.ID = 2
	otherCfg := quicCID(t, other, 0, 7)
	unknown := append([]byte(nil), good...)
	unknown[5] ^= 0x55 // decrypts to another server id
	cases := []struct {
		name    string
		payload []byte
		routed  bool
	}{
		{"short header", shortHeader(good), true},
		{"handshake", longHeader(2, quicV1, good, []byte{1, 2, 3, 4}), true},
		{"handshake v2", longHeader(3, quicV2, good, nil), true},
		{"handshake, server bytes after the CID", longHeader(2, quicV1, append(append([]byte(nil), good...), 9, 9), nil), true},
		{"initial", longHeader(0, quicV1, good, nil), false},
		{"0-rtt", longHeader(1, quicV1, good, nil), false},
		{"initial v2", longHeader(1, quicV2, good, nil), false},
		{"unknown version", longHeader(2, 0xfaceb00c, good, nil), false},
		{"version negotiation", longHeader(0, 0, good, nil), false},
		{"long header, DCID too short", longHeader(2, quicV1, good[:len(good)-1], nil), false},
		{"long header, DCID over 20", longHeader(2, quicV1, make([]byte, 21), nil), false},
		{"long header, truncated", longHeader(2, quicV1, good, nil)[:10], false},
		{"short header, truncated", shortHeader(good)[:len(good)], false},
		{"empty payload", nil, false},
		{"unhealthy backend", shortHeader(unhealthy), false},
		{"unknown server id", shortHeader(unknown), false},
		{"another config id", shortHeader(otherCfg), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := newTestWorker(t, cfg)
			plain := newTestWorker(t, func() Config {
				c := cfg
				c.Services = append([]ServiceConfig(nil), cfg.Services...)
				c.Services[len(c.Services)-1].QUIC = nil
				return c
			}())
			routed, fell := 0, 0
			for port := uint16(2000); port < 2050; port++ {
				in := quicInner(port, tc.payload)
				got, want := quicPick(t, w, in), quicPick(t, plain, in)
				if got == 2 {
					t.Fatal("sent to the unhealthy backend")
				}
				if tc.routed && got != 0 {
					t.Fatalf("port %d: backend %d, want 0", port, got)
				}
				if !tc.routed && got != want {
					t.Fatalf("port %d: backend %d, the 5-tuple path picks %d", port, got, want)
				}
			}
			w.Flush()
			routed, fell = int(w.Stats().QUICRouted.Load()), int(w.Stats().QUICFallback.Load())
			if tc.routed && (routed != 50 || fell != 0) || !tc.routed && (routed != 0 || fell != 50) {
				t.Fatalf("routed %d, fell back %d", routed, fell)
			}
		})
	}
}

// A tuple the connection table has keeps its backend, whatever connection
// ID its packets carry (the fast path, which never decodes, decides the
// same); the connection ID decides for tuples the table does not have.
func TestQUICTableFirst(t *testing.T) {
	qc := quicConfigs[0].c
	w := newTestWorker(t, quicTestConfig(&qc))
	in := quicInner(3000, longHeader(0, quicV1, make([]byte, 8), nil)) // an Initial: by Maglev
	first := quicPick(t, w, in)
	other := (int(first) + 1) % len(backends)
	in.payload = shortHeader(quicCID(t, qc, other, 1))
	for range 3 {
		if got := quicPick(t, w, in); got != first {
			t.Fatalf("backend %d, want %d (the table's)", got, first)
		}
	}
	in.sport++
	if got := quicPick(t, w, in); got != uint16(other) {
		t.Fatalf("new tuple: backend %d, want %d (the connection ID's)", got, other)
	}
}

// TestNoAllocsQUIC: routing by connection ID, with either algorithm, and
// every fallback allocate nothing.
func TestNoAllocsQUIC(t *testing.T) {
	for _, qc := range quicConfigs {
		w := newTestWorker(t, quicTestConfig(&qc.c))
		cid := quicCID(t, qc.c, 1, 3)
		for _, payload := range [][]byte{shortHeader(cid), longHeader(2, quicV1, cid, nil), longHeader(0, quicV1, cid, nil), shortHeader(cid[:3]), shortHeader(make([]byte, len(cid)))} {
			frame := greFrame(t, quicInner(4000, payload), nil)
			p := packetFor(frame)
			port := uint16(0)
			allocs := testing.AllocsPerRun(200, func() {
				copy(p.Buf[testHeadroom:], frame)
				// A new source port each time: a new tuple, so the general
				// path and the decode run every time.
				port++
				binary.BigEndian.PutUint16(p.Buf[testHeadroom+outerLen+20:], port)
				p.Off, p.Len = testHeadroom, len(frame)
				if r := w.Process(p); r.Verdict != Tx {
					t.Fatal(r)
				}
				w.Flush()
			})
			if allocs != 0 {
				t.Errorf("%s: %v allocations per packet", qc.name, allocs)
			}
		}
	}
}

// NewSnapshot refuses what control's parser would: QUIC-LB on a TCP
// service, server ids of the wrong length or twice.
func TestQUICSnapshotErrors(t *testing.T) {
	qc := quicConfigs[0].c
	for name, mod := range map[string]func(*ServiceConfig){
		"tcp":        func(s *ServiceConfig) { s.Proto = 6 },
		"length":     func(s *ServiceConfig) { s.Backends[0].QUICServerID, _ = quiclb.ParseServerID("01") },
		"twice":      func(s *ServiceConfig) { s.Backends[1].QUICServerID = s.Backends[0].QUICServerID },
		"bad config": func(s *ServiceConfig) { s.QUIC = []quiclb.Config{{ServerIDLen: 2, NonceLen: 2}} },
		"id twice":   func(s *ServiceConfig) { s.QUIC = append(s.QUIC, s.QUIC[0]) },
		"sid length": func(s *ServiceConfig) { s.QUIC = append(s.QUIC, quiclb.Config{ID: 2, ServerIDLen: 3, NonceLen: 6}) },
	} {
		c := quicTestConfig(&qc)
		mod(&c.Services[len(c.Services)-1])
		if _, err := NewSnapshot(c); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// TestGoldenQUIC is TestGolden for QUIC-LB: each case's frame goes through
// a fresh worker of quicTestConfig (single pass, four pass, plaintext)
// and its egress is compared with testdata/quic/NAME.out.pcap (the input
// beside it as NAME.in.pcap). The routed cases' outer destination is the
// backend their connection ID names, 10.1.0.12 (server id 0a02), where
// the 5-tuple alone picks another; `go test -run TestGoldenQUIC -update`
// rewrites them.
func TestGoldenQUIC(t *testing.T) {
	dir := filepath.Join("testdata", "quic")
	if *update {
		os.RemoveAll(dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	const port = 5002 // Maglev picks another backend than 1 for it (checked below)
	for _, qc := range quicConfigs {
		cid := quicCID(t, qc.c, 1, 9)
		for _, tc := range []struct {
			name    string
			payload []byte
			routed  bool
		}{
			{"short-header", shortHeader(cid), true},
			{"handshake", longHeader(2, quicV1, cid, []byte{1, 2, 3, 4}), true},
			{"initial", longHeader(0, quicV1, cid, nil), false},
			{"short-header-truncated", shortHeader(cid)[:len(cid)], false},
		} {
			name := "quic-" + qc.name + "-" + tc.name
			frame := greFrame(t, quicInner(port, tc.payload), nil)
			w := newTestWorker(t, quicTestConfig(&qc.c))
			p := packetFor(frame)
			r := w.Process(p)
			if r.Verdict != Tx || (r.Backend == 1) != tc.routed {
				t.Fatalf("%s: %v (backend 1 is the ID's; port %d must hash elsewhere)", name, r, port)
			}
			checkGolden(t, dir, name, frame, p.Buf[p.Off:p.Off+p.Len], r)
		}
	}
}

// FuzzQUIC sends any UDP payload to a QUIC-LB service (each algorithm in
// turn) with backend 2 down: every packet is forwarded, never to the down
// backend, without an allocation; and a payload whose connection ID names
// backend i (as quicDCID and the codec read it) goes to i.
func FuzzQUIC(f *testing.F) {
	for _, qc := range quicConfigs {
		cid := quicCID(f, qc.c, 1, 5)
		f.Add(shortHeader(cid), uint16(1))
		f.Add(longHeader(2, quicV1, cid, nil), uint16(2))
		f.Add(longHeader(0, quicV1, cid, nil), uint16(3))
	}
	var ws []*Worker
	for _, qc := range quicConfigs {
		c := quicTestConfig(&qc.c)
		c.Services[len(c.Services)-1].Backends[2].Healthy = false
		ws = append(ws, newTestWorker(f, c))
	}
	f.Fuzz(func(t *testing.T, payload []byte, sport uint16) {
		if len(payload) > 1400 {
			return
		}
		frame := greFrame(t, quicInner(sport, payload), nil)
		for k, w := range ws {
			p := packetFor(frame)
			var r Result
			if n := testing.AllocsPerRun(1, func() {
				copy(p.Buf[testHeadroom:], frame)
				p.Off, p.Len = testHeadroom, len(frame)
				r = w.Process(p)
			}); n != 0 {
				t.Fatalf("%s: %v allocations", quicConfigs[k].name, n)
			}
			if r.Verdict != Tx || r.Backend == 2 {
				t.Fatalf("%s: %+v", quicConfigs[k].name, r)
			}
			q := w.snap.services[r.Service].quic
			if dcid, ok := quicDCID(payload); ok {
				var s quiclb.Scratch
				if _, bi, why := q.route(dcid, &s, w.snap.services[r.Service].backends); why == quicOK && r.Backend != bi {
					// A tuple the table had (an earlier input on the same
					// port) keeps its backend; a fresh worker decides by ID.
					fresh := newTestWorker(t, w.snap.Config())
					if r2 := fresh.Process(packetFor(frame)); r2.Backend != bi {
						t.Fatalf("%s: backend %d, the connection ID names %d", quicConfigs[k].name, r2.Backend, bi)
					}
				}
			}
		}
	})
}

// QUIC-LB reads the connection ID the same way inside IPv6 (GRE over IPv4
// to an IPv6 VIP with IPv6 backends).
func TestQUICIPv6(t *testing.T) {
	qc := quicConfigs[1].c
	c := testConfig()
	var bs []BackendConfig
	for i, a := range backends6 {
		sid, _ := quiclb.ParseServerID(quicSIDs[i])
		bs = append(bs, BackendConfig{Address: a, Weight: 1, Healthy: true, ID: uint32(40 + i), QUICServerID: sid})
	}
	c.Services = append(c.Services, ServiceConfig{Name: "h3v6", VIP: vip6, Port: 443, Proto: 17, TableSize: 251, Backends: bs, QUIC: []quiclb.Config{qc}})
	w := newTestWorker(t, c)
	for i := range backends6 {
		cid := quicCID(t, qc, i, 3)
		for port := uint16(7000 + 100*i); port < uint16(7040+100*i); port++ {
			in := innerSpec{src: clientIP6, dst: vip6, proto: layers.IPProtocolUDP, sport: port, dport: 443, payload: shortHeader(cid)}
			r := w.Process(packetFor(greFrame(t, in, nil)))
			if r.Verdict != Tx || w.snap.services[r.Service].name != "h3v6" || r.Backend != uint16(i) {
				t.Fatalf("port %d: %+v, want backend %d", port, r, i)
			}
		}
	}
}

// Key rotation: two configurations side by side (config ids 1 and 2,
// other keys and nonce lengths, the same server ids); the first octet of
// each connection ID chooses, and a config id the service lacks goes by
// the 5-tuple.
func TestQUICRotation(t *testing.T) {
	old, next := quicConfigs[1].c, quicConfigs[2].c
	next.ID, next.Key = 2, append([]byte(nil), quicKey...)
	next.Key[0] ^= 0xff
	c := quicTestConfig(&old)
	h3 := &c.Services[len(c.Services)-1]
	h3.QUIC = append(h3.QUIC, next)
	w := newTestWorker(t, c)
	port := uint16(9000)
	for i := range backends {
		for _, qc := range []quiclb.Config{old, next} {
			cid := quicCID(t, qc, i, 4)
			for range 20 {
				port++
				if got := quicPick(t, w, quicInner(port, shortHeader(cid))); got != uint16(i) {
					t.Fatalf("config id %d: backend %d, want %d", qc.ID, got, i)
				}
			}
		}
	}
	third := next
	third.ID = 3
	w.Flush()
	routed := w.Stats().QUICRouted.Load()
	for range 20 {
		port++
		quicPick(t, w, quicInner(port, shortHeader(quicCID(t, third, 0, 4))))
	}
	w.Flush()
	if w.Stats().QUICRouted.Load() != routed || w.Stats().QUICFallback.Load() != 20 {
		t.Fatalf("config id 3 (not the service's): routed %d, fell back %d", w.Stats().QUICRouted.Load()-routed, w.Stats().QUICFallback.Load())
	}
}
