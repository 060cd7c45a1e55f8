package pin

import (
	"fmt"

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
	if cpu < 0 || cpu >= maxCPU {
		return fmt.Errorf("cpu %d is out of range (0-%d)", cpu, maxCPU-1)
	}
	var set unix.CPUSet
	set.Set(cpu)
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		allowed, aerr := threadCPUs()
		if aerr != nil {
			return fmt.Errorf("pin to cpu %d: sched_setaffinity: %w", cpu, err)
		}
		return fmt.Errorf("pin to cpu %d: sched_setaffinity: %w (allowed: %s)", cpu, err, FormatCPUs(allowed))
	}
	return nil
}
