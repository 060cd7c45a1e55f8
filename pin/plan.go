package pin

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Errors NewPlan wraps, for errors.Is.
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

// NewPlan assigns a CPU to each queue.
//
// With requested non-nil (the operator's list), requested[i] is the CPU of
// queues[i]: there must be exactly one per queue and each must be in
// allowed. Two queues may share a CPU if the operator asks for it.
//
// With requested nil, queues are spread round-robin over the allowed CPUs in
// ascending order, leaving CPU 0 (where the kernel tends to put
// housekeeping and unaffined interrupts) to the system whenever more than
// one CPU is allowed. With more queues than CPUs, CPUs are shared.
//
// Queues must be distinct and non-negative; allowed is not modified.
func NewPlan(queues []int, allowed []int, requested []int) (Plan, error) {
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
	cpus := slices.Clone(allowed)
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
	for i, q := range queues {
		p[i] = Assignment{Queue: q, CPU: cpus[i%len(cpus)]}
	}
	return p, nil
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
