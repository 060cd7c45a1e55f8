package pin

import (
	"errors"
	"slices"
	"testing"
)

func TestNewPlan(t *testing.T) {
	for _, tc := range []struct {
		name      string
		queues    []int
		allowed   []int
		requested []int
		want      string
	}{
		{"one CPU: queue shares CPU 0", []int{0}, []int{0}, nil, "queue 0 → cpu 0"},
		{"one CPU, two queues", []int{0, 1}, []int{0}, nil, "queue 0 → cpu 0, queue 1 → cpu 0"},
		{"one CPU that is not 0", []int{0, 1}, []int{5}, nil, "queue 0 → cpu 5, queue 1 → cpu 5"},
		{"two CPUs: avoid CPU 0", []int{0, 1}, []int{0, 1}, nil, "queue 0 → cpu 1, queue 1 → cpu 1"},
		{"two CPUs without 0", []int{0, 1}, []int{2, 3}, nil, "queue 0 → cpu 2, queue 1 → cpu 3"},
		{"more queues than CPUs", []int{0, 1, 2, 3, 4}, []int{0, 1, 2, 3}, nil,
			"queue 0 → cpu 1, queue 1 → cpu 2, queue 2 → cpu 3, queue 3 → cpu 1, queue 4 → cpu 2"},
		{"fewer queues than CPUs", []int{0, 1}, []int{0, 1, 2, 3, 4, 5, 6, 7}, nil, "queue 0 → cpu 1, queue 1 → cpu 2"},
		{"allowed unsorted with duplicates", []int{3, 1}, []int{7, 0, 4, 4}, nil, "queue 3 → cpu 4, queue 1 → cpu 7"},
		{"queue order kept", []int{2, 0}, []int{0, 1, 2}, nil, "queue 2 → cpu 1, queue 0 → cpu 2"},
		{"requested", []int{0, 1}, []int{0, 1, 2, 3}, []int{2, 3}, "queue 0 → cpu 2, queue 1 → cpu 3"},
		{"requested CPU 0 and a shared CPU", []int{0, 1, 2}, []int{0, 1}, []int{0, 1, 1},
			"queue 0 → cpu 0, queue 1 → cpu 1, queue 2 → cpu 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			allowed := slices.Clone(tc.allowed)
			p, err := NewPlan(tc.queues, tc.allowed, tc.requested)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.String(); got != tc.want {
				t.Errorf("plan %q, want %q", got, tc.want)
			}
			if len(p) != len(tc.queues) {
				t.Errorf("%d assignments for %d queues", len(p), len(tc.queues))
			}
			if !slices.Equal(allowed, tc.allowed) {
				t.Errorf("NewPlan modified allowed: %v", tc.allowed)
			}
		})
	}
}

func TestNewPlanErrors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		queues    []int
		allowed   []int
		requested []int
		is        error
		msg       string
	}{
		{"no queues", nil, []int{0}, nil, ErrNoQueues, "no queues"},
		{"no CPUs", []int{0}, nil, nil, ErrNoCPUs, "no allowed CPUs"},
		{"negative queue", []int{0, -1}, []int{0}, nil, ErrQueue, "bad queue: queue -1 is negative"},
		{"duplicate queue", []int{0, 1, 0}, []int{0}, nil, ErrQueue, "bad queue: queue 0 is listed twice"},
		{"too few requested", []int{0, 1}, []int{0, 1}, []int{1}, ErrCount,
			"need one CPU per queue: 1 CPUs requested for 2 queues (queues 0, 1)"},
		{"empty requested is not nil", []int{0}, []int{0, 1}, []int{}, ErrCount,
			"need one CPU per queue: 0 CPUs requested for 1 queues (queues 0)"},
		{"too many requested", []int{0}, []int{0, 1}, []int{0, 1}, ErrCount,
			"need one CPU per queue: 2 CPUs requested for 1 queues (queues 0)"},
		{"requested not allowed", []int{0, 1}, []int{0, 1, 2, 3, 6}, []int{1, 5}, ErrNotAllowed,
			"cpu 5 requested for queue 1 is not an allowed CPU (allowed: 0-3,6)"},
		{"requested negative", []int{0}, []int{0, 1}, []int{-1}, ErrNotAllowed,
			"cpu -1 requested for queue 0 is not an allowed CPU (allowed: 0-1)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := NewPlan(tc.queues, tc.allowed, tc.requested)
			if err == nil {
				t.Fatalf("NewPlan = %v, want an error", p)
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("error %q is not %v", err, tc.is)
			}
			if err.Error() != tc.msg {
				t.Errorf("error %q, want %q", err, tc.msg)
			}
		})
	}
}

func TestFormatCPUs(t *testing.T) {
	for _, tc := range []struct {
		in   []int
		want string
	}{
		{nil, "none"},
		{[]int{0}, "0"},
		{[]int{0, 1}, "0-1"},
		{[]int{3, 0, 1, 2, 6, 8, 9, 2}, "0-3,6,8-9"},
		{[]int{1, 3, 5}, "1,3,5"},
	} {
		if got := FormatCPUs(tc.in); got != tc.want {
			t.Errorf("FormatCPUs(%v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestPlanStringEmpty(t *testing.T) {
	if s := Plan(nil).String(); s != "" {
		t.Errorf("empty plan = %q", s)
	}
}
