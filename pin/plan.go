package pin

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Errors PlanFor and NewPlan wrap, for errors.Is.
var (
	ErrNoQueues   = errors.New("no queues")
	ErrNoCPUs     = errors.New("no allowed CPUs")
	ErrQueue      = errors.New("bad queue")
	ErrCount      = errors.New("need one CPU per queue")
	ErrNotAllowed = errors.New("not an allowed CPU")
)

// Assignment places the worker of one NIC queue on one CPU.
type Assignment struct {
	Queue, CPU int
}

// Plan is one Assignment per queue, in the order the queues were given.
type Plan []Assignment

// NewPlan assigns a CPU to each queue knowing only the allowed CPUs: it is
// PlanFor over a topology with no isolated CPUs, no SMT and no NUMA
// information, which spreads queues round-robin over the allowed CPUs in
// ascending order, leaving out CPU 0 whenever another CPU is allowed.
func NewPlan(queues []int, allowed []int, requested []int) (Plan, error) {
	return PlanFor(Topology{Allowed: allowed, NICNode: -1}, queues, requested)
}

// PlanFor assigns a CPU to each queue. raild run and raild plan both call
// it, so the plan an operator prints is the plan the daemon uses.
//
// With requested non-nil (the operator's list), requested[i] is the CPU of
// queues[i]: there must be exactly one per queue and each must be in
// t.Allowed. Two queues may share a CPU if the operator asks for it.
//
// With requested nil, each queue gets a CPU of its own, taken from the
// allowed CPUs in this order of preference:
//
//  1. a physical core no other worker polls on: two busy-pollers on SMT
//     siblings halve each other, so siblings are used only once every
//     allowed core has a worker;
//  2. on the NIC's NUMA node (when it has one), where its DMA lands;
//  3. isolated (isolcpus=): the cores the operator set apart for this;
//  4. not on the core of CPU 0, which carries timers, housekeeping and
//     unaffined interrupts;
//  5. the lowest number.
//
// CPU 0 itself is left to the system whenever another CPU is allowed.
// With more queues than usable CPUs, queues share CPUs round-robin in the
// same order: correct, but they compete (Notes says so).
//
// Queues must be distinct and non-negative; t is not modified.
func PlanFor(t Topology, queues []int, requested []int) (Plan, error) {
	if len(queues) == 0 {
		return nil, ErrNoQueues
	}
	for i, q := range queues {
		if q < 0 {
			return nil, fmt.Errorf("%w: queue %d is negative", ErrQueue, q)
		}
		if j := slices.Index(queues[:i], q); j >= 0 {
			return nil, fmt.Errorf("%w: queue %d is listed twice", ErrQueue, q)
		}
	}
	cpus := slices.Clone(t.Allowed)
	slices.Sort(cpus)
	cpus = slices.Compact(cpus)
	if len(cpus) == 0 {
		return nil, ErrNoCPUs
	}

	p := make(Plan, len(queues))
	if requested != nil {
		if len(requested) != len(queues) {
			return nil, fmt.Errorf("%w: %d CPUs requested for %d queues (%s)",
				ErrCount, len(requested), len(queues), formatInts(queues))
		}
		for i, q := range queues {
			c := requested[i]
			if _, ok := slices.BinarySearch(cpus, c); !ok {
				return nil, fmt.Errorf("cpu %d requested for queue %d is %w (allowed: %s)",
					c, q, ErrNotAllowed, FormatCPUs(cpus))
			}
			p[i] = Assignment{Queue: q, CPU: c}
		}
		return p, nil
	}

	if len(cpus) > 1 && cpus[0] == 0 {
		cpus = cpus[1:]
	}
	order := t.preference(cpus)
	// First one thread per physical core, then the remaining siblings.
	picked := make([]int, 0, len(order))
	cores := map[int]bool{}
	for _, c := range order {
		if !cores[t.core(c)] {
			cores[t.core(c)] = true
			picked = append(picked, c)
		}
	}
	for _, c := range order {
		if !slices.Contains(picked, c) {
			picked = append(picked, c)
		}
	}
	for i, q := range queues {
		p[i] = Assignment{Queue: q, CPU: picked[i%len(picked)]}
	}
	return p, nil
}

// preference sorts cpus by PlanFor's criteria 2–5.
func (t Topology) preference(cpus []int) []int {
	rank := func(c int) [4]int {
		var r [4]int
		if t.NICNode >= 0 && t.NodeOf(c) != t.NICNode {
			r[0] = 1
		}
		if !t.IsIsolated(c) {
			r[1] = 1
		}
		if t.core(c) == t.core(0) {
			r[2] = 1
		}
		r[3] = c
		return r
	}
	order := slices.Clone(cpus)
	slices.SortStableFunc(order, func(a, b int) int {
		ra, rb := rank(a), rank(b)
		return slices.Compare(ra[:], rb[:])
	})
	return order
}

