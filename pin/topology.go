package pin

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Topology is what the planner knows about the machine: the CPUs the
// process may use, which of them the operator isolated, which share a
// physical core, which NUMA node each belongs to, and where the NIC is.
// ReadTopology fills it from sysfs; tests build it by hand or from a
// synthetic sysfs tree.
type Topology struct {
	// Allowed are the CPUs the process may run on, sorted.
	Allowed []int
	// Isolated are the CPUs kept from the scheduler (isolcpus=), from
	// /sys/devices/system/cpu/isolated. They are the ones meant for
	// busy-polling workers.
	Isolated []int
	// Siblings maps a CPU to its SMT thread siblings, itself included
	// (cpuN/topology/thread_siblings_list). A CPU without an entry has
	// a core of its own.
	Siblings map[int][]int
	// Nodes maps a NUMA node to its CPUs (nodeN/cpulist); empty when the
	// kernel reports no nodes.
	Nodes map[int][]int
	// Interface is the NIC the plan is for ("" for none).
	Interface string
	// NICNode is the NIC's NUMA node (device/numa_node), or -1 when it
	// has none: a virtual interface such as veth, or a single-node
	// machine. -1 means no preference.
	NICNode int
	// Queues is the number of receive queues the interface has now
	// (queues/rx-* in sysfs); 0 when unknown.
	Queues int
}

// ErrTopology is wrapped by ReadTopology's errors.
var ErrTopology = errors.New("cpu topology")

// ReadTopology reads the topology from a sysfs tree mounted at
// root/sys (root is "/" on a live machine; tests use trees under
// testdata/). Allowed is set to the online CPUs: the caller narrows it
// to the process's own mask (Host does). With ifname non-empty the
// interface must exist under root/sys/class/net; its NUMA node is -1 when
// it has no device/numa_node (veth and other virtual devices).
func ReadTopology(root, ifname string) (Topology, error) {
	t := Topology{Interface: ifname, NICNode: -1, Siblings: map[int][]int{}, Nodes: map[int][]int{}}
	cpuDir := filepath.Join(root, "sys/devices/system/cpu")
	online, err := readCPUList(filepath.Join(cpuDir, "online"))
	if err != nil {
		return t, fmt.Errorf("%w: online CPUs: %w", ErrTopology, err)
	}
	t.Allowed = online
	if iso, err := readCPUList(filepath.Join(cpuDir, "isolated")); err == nil {
		t.Isolated = iso
	} else if !errors.Is(err, os.ErrNotExist) {
		return t, fmt.Errorf("%w: isolated CPUs: %w", ErrTopology, err)
	}
	for _, c := range online {
		sib, err := readCPUList(filepath.Join(cpuDir, "cpu"+strconv.Itoa(c), "topology/thread_siblings_list"))
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return t, fmt.Errorf("%w: cpu %d siblings: %w", ErrTopology, c, err)
		}
		t.Siblings[c] = sib
	}
	nodes, _ := filepath.Glob(filepath.Join(root, "sys/devices/system/node/node[0-9]*"))
	for _, dir := range nodes {
		n, err := strconv.Atoi(strings.TrimPrefix(filepath.Base(dir), "node"))
		if err != nil {
			continue
		}
		cpus, err := readCPUList(filepath.Join(dir, "cpulist"))
		if err != nil {
			return t, fmt.Errorf("%w: node %d: %w", ErrTopology, n, err)
		}
		t.Nodes[n] = cpus
	}
	if ifname == "" {
		return t, nil
	}
	netDir := filepath.Join(root, "sys/class/net", ifname)
	if _, err := os.Stat(netDir); err != nil {
		return t, fmt.Errorf("%w: interface %s: not in %s", ErrTopology, ifname, filepath.Dir(netDir))
	}
	if b, err := os.ReadFile(filepath.Join(netDir, "device/numa_node")); err == nil {
		n, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			return t, fmt.Errorf("%w: interface %s: numa_node %q: %w", ErrTopology, ifname, strings.TrimSpace(string(b)), err)
		}
		if n >= 0 {
			t.NICNode = n
		}
	}
	rx, _ := filepath.Glob(filepath.Join(netDir, "queues/rx-[0-9]*"))
	t.Queues = len(rx)
	return t, nil
}

// Host is the topology of this machine for ifname, with Allowed narrowed
// to the CPUs the process may use (Allowed()). raild run and raild plan
// both plan from it.
func Host(ifname string) (Topology, error) {
	t, err := ReadTopology("/", ifname)
	if err != nil {
		return t, err
	}
	if t.Allowed, err = Allowed(); err != nil {
		return t, err
	}
	return t, nil
}

func readCPUList(path string) ([]int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	cpus, err := ParseCPUs(string(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return cpus, nil
}

// ParseCPUs reads a CPU list in the kernel's cpulist format ("0-3,8,10-11";
// surrounding space and an empty list allowed), sorted and without
// duplicates. It is FormatCPUs's inverse.
func ParseCPUs(s string) ([]int, error) {
	s = strings.TrimSpace(s)
	var cpus []int
	if s == "" {
		return cpus, nil
	}
	for part := range strings.SplitSeq(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(strings.TrimSpace(lo))
		b := a
		if err == nil && isRange {
			b, err = strconv.Atoi(strings.TrimSpace(hi))
		}
		if err != nil || a < 0 || b < a || b >= maxCPUs {
			return nil, fmt.Errorf("bad CPU list %q at %q (want e.g. 0-3,8)", s, part)
		}
		for c := a; c <= b; c++ {
			cpus = append(cpus, c)
		}
	}
	slices.Sort(cpus)
	return slices.Compact(cpus), nil
}

// maxCPUs bounds CPU numbers in lists (the kernel's NR_CPUS is at most
// 8192).
const maxCPUs = 8192

// NodeOf returns the NUMA node of cpu, or -1 when unknown.
func (t Topology) NodeOf(cpu int) int {
	for n, cpus := range t.Nodes {
		if slices.Contains(cpus, cpu) {
			return n
		}
	}
	return -1
}

// SiblingsOf returns cpu's SMT thread siblings, itself included.
func (t Topology) SiblingsOf(cpu int) []int {
	if s, ok := t.Siblings[cpu]; ok && len(s) > 0 {
		return s
	}
	return []int{cpu}
}

// core names cpu's physical core by its lowest thread.
func (t Topology) core(cpu int) int { return slices.Min(t.SiblingsOf(cpu)) }

// IsIsolated reports whether cpu is in Isolated.
func (t Topology) IsIsolated(cpu int) bool { return slices.Contains(t.Isolated, cpu) }
