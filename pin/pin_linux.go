package pin

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// maxCPU is one past the highest CPU number a unix.CPUSet can hold.
const maxCPU = len(unix.CPUSet{}) * 64

// Allowed returns the CPUs the process may run on (sched_getaffinity, which
// reflects taskset, cpusets and cgroups), sorted. It reads the calling
// thread's mask — ordinary goroutines only ever run on unpinned threads —
// so call it from an ordinary goroutine, not from inside a function started
// with Go. (Asking about the process id would read the main thread, which
// may itself be a parked, pinned worker thread.)
func Allowed() ([]int, error) {
	return threadCPUs()
}

// ThreadCPU returns the one CPU the calling thread is allowed to run on
// (sched_getaffinity(0)), or an error if it is allowed on more than one —
// that is, if the thread is not pinned. Workers started with Go can use it
// to log or check their placement.
func ThreadCPU() (int, error) {
	cpus, err := threadCPUs()
	if err != nil {
		return -1, err
	}
	if len(cpus) != 1 {
		return -1, fmt.Errorf("thread is not pinned: allowed on %d CPUs (%s)", len(cpus), FormatCPUs(cpus))
	}
	return cpus[0], nil
}

func threadCPUs() ([]int, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, fmt.Errorf("sched_getaffinity: %w", err)
	}
	cpus := make([]int, 0, set.Count())
	for c := range maxCPU {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return cpus, nil
}

// pinThread restricts the calling OS thread (pid 0 = this thread, not the
// process) to cpu.
func pinThread(cpu int) error {
	set, err := cpuSet([]int{cpu})
	if err != nil {
		return err
	}
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		allowed, aerr := threadCPUs()
		if aerr != nil {
			return fmt.Errorf("pin to cpu %d: sched_setaffinity: %w", cpu, err)
		}
		return fmt.Errorf("pin to cpu %d: sched_setaffinity: %w (allowed: %s)", cpu, err, FormatCPUs(allowed))
	}
	return nil
}

// Confine restricts every thread of the process to cpus
// (sched_setaffinity on each task of /proc/self/task): raild confines its
// control plane — the runtime, the collector, health checks, the API — to
// the CPUs no worker runs on, so that none of it preempts a busy-polling
// worker. Threads started later inherit the mask of the thread that starts
// them, a confined one (the runtime starts threads for locked goroutines
// from its template thread, confined too); workers started with Go pin
// their own threads afterwards. Allowed, called after it, reports cpus.
func Confine(cpus []int) error {
	set, err := cpuSet(cpus)
	if err != nil {
		return err
	}
	// Threads may start while this runs, and one cloned from a thread
	// just before that thread was confined keeps the old mask yet shows
	// up in /proc only later: go over the list, reading each thread's mask
	// back, until a pass (after a pause for such a clone to finish) finds
	// every thread confined.
	for pass := 0; ; pass++ {
		ents, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return fmt.Errorf("confine: %w", err)
		}
		fixed := 0
		for _, e := range ents {
			tid, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			var cur unix.CPUSet
			if err := unix.SchedGetaffinity(tid, &cur); err == nil && cur == set {
				continue
			}
			if err := unix.SchedSetaffinity(tid, &set); err != nil && err != unix.ESRCH {
				return fmt.Errorf("confine thread %d to cpus %s: %w", tid, FormatCPUs(cpus), err)
			}
			fixed++
		}
		if fixed == 0 && pass > 0 {
			return nil
		}
		time.Sleep(time.Millisecond)
	}
}

// OnCPUs calls fn on a thread of its own allowed on cpus, and returns its
// error: for starting a process that must not inherit the confinement
// (Confine) of the caller's threads. The thread is not reused after.
func OnCPUs(cpus []int, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread goes with the goroutine
		set, err := cpuSet(cpus)
		if err == nil {
			err = unix.SchedSetaffinity(0, &set)
		}
		if err != nil {
			errc <- fmt.Errorf("allow cpus %s: %w", FormatCPUs(cpus), err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// cpuSet is the set of cpus, which must be in range and not none.
func cpuSet(cpus []int) (unix.CPUSet, error) {
	var set unix.CPUSet
	for _, c := range cpus {
		if c < 0 || c >= maxCPU {
			return set, fmt.Errorf("cpu %d is out of range (0-%d)", c, maxCPU-1)
		}
		set.Set(c)
	}
	if set.Count() == 0 {
		return set, fmt.Errorf("no CPU")
	}
	return set, nil
}
