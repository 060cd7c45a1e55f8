package pin

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestAllowed(t *testing.T) {
	// Stay on one thread so that /proc/thread-self is the thread Allowed
	// asked. (Not /proc/self: that is the main thread, which a Go worker
	// of an earlier test may have pinned before the runtime parked it.)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpus, err := Allowed()
	if err != nil {
		t.Fatal(err)
	}
	if len(cpus) == 0 || !slices.IsSorted(cpus) || len(slices.Compact(slices.Clone(cpus))) != len(cpus) {
		t.Fatalf("Allowed() = %v: want a non-empty sorted set", cpus)
	}
	// Cross-check with the kernel's own rendering of the same mask.
	status, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	found := false
	for line := range strings.Lines(string(status)) {
		if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok {
			found = true
			if got, want := FormatCPUs(cpus), strings.TrimSpace(v); got != want {
				t.Errorf("Allowed() = %s, /proc/thread-self/status says %s", got, want)
			}
		}
	}
	if !found {
		t.Error("no Cpus_allowed_list in /proc/thread-self/status")
	}
	t.Logf("allowed CPUs: %s", FormatCPUs(cpus))
}

// runningCPU is the CPU the calling thread is running on now: field 39
// ("processor") of /proc/thread-self/stat — getcpu(2) without unsafe. It
// runs on pinned goroutines, so it returns errors instead of t.Fatal.
func runningCPU() (int, error) {
	b, err := os.ReadFile("/proc/thread-self/stat")
	if err != nil {
		return -1, err
	}
	// Fields after the command name, which is in parentheses and may
	// contain spaces; the first of them is field 3 (state).
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	if len(f) <= 39-3 {
		return -1, fmt.Errorf("/proc/thread-self/stat has %d fields", len(f)+2)
	}
	return strconv.Atoi(f[39-3])
}

func TestGoPins(t *testing.T) {
	cpus, err := Allowed()
	if err != nil {
		t.Fatal(err)
	}
	for _, cpu := range cpus {
		var got, running int
		var terr, rerr error
		err := <-Go(cpu, func() {
			got, terr = ThreadCPU()
			runtime.Gosched() // still on the same, pinned thread afterwards
			running, rerr = runningCPU()
		})
		if err != nil {
			t.Fatalf("Go(%d): %v", cpu, err)
		}
		if terr != nil || got != cpu {
			t.Errorf("Go(%d): thread affinity %d, %v", cpu, got, terr)
		}
		if rerr != nil {
			t.Logf("getcpu via /proc: %v", rerr)
		} else if running != cpu {
			t.Errorf("Go(%d): thread runs on cpu %d", cpu, running)
		}
	}
	// The pinned threads are gone with their goroutines: ordinary
	// goroutines still see the whole set.
	after, err := Allowed()
	if err != nil || !slices.Equal(after, cpus) {
		t.Errorf("Allowed() after pinning = %v, %v; want %v", after, err, cpus)
	}
	if _, err := ThreadCPU(); len(cpus) > 1 && err == nil {
		t.Error("ThreadCPU on an unpinned thread: no error")
	}
}

func TestGoManyWorkers(t *testing.T) {
	cpus, err := Allowed()
	if err != nil {
		t.Fatal(err)
	}
	plan, err := NewPlan([]int{0, 1, 2, 3, 4, 5, 6, 7}, cpus, nil)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	type result struct{ queue, cpu int }
	results := make(chan result, len(plan))
	var dones []<-chan error
	for _, a := range plan {
		dones = append(dones, Go(a.CPU, func() {
			c, err := ThreadCPU()
			if err != nil {
				c = -1
			}
			results <- result{a.Queue, c}
			<-stop // all workers alive at once: each on its own thread
		}))
	}
	got := map[int]int{}
	for range plan {
		r := <-results
		got[r.queue] = r.cpu
	}
	close(stop)
	for i, d := range dones {
		if err := <-d; err != nil {
			t.Errorf("worker %d: %v", i, err)
		}
		if _, open := <-d; open {
			t.Errorf("worker %d: channel not closed", i)
		}
	}
	for _, a := range plan {
		if got[a.Queue] != a.CPU {
			t.Errorf("queue %d planned on cpu %d, thread pinned to %d", a.Queue, a.CPU, got[a.Queue])
		}
	}
}