// Notes lists where plan p falls short of the ideal on t, one sentence
// each with what to do about it: queues sharing a CPU, busy-pollers on SMT
// siblings, workers away from the NIC's NUMA node, isolated CPUs the
// process may not use, and CPU 0 in use. An empty list means none.
func (t Topology) Notes(p Plan) []string {
	var notes []string
	byCPU := map[int][]int{}
	var cpus []int
	for _, a := range p {
		if _, ok := byCPU[a.CPU]; !ok {
			cpus = append(cpus, a.CPU)
		}
		byCPU[a.CPU] = append(byCPU[a.CPU], a.Queue)
	}
	for _, c := range cpus {
		if qs := byCPU[c]; len(qs) > 1 {
			notes = append(notes, fmt.Sprintf("%s share cpu %d: they take turns on one core; "+
				"use as many queues as free cores (tools/setup-nic.sh IFACE N) or allow raild more CPUs", formatInts(qs), c))
		}
	}
	seen := map[int]bool{}
	for _, c := range cpus {
		core := t.core(c)
		if seen[core] {
			continue
		}
		seen[core] = true
		var busy []int
		for _, s := range t.SiblingsOf(c) {
			if _, ok := byCPU[s]; ok {
				busy = append(busy, s)
			}
		}
		if len(busy) > 1 {
			notes = append(notes, fmt.Sprintf("cpus %s are SMT siblings of one core and each runs a busy-polling worker: "+
				"fewer queues, more allowed cores, or SMT off would give each worker a whole core", FormatCPUs(busy)))
		}
	}
	if t.NICNode >= 0 {
		var remote []int
		for _, c := range cpus {
			if t.NodeOf(c) != t.NICNode {
				remote = append(remote, c)
			}
		}
		if len(remote) > 0 {
			notes = append(notes, fmt.Sprintf("cpus %s are not on NUMA node %d, the NIC's: their packets cross the interconnect; "+
				"allow raild CPUs of node %d (%s)", FormatCPUs(remote), t.NICNode, t.NICNode, FormatCPUs(t.Nodes[t.NICNode])))
		}
	}
	var isoOut []int
	for _, c := range t.Isolated {
		if !slices.Contains(t.Allowed, c) {
			isoOut = append(isoOut, c)
		}
	}
	if len(isoOut) > 0 {
		notes = append(notes, fmt.Sprintf("isolated cpus %s are not allowed to this process (allowed: %s): "+
			"start raild with CPUAffinity= (systemd) or taskset -c to use them", FormatCPUs(isoOut), FormatCPUs(t.Allowed)))
	}
	if len(t.Isolated) > 0 {
		var notIso []int
		for _, c := range cpus {
			if !t.IsIsolated(c) {
				notIso = append(notIso, c)
			}
		}
		if len(notIso) > 0 {
			notes = append(notes, fmt.Sprintf("cpus %s are not isolated: the scheduler also runs other tasks there", FormatCPUs(notIso)))
		}
	}
	if _, ok := byCPU[0]; ok {
		notes = append(notes, "cpu 0 runs a worker: it also carries timers and unaffined interrupts; allow raild another CPU")
	}
	return notes
}

// String renders the plan for logs: "queue 0 → cpu 1, queue 1 → cpu 2".
func (p Plan) String() string {
	var b strings.Builder
	for i, a := range p {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "queue %d → cpu %d", a.Queue, a.CPU)
	}
	return b.String()
}

// FormatCPUs renders a CPU list the way the kernel's cpulist files do,
// with ascending ranges: [0 1 2 3 6] → "0-3,6". The input need not be
// sorted; an empty list is "none".
func FormatCPUs(cpus []int) string {
	s := slices.Clone(cpus)
	slices.Sort(s)
	s = slices.Compact(s)
	if len(s) == 0 {
		return "none"
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j+1 < len(s) && s[j+1] == s[j]+1 {
			j++
		}
		if b.Len() > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(s[i]))
		if j > i {
			b.WriteByte('-')
			b.WriteString(strconv.Itoa(s[j]))
		}
		i = j + 1
	}
	return b.String()
}

func formatInts(v []int) string {
	var b strings.Builder
	b.WriteString("queues ")
	for i, x := range v {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.Itoa(x))
	}
	return b.String()
}
