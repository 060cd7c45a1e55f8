package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rail-lb/rail/control"
	"github.com/rail-lb/rail/internal/privtest"
)

// The takeover lab: the lab of lab_linux_test.go under names of its own
// (rto-). railbench gen sends stamped GRE over 1,000 flows from the
// generator namespace and its sink counts what raild returns (next_hop:
// ingress), with sequence numbers: loss and reordering.
//
// The environment sets the load and how many takeovers in a row
// (`make lab-takeover` runs ten):
//
//	RAIL_TAKEOVER_RATE=100000 GRE frames per second (default 100000)
//	RAIL_TAKEOVERS=10         takeovers in a row under one load (default 1)
const takeoverUMEM = 4096 // rings.DefaultOpts().FrameCount

type takeoverOpts struct {
	rate      float64
	takeovers int
}

func takeoverOptions(t *testing.T) takeoverOpts {
	o := takeoverOpts{rate: 100000, takeovers: 1}
	if s := os.Getenv("RAIL_TAKEOVER_RATE"); s != "" {
		r, err := strconv.ParseFloat(s, 64)
		if err != nil || r <= 0 {
			t.Fatalf("RAIL_TAKEOVER_RATE=%q: want frames per second", s)
		}
		o.rate = r
	}
	if s := os.Getenv("RAIL_TAKEOVERS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			t.Fatalf("RAIL_TAKEOVERS=%q: want a count ≥ 1", s)
		}
		o.takeovers = n
	}
	return o
}

// takeoverGen is railbench gen (overload_lab_linux_test.go) at rate for d.
func takeoverGen(t *testing.T, rate float64, d time.Duration) *genRun {
	return startGen(t, "--rate", strconv.FormatFloat(rate, 'f', 0, 64), "--duration", d.String(), "--drain", "500ms")
}

// waitExit waits for d to exit and returns its exit code. It waits for
// the process, not for its output to close: a raild started by d on
// SIGUSR2 holds that open.
func (d *daemon) waitExit(t *testing.T, within time.Duration) int {
	t.Helper()
	done := make(chan *os.ProcessState, 1)
	go func() {
		st, _ := d.cmd.Process.Wait()
		done <- st
	}()
	select {
	case st := <-done:
		d.cmd.ProcessState = st
	case <-time.After(within):
		t.Fatalf("raild did not exit within %v:\n%s", within, d.log)
	}
	return d.cmd.ProcessState.ExitCode()
}

// takeoverFails runs raild run --takeover with env, expects it to exit 1
// and returns its output.
func takeoverFails(t *testing.T, bin, cfg string, env ...string) string {
	t.Helper()
	cmd := exec.Command("ip", "netns", "exec", lbNS, bin, "run", "--config", cfg, "--takeover")
	cmd.Env = append(os.Environ(), env...)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, cmd.Args[0], cmd.Args[1:]...).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("raild run --takeover %v: %v, want exit 1:\n%s", env, err, out)
	}
	return string(out)
}

func conntrackOf(t *testing.T, sock string) control.CoreConntrack {
	t.Helper()
	var v []control.CoreConntrack
	apiGet(t, sock, "/v1/conntrack", &v)
	if len(v) != 1 {
		t.Fatalf("conntrack: %+v, want one queue", v)
	}
	return v[0]
}

func hasBackend(t *testing.T, sock, addr string) bool {
	t.Helper()
	var v control.ServiceView
	apiGet(t, sock, "/v1/services/web", &v)
	for _, b := range v.Backends {
		if b.Address == addr && b.Source == "api" {
			return true
		}
	}
	return false
}

