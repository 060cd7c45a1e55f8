package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// The synthetic sysfs trees live with package pin.
const topologies = "../../pin/testdata/"

func TestPlan(t *testing.T) {
	for _, tc := range []struct {
		name    string
		config  string // prepended to testConfig
		args    []string
		want    []string // substrings of the table, in order
		exit    int
		wantErr string
	}{
		{"two nodes with SMT: the NIC's node, one thread per core",
			"interface: eth1\nqueues: [0, 1, 2, 3]\n", []string{"--sysfs", topologies + "two-node-smt"},
			[]string{"interface eth1: 8 rx queues, NIC NUMA node 1", "allowed CPUs 0-15, isolated none; CPUs planned by pin.PlanFor",
				"QUEUE  CPU  NODE  SMT SIBLINGS  ISOLATED", "0      4    1     4,12          no", "3      7    1     7,15          no",
				"connection tables: 1048576 entries per worker, 48.2MiB each, 192.9MiB for 4 workers (allocated at start, never grown), on hugetlb 2MiB pages",
				"no notes"}, 0, ""},
		{"all queues, taskset to the NIC's node: siblings, said so",
			"interface: eth1\n", []string{"--sysfs", topologies + "two-node-smt", "--allowed", "4-7,12-15"},
			[]string{"allowed CPUs 4-7,12-15", "4      12   1     4,12          no", "notes:", "cpus 4,12 are SMT siblings"}, 0, ""},
		{"isolated CPUs outside the mask",
			"interface: eth0\n", []string{"--sysfs", topologies + "isolated", "--allowed", "0-1,4-5"},
			[]string{"NIC NUMA node none", "isolated 2-3,6-7", "0      1    0     1,5           no", "1      4    0     0,4           no",
				"isolated cpus 2-3,6-7 are not allowed to this process"}, 0, ""},
		{"isolated CPUs allowed",
			"interface: eth0\nqueues: [0, 1]\n", []string{"--sysfs", topologies + "isolated"},
			[]string{"0      2    0     2,6           yes", "1      3    0     3,7           yes",
				// 30 free 2 MiB pages: one worker's 24, not two.
				"on hugetlb 2MiB pages (1 worker), base pages (1 worker)",
				"1 worker would have connection tables on base pages: reserve 2 MiB pages before raild starts (sysctl vm.nr_hugepages=50, 25 a worker"}, 0, ""},
		{"veth: no NUMA, shared CPU",
			"interface: lb0\n", []string{"--sysfs", topologies + "veth"},
			[]string{"interface lb0: 2 rx queues, NIC NUMA node none", "0      1    0     1             no", "1      1    0     1             no",
				"queues 0, 1 share cpu 1", "2 workers would have connection tables on base pages"}, 0, ""},
		{"operator's cpus",
			"interface: lb0\nqueues: [0, 1]\ncpus: [0, 1]\n", []string{"--sysfs", topologies + "veth"},
			[]string{"CPUs from the config's cpus:", "0      0", "1      1", "cpu 0 runs a worker"}, 0, ""},
		{"cpus not allowed", "interface: lb0\nqueues: [0]\ncpus: [5]\n", []string{"--sysfs", topologies + "veth"},
			nil, 1, "raild plan: cpus: cpu 5 requested for queue 0 is not an allowed CPU (allowed: 0-1)"},
		{"unknown interface", "interface: eth9\n", []string{"--sysfs", topologies + "veth"},
			nil, 1, "raild plan: cpu topology: interface eth9: not in ../../pin/testdata/veth/sys/class/net"},
		{"no interface", "", []string{"--sysfs", topologies + "veth"}, nil, 1, "interface"},
		{"bad --allowed", "interface: lb0\n", []string{"--sysfs", topologies + "veth", "--allowed", "3-1"},
			nil, 2, "raild plan: --allowed: bad CPU list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := writeFile(t, "rail.yaml", tc.config+testConfig)
			code, out, errs := runRaild(append([]string{"plan", "--config", cfg}, tc.args...)...)
			if code != tc.exit {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.exit, out, errs)
			}
			if tc.wantErr != "" && !strings.Contains(errs, tc.wantErr) {
				t.Errorf("stderr %q lacks %q", errs, tc.wantErr)
			}
			rest := out
			for _, w := range tc.want {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("output lacks %q (after the previous match):\n%s", w, out)
				}
				rest = rest[i+len(w):]
			}
		})
	}
}

func TestPlanJSON(t *testing.T) {
	cfg := writeFile(t, "rail.yaml", "interface: eth1\nqueues: [0, 1]\n"+testConfig)
	code, out, errs := runRaild("plan", "--config", cfg, "--json", "--sysfs", topologies+"two-node-smt", "--allowed", "1-3,9-11")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	var p planJSON
	if err := json.Unmarshal([]byte(out), &p); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if p.Interface != "eth1" || p.NICNode != 1 || p.Queues != 8 || p.Allowed != "1-3,9-11" || len(p.Assignments) != 2 {
		t.Errorf("plan %+v", p)
	}
	if a := p.Assignments[0]; a != (assignJSON{Queue: 0, CPU: 1, Node: 0, Siblings: "1,9"}) {
		t.Errorf("queue 0: %+v", a)
	}
	if len(p.Notes) != 1 || !strings.Contains(p.Notes[0], "not on NUMA node 1") {
		t.Errorf("notes %q", p.Notes)
	}
	// tools/setup-nic.sh reads the pairs with the white space removed.
	flat := strings.Join(strings.Fields(out), "")
	if !strings.Contains(flat, `{"queue":0,"cpu":1,`) || !strings.Contains(flat, `{"queue":1,"cpu":2,`) {
		t.Errorf("setup-nic.sh cannot read %s", flat)
	}
}

// TestPlanHost plans for this machine's loopback: whatever the machine,
// the plan is valid (every CPU allowed) and printed.
func TestPlanHost(t *testing.T) {
	cfg := writeFile(t, "rail.yaml", "interface: lo\n"+testConfig)
	code, out, errs := runRaild("plan", "--config", cfg)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errs)
	}
	if !strings.Contains(out, "interface lo: ") || !strings.Contains(out, "QUEUE  CPU") {
		t.Errorf("output:\n%s", out)
	}
	t.Logf("\n%s", out)
}
