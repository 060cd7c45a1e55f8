package pipeline

import (
	"net/netip"
	"testing"

	"github.com/rail-lb/rail/pipeline/header"
)

// fromNode rewrites a GRE frame's outer source (and its checksum), as if
// another Rail node had sent it.
func fromNode(f []byte, src netip.Addr) []byte {
	s := src.As4()
	copy(f[26:30], s[:])
	f[24], f[25] = 0, 0
	be.PutUint16(f[24:], header.Checksum(f[14:34], 0)^0xffff)
	return f
}

// TestRemoteNodes: a service whose backends are other Rail nodes (when_down:
// forward) sends the router's packets to them in GRE, by Maglev over the
// nodes, and never sends on a packet that another node forwarded to it —
// new flow or established — so two nodes that both forward cannot loop.
func TestRemoteNodes(t *testing.T) {
	nodes := []netip.Addr{netip.MustParseAddr("10.0.9.2"), netip.MustParseAddr("10.0.9.3")}
	c := testConfig()
	c.Services[0].Backends = nil
	for i, a := range nodes {
		c.Services[0].Backends = append(c.Services[0].Backends, BackendConfig{Address: a, Key: "node:" + a.String(), Weight: 1, Healthy: true, ID: uint32(40 + i), Remote: true})
	}
	w := newTestWorker(t, c)
	used := map[netip.Addr]int{}
	for i := range 200 {
		in := defaultInner()
		in.sport = uint16(10000 + i)
		f := greFrame(t, in, nil)
		r := w.Process(packetFor(f))
		if r.Verdict != Tx {
			t.Fatalf("flow %d from the router: %v %v, want tx to a node", i, r.Verdict, r.Reason)
		}
		used[w.snap.BackendAddr(r.Service, r.Backend)]++
		// The same flow again (now in the table), then as if a node had
		// forwarded it here.
		if r := w.Process(packetFor(greFrame(t, in, nil))); r.Verdict != Tx {
			t.Fatalf("flow %d again: %v %v", i, r.Verdict, r.Reason)
		}
		for _, n := range nodes {
			r := w.Process(packetFor(fromNode(greFrame(t, in, nil), n)))
			if r.Verdict != Drop || r.Reason != NoBackend {
				t.Fatalf("flow %d forwarded by node %v: %v %v, want drop no_backend (no second forwarding)", i, n, r.Verdict, r.Reason)
			}
		}
	}
	if len(used) != 2 || used[nodes[0]] < 50 || used[nodes[1]] < 50 {
		t.Errorf("flows per node %v: want both nodes used", used)
	}
	// A packet from a host that is no node of the service is forwarded.
	if r := w.Process(packetFor(fromNode(greFrame(t, defaultInner(), nil), netip.MustParseAddr("10.0.9.77")))); r.Verdict != Tx {
		t.Errorf("from another router: %v %v, want tx", r.Verdict, r.Reason)
	}
}
