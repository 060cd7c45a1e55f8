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

// TestRestartKeysHold: each key read only at start is reported when a
// reload changes it and keeps its running value in what the reload
// applies, while the rest of the file (the services, hash_seed) is
// applied; MTU, which is no key, keeps its running value.
func TestRestartKeysHold(t *testing.T) {
	base := strings.Replace(svc, head, head+"hash_seed: 7\n", 1)
	running, probs := Parse([]byte(base), "t.yaml")
	if running == nil {
		t.Fatal(probs)
	}
	running.MTU = 1500
	edits := map[string]string{
		"interface":       "interface: eth9\n",
		"queues":          "queues: [1]\n",
		"cpus":            "queues: [0]\ncpus: [1]\n",
		"xdp_mode":        "xdp_mode: generic\n",
		"zero_copy":       "zero_copy: off\n",
		"metrics_address": "metrics_address: 127.0.0.1:9999\n",
		"conntrack":       "conntrack: {entries_per_core: 4096}\n",
		"api":             "api: {socket: /tmp/other.sock}\n",
		"http":            "http: {max_connections: 7}\n",
		"bgp":             "bgp: {asn: 65010}\n",
		"memory":          "memory: {policy: limit}\n",
		"busy_poll":       "busy_poll: false\n",
		"next_hop":        "next_hop: kernel\n",
	}
	for key, edit := range edits {
		file := strings.Replace(base, "hash_seed: 7\n", "hash_seed: 8\n", 1) + edit
		file = strings.Replace(file, "port: 80\n", "port: 81\n", 1)
		next, probs := Parse([]byte(file), "t.yaml")
		if next == nil {
			t.Fatalf("%s: %v", key, probs)
		}
		want := []string{key}
		if key == "cpus" {
			want = []string{"queues", "cpus"}
		}
		keys, keep := restartKeys(running, next)
		if !slices.Equal(keys, want) {
			t.Errorf("%s: restart keys %v, want %v", key, keys, want)
		}
		if again, _ := restartKeys(running, &keep); len(again) != 0 {
			t.Errorf("%s: what the reload applies still differs from the running file in %v", key, again)
		}
		if keep.HashSeed != 8 || keep.Services[0].Port != 81 || keep.MTU != 1500 {
			t.Errorf("%s: applied hash_seed %d, port %d, MTU %d; want 8, 81, 1500", key, keep.HashSeed, keep.Services[0].Port, keep.MTU)
		}
	}
	if keys, _ := restartKeys(running, running); len(keys) != 0 {
		t.Errorf("the running file against itself: %v", keys)
	}
}

// TestPipelineConfigSecondChance: replay and check build the pipeline's
// configuration with the same translation as raild run, second chance and
// backend states included (they were dropped, so replay picked otherwise).
func TestPipelineConfigSecondChance(t *testing.T) {
	cfg, probs := Parse([]byte(`local_address: 10.0.0.2
services:
  - name: web
    vip: 192.0.2.10
    port: 80
    protocol: tcp
    second_chance: true
    backends:
      - address: 10.1.0.11
      - address: 10.1.0.12
        state: filling
`), "sc.yaml")
	if len(probs) > 0 {
		t.Fatal(probs)
	}
	pc, err := cfg.PipelineConfig()
	if err != nil {
		t.Fatal(err)
	}
	sc := pc.Services[0]
	if !sc.SecondChance || sc.Backends[0].State != pipeline.Active || sc.Backends[1].State != pipeline.Filling {
		t.Errorf("second chance %v, states %v %v: want true, active, filling", sc.SecondChance, sc.Backends[0].State, sc.Backends[1].State)
	}
}
