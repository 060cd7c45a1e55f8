package pin

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseCPUs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []int
		err  bool
	}{
		{"", nil, false},
		{"\n", nil, false},
		{"0", []int{0}, false},
		{"0-3,8\n", []int{0, 1, 2, 3, 8}, false},
		{"4,0-1,1", []int{0, 1, 4}, false},
		{"3-1", nil, true},
		{"a", nil, true},
		{"1,", nil, true},
		{"-1", nil, true},
		{"0-9000", nil, true},
	} {
		got, err := ParseCPUs(tc.in)
		if (err != nil) != tc.err || !slices.Equal(got, tc.want) {
			t.Errorf("ParseCPUs(%q) = %v, %v; want %v, error %v", tc.in, got, err, tc.want, tc.err)
		}
		if err == nil && FormatCPUs(got) != map[bool]string{true: "none", false: FormatCPUs(tc.want)}[len(got) == 0] {
			t.Errorf("FormatCPUs(ParseCPUs(%q)) = %q", tc.in, FormatCPUs(got))
		}
	}
}

func TestReadTopology(t *testing.T) {
	for _, tc := range []struct {
		tree, ifname              string
		allowed, isolated         string
		nicNode, queues, numNodes int
		siblingsOf5               string
	}{
		{"two-node-smt", "eth1", "0-15", "none", 1, 8, 2, "5,13"},
		{"isolated", "eth0", "0-7", "2-3,6-7", -1, 4, 1, "1,5"},
		{"veth", "lb0", "0-1", "none", -1, 2, 1, "5"},
		{"veth", "", "0-1", "none", -1, 0, 1, "5"},
	} {
		t.Run(tc.tree+"/"+tc.ifname, func(t *testing.T) {
			topo, err := ReadTopology("testdata/"+tc.tree, tc.ifname)
			if err != nil {
				t.Fatal(err)
			}
			if got := FormatCPUs(topo.Allowed); got != tc.allowed {
				t.Errorf("allowed %s, want %s", got, tc.allowed)
			}
			if got := FormatCPUs(topo.Isolated); got != tc.isolated {
				t.Errorf("isolated %s, want %s", got, tc.isolated)
			}
			if topo.NICNode != tc.nicNode || topo.Queues != tc.queues || len(topo.Nodes) != tc.numNodes {
				t.Errorf("NIC node %d, %d queues, %d nodes; want %d, %d, %d",
					topo.NICNode, topo.Queues, len(topo.Nodes), tc.nicNode, tc.queues, tc.numNodes)
			}
			if got := FormatCPUs(topo.SiblingsOf(5)); got != tc.siblingsOf5 {
				t.Errorf("siblings of cpu 5: %s, want %s", got, tc.siblingsOf5)
			}
		})
	}
}

func TestReadTopologyErrors(t *testing.T) {
	for _, tc := range []struct{ root, ifname, msg string }{
		{"testdata/veth", "eth9", "cpu topology: interface eth9: not in testdata/veth/sys/class/net"},
		{"testdata/nonexistent", "", "cpu topology: online CPUs: open testdata/nonexistent/sys/devices/system/cpu/online: no such file or directory"},
	} {
		_, err := ReadTopology(tc.root, tc.ifname)
		if err == nil || err.Error() != tc.msg || !errors.Is(err, ErrTopology) {
			t.Errorf("ReadTopology(%s, %q) = %v, want %q", tc.root, tc.ifname, err, tc.msg)
		}
	}
}

