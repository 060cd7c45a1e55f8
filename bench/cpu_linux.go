package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ThreadsCPU is the CPU time, in nanoseconds, that every thread of pid has
// used so far: the sum of the first field of /proc/PID/task/*/schedstat
// (the scheduler's exact run time), or utime+stime of
// /proc/PID/task/*/stat in clock ticks where schedstat is missing.
func ThreadsCPU(pid int) (uint64, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	if err != nil || len(tasks) == 0 {
		return 0, fmt.Errorf("bench: no threads of pid %d", pid)
	}
	var sum uint64
	for _, t := range tasks {
		if b, err := os.ReadFile(t + "/schedstat"); err == nil {
			f := strings.Fields(string(b))
			if len(f) > 0 {
				v, _ := strconv.ParseUint(f[0], 10, 64)
				sum += v
				continue
			}
		}
		b, err := os.ReadFile(t + "/stat")
		if err != nil {
			continue // the thread ended
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(f) > 12 {
			ut, _ := strconv.ParseUint(f[11], 10, 64)
			st, _ := strconv.ParseUint(f[12], 10, 64)
			sum += (ut + st) * 1e7 // USER_HZ = 100
		}
	}
	return sum, nil
}

// CPUTimes is where a process's CPU time went: Run is the scheduler's
// exact run time of all its threads (schedstat, ns); UserTicks and
// SysTicks are the user and system clock ticks of /proc/PID/task/*/stat
// (USER_HZ), the tick-sampled split of that time. Softirqs a thread runs
// on its way out of a system call (a veth's peer NAPI raised by sendto)
// count as its system time.
type CPUTimes struct {
	Run                 uint64
	UserTicks, SysTicks uint64
}

// Sub is t − o.
func (t CPUTimes) Sub(o CPUTimes) CPUTimes {
	return CPUTimes{Run: t.Run - o.Run, UserTicks: t.UserTicks - o.UserTicks, SysTicks: t.SysTicks - o.SysTicks}
}

// Split divides Run into user and system time by the ticks' proportion
// (ticks are 10 ms; Run is exact).
func (t CPUTimes) Split() (user, sys float64) {
	if t.UserTicks+t.SysTicks == 0 {
		return 0, float64(t.Run)
	}
	u := float64(t.Run) * float64(t.UserTicks) / float64(t.UserTicks+t.SysTicks)
	return u, float64(t.Run) - u
}

// ProcessTimes reads the CPU times of every thread of pid.
func ProcessTimes(pid int) (CPUTimes, error) {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*", pid))
	if err != nil || len(tasks) == 0 {
		return CPUTimes{}, fmt.Errorf("bench: no threads of pid %d", pid)
	}
	var t CPUTimes
	for _, task := range tasks {
		if b, err := os.ReadFile(task + "/schedstat"); err == nil {
			if f := strings.Fields(string(b)); len(f) > 0 {
				v, _ := strconv.ParseUint(f[0], 10, 64)
				t.Run += v
			}
		}
		b, err := os.ReadFile(task + "/stat")
		if err != nil {
			continue // the thread ended
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(f) > 12 {
			ut, _ := strconv.ParseUint(f[11], 10, 64)
			st, _ := strconv.ParseUint(f[12], 10, 64)
			t.UserTicks += ut
			t.SysTicks += st
		}
	}
	return t, nil
}

// CPUBusy is how long CPU cpu has not been idle so far (user, nice,
// system, irq, softirq and steal of /proc/stat, in ns at USER_HZ 100):
// with the forwarder's and its NAPI threads' time, what else ran there.
func CPUBusy(cpu int) (uint64, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	name := "cpu" + strconv.Itoa(cpu)
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if len(f) < 9 || f[0] != name {
			continue
		}
		var busy uint64
		for _, i := range []int{1, 2, 3, 6, 7, 8} {
			v, _ := strconv.ParseUint(f[i], 10, 64)
			busy += v
		}
		return busy * 1e7, nil
	}
	return 0, fmt.Errorf("bench: no %s in /proc/stat", name)
}

// napiThreads lists the pids of the kernel's threaded-NAPI threads of
// interface ifname ("napi/IFNAME-ID"), in any namespace.
func napiThreads(ifname string) map[int]bool {
	out := map[int]bool{}
	comms, _ := filepath.Glob("/proc/[0-9]*/comm")
	prefix := "napi/" + ifname + "-"
	for _, c := range comms {
		b, err := os.ReadFile(c)
		if err != nil || !strings.HasPrefix(string(b), prefix) {
			continue
		}
		pid, err := strconv.Atoi(filepath.Base(filepath.Dir(c)))
		if err == nil {
			out[pid] = true
		}
	}
	return out
}

// ThreadedNAPI switches the NAPI instances of ifname to kernel threads
// (the interface must have them: a veth has NAPI once an XDP program is
// attached) and pins those threads to cpu, so that the kernel's receive
// work for the interface runs, and is accounted, as threads of its own.
// setThreaded writes "0" or "1" to /sys/class/net/IFNAME/threaded as seen
// from the interface's namespace. It returns the threads' pids.
func ThreadedNAPI(ifname string, cpu int, setThreaded func(on bool) error) ([]int, error) {
	if err := setThreaded(false); err != nil {
		return nil, err
	}
	before := napiThreads(ifname)
	if err := setThreaded(true); err != nil {
		return nil, err
	}
	var pids []int
	for pid := range napiThreads(ifname) {
		if before[pid] {
			continue
		}
		if cpu >= 0 {
			var set unix.CPUSet
			set.Set(cpu)
			if err := unix.SchedSetaffinity(pid, &set); err != nil {
				return nil, fmt.Errorf("bench: pin napi thread %d to cpu %d: %w", pid, cpu, err)
			}
		}
		pids = append(pids, pid)
	}
	if len(pids) == 0 {
		return nil, fmt.Errorf("bench: %s: no NAPI thread appeared (is an XDP program attached?)", ifname)
	}
	return pids, nil
}

// SysfsThreaded returns a setThreaded for ThreadedNAPI that writes the
// sysfs file directly (the caller runs in the interface's namespace).
func SysfsThreaded(ifname string) func(bool) error {
	return func(on bool) error {
		v := "0"
		if on {
			v = "1"
		}
		if err := os.WriteFile("/sys/class/net/"+ifname+"/threaded", []byte(v), 0); err != nil {
			return fmt.Errorf("bench: %s: threaded NAPI: %w", ifname, err)
		}
		return nil
	}
}
