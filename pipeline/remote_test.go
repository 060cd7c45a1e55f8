package pipeline

import (
	"net/netip"
	"testing"
	"time"

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

// TestRemoteNodesAfterReturn: when the service's own backends are back,
// the nodes stay in its list at weight 0 (control does this), so that a
// connection that went to a node while none was usable ends by way of it;
// new connections go to the service's own backends, and a packet another
// node forwards here is served instead of dropped (the service no longer
// forwards).
func TestRemoteNodesAfterReturn(t *testing.T) {
	node := netip.MustParseAddr("10.0.9.2")
	c := testConfig()
	local := c.Services[0].Backends
	nodeCfg := BackendConfig{Address: node, Key: "node:" + node.String(), Weight: 1, Healthy: true, ID: 40, Remote: true}
	c.Services[0].Backends = []BackendConfig{nodeCfg}
	w := newTestWorker(t, c)
	in := defaultInner()
	ack := greFrame(t, in, nil)
	ack[outerLen+header.IPv4MinLen+tcpFlagAt] = tcpACK
	if r := w.Process(packetFor(ack)); r.Verdict != Tx || w.snap.BackendAddr(r.Service, r.Backend) != node {
		t.Fatalf("while no backend is usable: %+v, want tx to the node", r)
	}

	// The backends return: control lists them, and the node at weight 0.
	nodeCfg.Weight = 0
	c.Services[0].Backends = append(append([]BackendConfig(nil), local...), nodeCfg)
	s, err := NewSnapshotFrom(w.snap, c)
	if err != nil {
		t.Fatal(err)
	}
	w.Begin(s, time.Now())
	for i := range 3 {
		if r := w.Process(packetFor(ack)); r.Verdict != Tx || w.snap.BackendAddr(r.Service, r.Backend) != node {
			t.Fatalf("packet %d of the connection the node took: %+v, want tx to the node still", i, r)
		}
	}
	for i := range 50 {
		in := defaultInner()
		in.sport = uint16(20000 + i)
		r := w.Process(packetFor(greFrame(t, in, nil)))
		if r.Verdict != Tx || w.snap.BackendAddr(r.Service, r.Backend) == node {
			t.Fatalf("new connection %d: %+v, want tx to one of the service's own backends", i, r)
		}
		if r := w.Process(packetFor(fromNode(greFrame(t, in, nil), node))); r.Verdict != Tx {
			t.Fatalf("new connection %d forwarded here by the node: %v %v, want tx (the service does not forward now)", i, r.Verdict, r.Reason)
		}
	}
}