func TestPlanFor(t *testing.T) {
	for _, tc := range []struct {
		name      string
		tree      string // under testdata/, interface as in TestReadTopology
		allowed   string // "" = every online CPU
		queues    int
		requested []int
		want      string
		notes     []string // substrings, one per note, in order
	}{
		{"NIC's node first, one thread per core", "two-node-smt", "", 4, nil,
			"queue 0 → cpu 4, queue 1 → cpu 5, queue 2 → cpu 6, queue 3 → cpu 7", nil},
		{"remote whole cores before local siblings", "two-node-smt", "", 8, nil,
			"queue 0 → cpu 4, queue 1 → cpu 5, queue 2 → cpu 6, queue 3 → cpu 7, queue 4 → cpu 1, queue 5 → cpu 2, queue 6 → cpu 3, queue 7 → cpu 8",
			[]string{"cpus 1-3,8 are not on NUMA node 1, the NIC's"}},
		{"taskset to the NIC's node: siblings when unavoidable", "two-node-smt", "4-7,12-15", 8, nil,
			"queue 0 → cpu 4, queue 1 → cpu 5, queue 2 → cpu 6, queue 3 → cpu 7, queue 4 → cpu 12, queue 5 → cpu 13, queue 6 → cpu 14, queue 7 → cpu 15",
			[]string{"cpus 4,12 are SMT siblings", "cpus 5,13 are SMT siblings", "cpus 6,14 are SMT siblings", "cpus 7,15 are SMT siblings"}},
		{"operator's list is kept, and criticised", "two-node-smt", "", 2, []int{0, 8},
			"queue 0 → cpu 0, queue 1 → cpu 8",
			[]string{"cpus 0,8 are SMT siblings", "cpus 0,8 are not on NUMA node 1", "cpu 0 runs a worker"}},
		{"isolated CPUs first", "isolated", "", 2, nil,
			"queue 0 → cpu 2, queue 1 → cpu 3", nil},
		{"isolated siblings only after every core", "isolated", "", 4, nil,
			"queue 0 → cpu 2, queue 1 → cpu 3, queue 2 → cpu 1, queue 3 → cpu 4",
			[]string{"cpus 1,4 are not isolated"}},
		{"isolated CPUs outside the affinity mask", "isolated", "0-1,4-5", 2, nil,
			"queue 0 → cpu 1, queue 1 → cpu 4",
			[]string{"isolated cpus 2-3,6-7 are not allowed to this process (allowed: 0-1,4-5): start raild with CPUAffinity=", "cpus 1,4 are not isolated"}},
		{"veth on two CPUs: CPU 0 left alone, queues share", "veth", "", 2, nil,
			"queue 0 → cpu 1, queue 1 → cpu 1",
			[]string{"queues 0, 1 share cpu 1"}},
		{"one CPU: CPU 0 it is", "veth", "0", 1, nil,
			"queue 0 → cpu 0", []string{"cpu 0 runs a worker"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ifname := map[string]string{"two-node-smt": "eth1", "isolated": "eth0", "veth": "lb0"}[tc.tree]
			topo, err := ReadTopology("testdata/"+tc.tree, ifname)
			if err != nil {
				t.Fatal(err)
			}
			if tc.allowed != "" {
				if topo.Allowed, err = ParseCPUs(tc.allowed); err != nil {
					t.Fatal(err)
				}
			}
			queues := make([]int, tc.queues)
			for i := range queues {
				queues[i] = i
			}
			p, err := PlanFor(topo, queues, tc.requested)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.String(); got != tc.want {
				t.Errorf("plan\n %s\nwant\n %s", got, tc.want)
			}
			notes := topo.Notes(p)
			if len(notes) != len(tc.notes) {
				t.Errorf("%d notes, want %d:\n%s", len(notes), len(tc.notes), strings.Join(notes, "\n"))
			}
			for i, want := range tc.notes {
				if i < len(notes) && !strings.Contains(notes[i], want) {
					t.Errorf("note %d %q lacks %q", i, notes[i], want)
				}
			}
		})
	}
}

// TestNewPlanIsPlanFor: without topology, PlanFor is the old round-robin.
func TestNewPlanIsPlanFor(t *testing.T) {
	allowed := []int{0, 1, 2, 3}
	a, err1 := NewPlan([]int{0, 1, 2, 3, 4}, allowed, nil)
	b, err2 := PlanFor(Topology{Allowed: allowed, NICNode: -1}, []int{0, 1, 2, 3, 4}, nil)
	if err1 != nil || err2 != nil || !slices.Equal(a, b) {
		t.Errorf("NewPlan %v %v, PlanFor %v %v", a, err1, b, err2)
	}
}
