package pipeline

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/google/gopacket/layers"

	"github.com/rail-lb/rail/maglev"
)

// withFlags returns a copy of frame (built from in) with the inner TCP
// header's flags set to flags (the header has no options).
func withFlags(frame []byte, in innerSpec, flags uint8) []byte {
	f := append([]byte(nil), frame...)
	f[len(f)-len(in.payload)-20+13] = flags
	return f
}

// traceFlows returns n flows to services of testConfig: TCP over IPv4 and
// IPv6, UDP, a service without a usable backend, a VIP port without one.
func traceFlows(n int) []innerSpec {
	var out []innerSpec
	for i := 0; i < n; i++ {
		in := defaultInner()
		in.sport = uint16(1024 + i)
		in.src = netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)})
		switch i % 5 {
		case 1:
			in = v6Inner()
			in.sport = uint16(1024 + i)
		case 2:
			in.proto, in.dst, in.dport = layers.IPProtocolUDP, netip.MustParseAddr("192.0.2.53"), uint16(10000+i)
		case 3:
			in.dst, in.dport = netip.MustParseAddr("192.0.2.99"), 443 // no usable backend
		}
		if i%97 == 4 {
			in.dport = 81 // a VIP, no service
		}
		out = append(out, in)
	}
	return out
}

func addrPorts(in innerSpec) (netip.AddrPort, netip.AddrPort, uint8) {
	return netip.AddrPortFrom(in.src, in.sport), netip.AddrPortFrom(in.dst, in.dport), uint8(in.proto)
}

// checkDecision compares a traced decision with what Process did.
func checkDecision(t *testing.T, what string, s *Snapshot, d Decision, r Result, out []byte) {
	t.Helper()
	if d.Verdict != r.Verdict || d.Reason != r.Reason {
		t.Fatalf("%s: trace says %v/%v, Process %v/%v", what, d.Verdict, d.Reason, r.Verdict, r.Reason)
	}
	if r.Verdict != Tx {
		return
	}
	if d.Backend != r.Backend {
		t.Fatalf("%s: trace picks backend %d, Process %d", what, d.Backend, r.Backend)
	}
	if out[12] != 0x08 { // an IPv6 outer header never carries a key
		return
	}
	_, key, keyed := egress(t, out)
	switch {
	case keyed != (d.Second != maglev.NoBackend):
		t.Fatalf("%s: trace second hop %d, Process keyed %v", what, d.Second, keyed)
	case keyed && s.BackendAddr(r.Service, d.Second) != netip.AddrFrom4([4]byte{byte(key >> 24), byte(key >> 16), byte(key >> 8), byte(key)}):
		t.Fatalf("%s: trace second hop %v, Process key %08x", what, s.BackendAddr(r.Service, d.Second), key)
	}
}

// TestTraceMatchesProcess: for many flows, with and without second
// chance, Trace's SYN verdict is what Process does with a SYN, Peek finds
// nothing before and the entry Process made after, and MidConnection is
// what Process does with an ACK, also once the tables changed.
func TestTraceMatchesProcess(t *testing.T) {
	for name, c := range map[string]Config{"plain": testConfig(), "second chance": secondChanceConfig()} {
		t.Run(name, func(t *testing.T) {
			s, err := NewSnapshot(c)
			if err != nil {
				t.Fatal(err)
			}
			ct, err := NewConntrack(1<<16, time.Hour, 30*time.Second) // room for every flow
			if err != nil {
				t.Fatal(err)
			}
			w := NewWorker(ct)
			w.Begin(s, time.Now())
			seconds := 0
			for i, in := range traceFlows(2000) {
				src, dst, proto := addrPorts(in)
				what := fmt.Sprintf("flow %d %v → %v/%d", i, src, dst, proto)
				tr := s.Trace(src, dst, proto)
				if _, ok := w.Peek(s, &tr); ok {
					t.Fatalf("%s: an entry before any packet", what)
				}
				frame := greFrame(t, in, nil)
				p := packetFor(frame)
				r := w.Process(p)
				checkDecision(t, what+" SYN", s, tr.SYN, r, p.Buf[p.Off:p.Off+p.Len])
				if tr.SYN.Second != maglev.NoBackend {
					seconds++
				}
				e, ok := w.Peek(s, &tr)
				if ok != (r.Verdict == Tx) {
					t.Fatalf("%s: Peek %v after %v", what, ok, r.Verdict)
				}
				if !ok {
					continue
				}
				if e.Backend != r.Backend || e.State != "new" || e.Deadline <= 0 || e.Idle != 0 {
					t.Fatalf("%s: entry %+v, Process chose %d", what, e, r.Backend)
				}
				if proto != 6 {
					continue
				}
				mid := withFlags(frame, in, tcpACK)
				p = packetFor(mid)
				d := s.MidConnection(&tr, &e)
				r = w.Process(p)
				checkDecision(t, what+" ACK", s, d, r, p.Buf[p.Off:p.Off+p.Len])
				if e, _ = w.Peek(s, &tr); e.State != "established" || !d.FromEntry {
					t.Fatalf("%s: after an ACK: %+v, %+v", what, e, d)
				}
			}
			if name == "second chance" && seconds == 0 {
				t.Fatal("no flow got a second hop")
			}

			// The first backend leaves the table (weight 0): SYNs go
			// elsewhere, established flows stay; the second backend goes
			// down: its flows move.
			c2 := c
			c2.Services = append([]ServiceConfig(nil), c.Services...)
			bs := append([]BackendConfig(nil), c2.Services[0].Backends...)
			bs[0].Weight, bs[1].Healthy = 0, false
			c2.Services[0].Backends = bs
			s2, err := NewSnapshotFrom(s, c2)
			if err != nil {
				t.Fatal(err)
			}
			w.Begin(s2, w.epoch)
			for i, in := range traceFlows(2000) {
				if i%5 != 0 || in.dport != 80 {
					continue
				}
				src, dst, proto := addrPorts(in)
				what := fmt.Sprintf("after the change: flow %d %v → %v", i, src, dst)
				tr := s2.Trace(src, dst, proto)
				e, ok := w.Peek(s2, &tr)
				if !ok {
					t.Fatalf("%s: no entry", what)
				}
				frame := greFrame(t, in, nil)
				d := s2.MidConnection(&tr, &e)
				p := packetFor(withFlags(frame, in, tcpACK))
				checkDecision(t, what+" ACK", s2, d, w.Process(p), p.Buf[p.Off:p.Off+p.Len])
				if d.FromEntry != (e.Backend != 1) {
					t.Fatalf("%s: entry %+v, decision %+v", what, e, d)
				}
				p = packetFor(frame)
				checkDecision(t, what+" SYN", s2, tr.SYN, w.Process(p), p.Buf[p.Off:p.Off+p.Len])
			}
		})
	}
}

// TestTraceNotOurs: a destination that is no VIP is the kernel's.
func TestTraceNotOurs(t *testing.T) {
	s, err := NewSnapshot(testConfig())
	if err != nil {
		t.Fatal(err)
	}
	tr := s.Trace(netip.MustParseAddrPort("198.51.100.7:4000"), netip.MustParseAddrPort("203.0.113.1:80"), 6)
	if tr.Ours || tr.Service != -1 || tr.SYN.Verdict != Pass || tr.SYN.Reason != NotOurs {
		t.Fatalf("%+v", tr)
	}
	if d := s.MidConnection(&tr, nil); d != tr.SYN {
		t.Fatalf("mid-connection %+v", d)
	}
}