func TestGoErrors(t *testing.T) {
	cpus, err := Allowed()
	if err != nil {
		t.Fatal(err)
	}
	notAllowed := cpus[len(cpus)-1] + 1
	for _, tc := range []struct {
		cpu  int
		want string
	}{
		{-1, "cpu -1 is out of range (0-1023)"},
		{maxCPU, "cpu 1024 is out of range (0-1023)"},
		{notAllowed, "pin to cpu " + strconv.Itoa(notAllowed) + ": sched_setaffinity: invalid argument (allowed: " + FormatCPUs(cpus) + ")"},
	} {
		ran := false
		err := <-Go(tc.cpu, func() { ran = true })
		if err == nil || err.Error() != tc.want {
			t.Errorf("Go(%d) = %v, want %q", tc.cpu, err, tc.want)
		}
		if ran {
			t.Errorf("Go(%d): fn ran although pinning failed", tc.cpu)
		}
	}
}

func TestGoexit(t *testing.T) {
	cpus, err := Allowed()
	if err != nil {
		t.Fatal(err)
	}
	d := Go(cpus[0], func() { runtime.Goexit() })
	if err := <-d; !errors.Is(err, ErrGoexit) {
		t.Errorf("Go(Goexit) = %v, want ErrGoexit", err)
	}
	if _, open := <-d; open {
		t.Error("channel not closed")
	}
}

// tasksAllowed is the Cpus_allowed_list of every thread of the process.
func tasksAllowed(t *testing.T) map[string]string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range ents {
		b, err := os.ReadFile("/proc/self/task/" + e.Name() + "/status")
		if err != nil {
			continue // the thread ended
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "Cpus_allowed_list:"); ok {
				out[e.Name()] = strings.TrimSpace(v)
			}
		}
	}
	return out
}

// TestConfine: every thread of the process, and the ones started after,
// run on the confining CPUs only; a worker started with Go still pins
// itself outside them; OnCPUs runs its function (and a process started
// there) on the CPUs it names. The mask is put back after.
func TestConfine(t *testing.T) {
	allowed, err := Allowed()
	if err != nil {
		t.Fatal(err)
	}
	if len(allowed) < 2 {
		t.Skipf("needs two allowed CPUs, has %s", FormatCPUs(allowed))
	}
	t.Cleanup(func() {
		if err := Confine(allowed); err != nil {
			t.Errorf("put the mask back: %v", err)
		}
	})
	house, worker := allowed[:1], allowed[len(allowed)-1]
	if err := Confine(house); err != nil {
		t.Fatal(err)
	}
	// Threads started after: many goroutines blocking in system calls
	// make the runtime start more.
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); time.Sleep(10 * time.Millisecond); os.ReadFile("/proc/self/stat") }()
	}
	wg.Wait()
	want := FormatCPUs(house)
	for tid, got := range tasksAllowed(t) {
		if got != want {
			t.Errorf("thread %s: allowed on %s, want %s", tid, got, want)
		}
	}
	if got, err := Allowed(); err != nil || FormatCPUs(got) != want {
		t.Errorf("Allowed after Confine: %v %v, want %s", got, err, want)
	}
	// A pinned worker leaves the confinement.
	cpu := make(chan int, 1)
	if err := <-Go(worker, func() { c, _ := ThreadCPU(); cpu <- c }); err != nil {
		t.Fatal(err)
	}
	if c := <-cpu; c != worker {
		t.Errorf("worker pinned to %d runs on %d", worker, c)
	}
	// A process started from OnCPUs(allowed) may use them all.
	var out []byte
	if err := OnCPUs(allowed, func() (err error) {
		out, err = exec.Command("grep", "Cpus_allowed_list", "/proc/self/status").Output()
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(strings.TrimPrefix(string(out), "Cpus_allowed_list:")); got != FormatCPUs(allowed) {
		t.Errorf("a process started from OnCPUs(%s): allowed on %s", FormatCPUs(allowed), got)
	}
}
