//go:build !linux

package pin

import (
	"errors"
	"fmt"
	"runtime"
)

// Allowed returns 0..runtime.NumCPU()-1: without sched_getaffinity there is
// no finer answer.
func Allowed() ([]int, error) {
	cpus := make([]int, runtime.NumCPU())
	for i := range cpus {
		cpus[i] = i
	}
	return cpus, nil
}

// ThreadCPU is not supported off Linux.
func ThreadCPU() (int, error) {
	return -1, fmt.Errorf("thread CPU on %s: %w", runtime.GOOS, errors.ErrUnsupported)
}

func pinThread(cpu int) error {
	return fmt.Errorf("pin to cpu %d on %s: %w", cpu, runtime.GOOS, errors.ErrUnsupported)
}