// TestLabTakeover: under a steady GRE load over 1,000 flows, raild run
// --takeover replaces the running raild without losing a packet (the
// sink's sequence numbers: no loss, no reordering), with every UMEM frame
// accounted for before and after, the connection entries carried over
// (the new process's workers find every flow: no miss) and an API-added
// backend still there. Then the failure paths, under load again, each of
// which must leave the running raild forwarding without loss: an invalid
// configuration, an incompatible takeover protocol, a second takeover
// while one is in progress, and the new process SIGKILLed at each step of
// the hand-over. Last, for comparison, a plain restart under the same
// load, which loses packets and starts with empty tables.
func TestLabTakeover(t *testing.T) {
	privtest.Require(t, "ip")
	o := takeoverOptions(t)
	useNames(t, "rto-gen", "rto-lb", "rtogen0", "rtolb0")
	labUp(t)
	dir := t.TempDir()
	sock := filepath.Join(dir, "raild.sock")
	var b strings.Builder
	fmt.Fprintf(&b, "interface: %s\nqueues: [0]\nlocal_address: %s\nnext_hop: ingress\nmetrics_address: %s\nbusy_poll: false\n", lbIf, lbAddr, labMetrics)
	fmt.Fprintf(&b, "conntrack:\n  entries_per_core: 65536\napi:\n  socket: %s\n", sock)
	fmt.Fprintf(&b, "services:\n  - name: web\n    vip: %s\n    port: 80\n    protocol: tcp\n    table_size: 65537\n    backends:\n", labVIP)
	for _, a := range labBackends {
		fmt.Fprintf(&b, "      - address: %s\n", a)
	}
	file := filepath.Join(dir, "rail.yaml")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	bin := raildBinary(t)
	// Every raild this test starts runs with file; some are started by
	// another raild (SIGUSR2) and outlive their parent. None may outlive
	// the test, whatever fails.
	t.Cleanup(func() { killRunning(file) })
	old := startRaild(t, file)
	defer func() {
		if t.Failed() {
			t.Logf("raild:\n%s", old.log)
		}
	}()
	(&dsrLab{sock: sock}).api(t, "POST", "/v1/services/web/backends", map[string]any{"address": "10.1.0.14"}, 201)

	// Takeovers under load.
	per := 3 * time.Second
	gen := takeoverGen(t, o.rate, time.Duration(o.takeovers)*per+2*time.Second)
	time.Sleep(time.Second) // every flow has its entry
	m := scrape(t)
	if got := sum(m, `rail_umem_frames{queue="0"`); got != takeoverUMEM {
		t.Fatalf("UMEM frames add up to %v before the takeover, want %d", got, takeoverUMEM)
	}
	ct := conntrackOf(t, sock)
	if ct.Entries < 1000 {
		t.Fatalf("conntrack before the takeover: %+v, want the 1,000 flows", ct)
	}
	var rss []int64
	for i := range o.takeovers {
		if r, err := vmRSS(old.cmd.Process.Pid); err == nil {
			rss = append(rss, r)
		}
		next := startRaild(t, file, "--takeover")
		if code := old.waitExit(t, 10*time.Second); code != 0 {
			t.Fatalf("takeover %d: the old raild exited %d:\n%s", i+1, code, old.log)
		}
		t.Logf("takeover %d: old: %s; new: %s", i+1, logLine(old.log.String(), "handed over"), logLine(next.log.String(), "the rings are ours"))
		// The new process reports the program attached as it was, not
		// the configuration's xdp_mode (auto).
		if was, is := xdpModeLogged(old.log.String()), xdpModeLogged(next.log.String()); was == "" || was == "auto" || is != was {
			t.Errorf("takeover %d: the old raild logged xdp_mode %q, the new one %q", i+1, was, is)
		}
		old = next
		m := scrape(t)
		if got := sum(m, `rail_umem_frames{queue="0"`); got != takeoverUMEM {
			t.Errorf("takeover %d: UMEM frames add up to %v after, want %d", i+1, got, takeoverUMEM)
		}
		after := conntrackOf(t, sock)
		if after.Entries != ct.Entries {
			t.Errorf("takeover %d: %d connection entries after, %d before", i+1, after.Entries, ct.Entries)
		}
		if !hasBackend(t, sock, "10.1.0.14") {
			t.Errorf("takeover %d: the API-added backend 10.1.0.14 is gone", i+1)
		}
		// The new raild started from the old one (SIGUSR2) or from here,
		// plans its worker on CPU 1 as the first did, and keeps its
		// control plane off it.
		if got := threadCPUs(t, next.cmd.Process.Pid); got[labWorkerCPU] != 1 || got[labControlCPUs] == 0 || len(got) != 2 {
			t.Errorf("takeover %d: the new raild's threads by allowed CPUs %v, want one on %s (the worker) and the rest on %s", i+1, got, labWorkerCPU, labControlCPUs)
		}
		time.Sleep(per - time.Second)
		// Seconds later, still the Ps confineControl set for one worker
		// and one control-plane CPU: Go would lower GOMAXPROCS to the
		// confined threads' one CPU.
		if got, want := scrape(t)["go_gomaxprocs"], float64(controlProcs(1, 1)); got != want {
			t.Errorf("takeover %d: go_gomaxprocs %v, want %v (one worker, one control-plane CPU)", i+1, got, want)
		}
		if c := conntrackOf(t, sock); c.Misses != 0 || c.Hits == 0 {
			t.Errorf("takeover %d: the new workers' lookups: %d hits, %d misses; want every flow found", i+1, c.Hits, c.Misses)
		}
	}
	rep := gen.wait(t)
	t.Logf("%d takeover(s) at %.0f frames/s over 1000 flows: sent %d, received %d, lost %d, reordered %d; longest gap between two received batches %v; RSS of the successive processes %v",
		o.takeovers, o.rate, rep.Sent, rep.Received, rep.Lost(), rep.Reordered, rep.MaxGap, rss)
	if rep.Lost() != 0 || rep.Reordered != 0 || rep.Sent == 0 {
		t.Errorf("takeover under load: sent %d, received %d, lost %d, reordered %d; want none lost or reordered", rep.Sent, rep.Received, rep.Lost(), rep.Reordered)
	}

	// Failure paths: the running raild keeps forwarding through each. (The
	// binary of another protocol is built first: a compile on the lab's
	// CPUs under the load would starve the worker.)
	other := filepath.Join(filepath.Dir(bin), "raild-protocol-99")
	if out, err := exec.Command("go", "build", "-ldflags", "-X main.takeoverProtocol=99", "-o", other, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	gen = takeoverGen(t, o.rate, 8*time.Second)
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte(strings.Replace(b.String(), "table_size: 65537", "table_size: 65536", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out := takeoverFails(t, bin, bad); !strings.Contains(out, "table_size") {
		t.Errorf("bad config: the error does not say what is wrong:\n%s", out)
	}
	if out := takeoverFails(t, other, file); !strings.Contains(out, "incompatible versions") {
		t.Errorf("other protocol: the error does not say why:\n%s", out)
	}
	// Killed at ready: the old workers never stopped. A second takeover
	// meanwhile is refused.
	stalled := startStalled(t, bin, file, "ready")
	if out := takeoverFails(t, bin, file); !strings.Contains(out, "another takeover is in progress") {
		t.Errorf("a second takeover during one: not refused as in progress:\n%s", out)
	}
	stalled.cmd.Process.Signal(syscall.SIGKILL)
	stalled.waitExit(t, 5*time.Second)
	waitFor(t, 5*time.Second, "the old raild goes on after the kill at ready", func() bool {
		return strings.Contains(old.log.String(), "still forwarding")
	})
	rep = gen.wait(t)
	t.Logf("failure paths (bad config, other protocol, second takeover, killed at ready) at %.0f frames/s: sent %d, received %d, lost %d, reordered %d, longest gap %v",
		o.rate, rep.Sent, rep.Received, rep.Lost(), rep.Reordered, rep.MaxGap)
	if rep.Lost() != 0 || rep.Sent == 0 {
		t.Errorf("failure paths: sent %d, received %d, lost %d; want none lost", rep.Sent, rep.Received, rep.Lost())
	}
	// Killed at taking: the old workers had stopped, the rings held what
	// came meanwhile; at most what arrived while they were stopped (with a
	// quarter for the generator's bursts), less what the rings hold (2,048
	// frames), can be lost.
	gen = takeoverGen(t, o.rate, 3*time.Second)
	time.Sleep(time.Second)
	stalled = startStalled(t, bin, file, "taking")
	stalled.cmd.Process.Signal(syscall.SIGKILL)
	stalled.waitExit(t, 5*time.Second)
	waitFor(t, 5*time.Second, "the old raild rolls back after the kill at taking", func() bool {
		return strings.Contains(old.log.String(), "rolled back")
	})
	paused, err := time.ParseDuration(strings.TrimPrefix(strings.Fields(logLine(old.log.String(), "rolled back"))[len(strings.Fields(logLine(old.log.String(), "rolled back")))-1], "paused_for="))
	if err != nil {
		t.Fatalf("rollback: no paused_for: %v\n%s", err, old.log)
	}
	rep = gen.wait(t)
	allowed := max(0, int64(1.25*o.rate*paused.Seconds())-2048) // 1.25: the generator runs in bursts
	t.Logf("killed at taking at %.0f frames/s: the old workers stopped for %v; sent %d, received %d, lost %d (at most %d beyond the rings), longest gap %v",
		o.rate, paused, rep.Sent, rep.Received, rep.Lost(), allowed, rep.MaxGap)
	if old.exited() {
		t.Fatalf("the running raild exited during the failure paths:\n%s", old.log)
	}
	if int64(rep.Lost()) > allowed || rep.Sent == 0 {
		t.Errorf("killed at taking: lost %d of %d, more than the %d that did not fit the rings", rep.Lost(), rep.Sent, allowed)
	}
	if got := sum(scrape(t), `rail_umem_frames{queue="0"`); got != takeoverUMEM {
		t.Errorf("UMEM frames add up to %v after the failure paths, want %d", got, takeoverUMEM)
	}

	// The unit's upgrade path: SIGUSR2 makes raild start the installed
	// binary with --takeover (tools/raild.service, ExecReload).
	old.cmd.Process.Signal(syscall.SIGUSR2)
	if code := old.waitExit(t, 10*time.Second); code != 0 {
		t.Fatalf("SIGUSR2: the old raild exited %d:\n%s", code, old.log)
	}
	line := logLine(old.log.String(), "upgrade: started the new raild")
	i := strings.Index(line, " pid=")
	if i < 0 {
		t.Fatalf("SIGUSR2: no new raild started:\n%s", old.log)
	}
	child, _ := strconv.Atoi(strings.Fields(line[i+5:])[0])
	t.Cleanup(func() { syscall.Kill(child, syscall.SIGKILL) })
	if !running(child) || !hasBackend(t, sock, "10.1.0.14") {
		t.Fatalf("SIGUSR2: the new raild (pid %d) does not serve the API with the API-added backend:\n%s", child, old.log)
	}
	if got := sum(scrape(t), `rail_umem_frames{queue="0"`); got != takeoverUMEM {
		t.Errorf("UMEM frames add up to %v after the SIGUSR2 upgrade, want %d", got, takeoverUMEM)
	}

	// Without the feature: a restart under the same load.
	gen = takeoverGen(t, o.rate, 4*time.Second)
	time.Sleep(time.Second)
	syscall.Kill(child, syscall.SIGTERM)
	waitFor(t, 10*time.Second, "the upgraded raild stops", func() bool { return !running(child) })
	restarted := startRaild(t, file)
	rep = gen.wait(t)
	c := conntrackOf(t, sock)
	t.Logf("a restart instead at %.0f frames/s: sent %d, received %d, lost %d, longest gap %v; the new tables: %d misses",
		o.rate, rep.Sent, rep.Received, rep.Lost(), rep.MaxGap, c.Misses)
	if hasBackend(t, sock, "10.1.0.14") {
		t.Error("the API-added backend survived a restart: the comparison shows nothing")
	}

	// The old process killed mid-hand-over: once it has stopped its
	// workers and the new one holds the rings, the new one completes on
	// its own.
	gen = takeoverGen(t, o.rate, 5*time.Second)
	time.Sleep(time.Second)
	next := startStalled(t, bin, file, "taking:2s")
	restarted.cmd.Process.Signal(syscall.SIGKILL)
	restarted.waitExit(t, 5*time.Second)
	waitFor(t, 10*time.Second, "the new raild completes after the old one died", func() bool {
		return strings.Contains(next.log.String(), "the rings are ours")
	})
	rep = gen.wait(t)
	allowed = max(0, int64(1.25*o.rate*2.5)-2048) // the 2 s stall with the old workers stopped, less the rings
	t.Logf("the old raild killed at taking at %.0f frames/s: the new one completed; sent %d, received %d, lost %d (at most %d beyond the rings), longest gap %v",
		o.rate, rep.Sent, rep.Received, rep.Lost(), allowed, rep.MaxGap)
	if !strings.Contains(next.log.String(), "the old process died during the hand-over") {
		t.Errorf("the new raild did not see the old one die:\n%s", next.log)
	}
	if int64(rep.Lost()) > allowed || rep.Received == 0 {
		t.Errorf("old killed at taking: lost %d of %d (at most %d), received %d", rep.Lost(), rep.Sent, allowed, rep.Received)
	}
	if got := sum(scrape(t), `rail_umem_frames{queue="0"`); got != takeoverUMEM {
		t.Errorf("UMEM frames add up to %v after the old raild died mid-hand-over, want %d", got, takeoverUMEM)
	}
	if code := next.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("the raild that completed alone exited %d:\n%s", code, next.log)
	}
}

// startStalled starts raild run --takeover that stalls at step of the
// hand-over (RAILD_TAKEOVER_STALL) and returns once it says so.
func startStalled(t *testing.T, bin, cfg, step string) *daemon {
	t.Helper()
	d := &daemon{log: &syncBuffer{}}
	d.cmd = exec.Command("ip", "netns", "exec", lbNS, bin, "run", "--config", cfg, "--takeover")
	d.cmd.Env = append(os.Environ(), "RAILD_TAKEOVER_STALL="+step)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	startCmd(t, d.cmd)
	waitFor(t, 10*time.Second, "the new raild stalls at "+step, func() bool { return strings.Contains(d.log.String(), "stalled") })
	return d
}

// logLine is the first line of log containing s, from its msg on.
// labWorkerCPU is where the lab's raild runs its one worker (pin.PlanFor
// leaves CPU 0 to the system on two CPUs), labControlCPUs where the rest
// of it runs (confineControl).
const labWorkerCPU, labControlCPUs = "1", "0"

// threadCPUs counts a process's threads by the CPUs they may run on
// (Cpus_allowed_list).
func threadCPUs(t *testing.T, pid int) map[string]int {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/task", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "status"))
		if err != nil {
			continue // the thread ended
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "Cpus_allowed_list:"); ok {
				out[strings.TrimSpace(v)]++
			}
		}
	}
	return out
}

// xdpModeLogged is the xdp_mode of a raild log's "attached" line, or "".
func xdpModeLogged(log string) string {
	l := logLine(log, "msg=attached")
	if i := strings.Index(l, "xdp_mode="); i >= 0 {
		return strings.Fields(l[i+len("xdp_mode="):])[0]
	}
	return ""
}

func logLine(log, s string) string {
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, s) {
			if i := strings.Index(l, "msg="); i >= 0 {
				return l[i:]
			}
			return l
		}
	}
	return "(no line with " + s + ")"
}

// killRunning kills every process whose command line names arg.
func killRunning(arg string) {
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile("/proc/" + d.Name() + "/cmdline")
		if err == nil && slices.Contains(strings.Split(string(cmdline), "\x00"), arg) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}
