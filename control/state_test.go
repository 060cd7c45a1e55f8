package control

import (
	"github.com/rail-lb/rail/pipeline"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"
)

func TestReloadDiff(t *testing.T) {
	l := newAPILab(t, apiConfig)
	// Reorder web's backends and change dns: only dns is rebuilt, and web
	// keeps its order (connection entries refer to positions).
	cfg := strings.Replace(apiConfig, "      - address: 10.1.0.11\n      - address: 10.1.0.12\n        weight: 2\n",
		"      - address: 10.1.0.12\n        weight: 2\n      - address: 10.1.0.11\n", 1)
	cfg = strings.Replace(cfg, "      - address: 10.1.0.21\n", "      - address: 10.1.0.21\n      - address: 10.1.0.22\n", 1)
	cfg = strings.Replace(cfg, "local_address: 10.0.0.2\n", "local_address: 10.0.0.2\ninterface: eth9\n", 1)
	if err := os.WriteFile(l.file, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := l.state.Reload()
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Rebuilt, []string{"dns"}) {
		t.Errorf("rebuilt %v, want [dns]", res.Rebuilt)
	}
	if !slices.Equal(res.Restart, []string{"interface"}) {
		t.Errorf("restart %v, want [interface]", res.Restart)
	}
	web := l.state.Snap.Load().Config().Services[0]
	if web.Backends[0].Address != netip.MustParseAddr("10.1.0.11") {
		t.Errorf("web's order changed: %+v", web.Backends)
	}
	if l.state.Config().Interface != "" {
		t.Errorf("interface applied without a restart")
	}
	// IDs are stable: the same backend keeps its counter.
	before := l.state.ids.ids[backendRef{"web", "10.1.0.12"}]
	if id := web.Backends[1].ID; id != before {
		t.Errorf("id of 10.1.0.12 moved %d → %d", before, id)
	}
}

func TestIDAllocReclaims(t *testing.T) {
	a := newIDAlloc()
	count := func(id uint32) uint64 { return uint64(id) * 10 }
	var want []backendRef
	for i := range 4096 {
		want = append(want, backendRef{"s", netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}).String()})
	}
	ids, err := a.assign(want, count)
	if err != nil || ids[4095] != 4095 {
		t.Fatal(ids[4095], err)
	}
	// Drop the first, add a new one: it reuses the freed ID with a base.
	next := append(slices.Clone(want[1:]), backendRef{"s", "new"})
	ids, err = a.assign(next, count)
	if err != nil || ids[4095] != 0 || a.base[0] != 0 {
		t.Fatalf("new id %d base %d err %v", ids[4095], a.base[0], err)
	}
	next[0] = backendRef{"s", "newer"} // replaces want[1], which had ID 1
	ids, _ = a.assign(next, count)
	if ids[0] != 1 || a.base[1] != 10 {
		t.Errorf("reclaimed id %d base %d", ids[0], a.base[1])
	}
	if _, err := a.assign(append(next, backendRef{"s", "one too many"}), count); err == nil {
		t.Error("4097 backends accepted")
	}
}

func TestStateMetrics(t *testing.T) {
	l := newAPILab(t, apiConfig)
	l.state.SetHealth("dns", netip.MustParseAddr("10.1.0.21"), false)
	var b strings.Builder
	(&Metrics{Queues: l.state.queues, State: l.state, API: &APIServer{}}).WritePrometheus(&b)
	for _, want := range []string{
		`rail_service_backend_packets_total{service="web",backend="10.1.0.11"} 0`,
		`rail_backend_up{service="dns",backend="10.1.0.21"} 0`,
		`rail_backend_weight{service="web",backend="10.1.0.12"} 2`,
		`rail_service_available{service="dns"} 0`,
		`rail_table_rebuilds_total{service="dns"} 2`,
		`rail_health_transitions_total{service="dns",backend="10.1.0.21",to="down"} 1`,
		`rail_snapshot_generation 2`,
		`rail_reloads_total{result="invalid"} 0`,
		`rail_api_requests_total{code="4xx"} 0`,
		`rail_conntrack_lookups_total{queue="0",cpu="3",result="hit"} 0`,
	} {
		if !strings.Contains(b.String(), want+"\n") {
			t.Errorf("no %s in\n%s", want, b.String())
		}
	}
}

// TestMetricsSeriesUnique: two queues whose workers share a cpu still give
// every series a label set of its own (Prometheus rejects duplicates).
func TestMetricsSeriesUnique(t *testing.T) {
	m := &Metrics{Queues: []QueueStats{{Queue: 0, CPU: 1, Pipeline: &pipeline.Stats{}}, {Queue: 1, CPU: 1, Pipeline: &pipeline.Stats{}}}}
	var b strings.Builder
	m.WritePrometheus(&b)
	seen := map[string]bool{}
	for _, line := range strings.Split(strings.TrimSpace(b.String()), "\n") {
		name, _, _ := strings.Cut(line, " ")
		if seen[name] {
			t.Errorf("series %s twice", name)
		}
		seen[name] = true
	}
	if len(seen) < 10 {
		t.Fatalf("only %d series:\n%s", len(seen), b.String())
	}
}
