package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rail-lb/rail/bench"
	"github.com/rail-lb/rail/control"
	"github.com/rail-lb/rail/internal/netnstest"
	"github.com/rail-lb/rail/internal/privtest"
)

// The soak lab: the lab of lab_linux_test.go with names of its own (rs-),
// plus a backend namespace behind a second veth pair on the node where the
// three backends answer HTTP health checks (served by this test process,
// on sockets opened inside that namespace). railbench gen sends GRE to
// the VIP from the generator namespace and its sink counts what comes
// back (next_hop: ingress returns every forwarded frame to the generator).
const (
	soakBeNS  = "rs-be"
	soakBeIf  = "rsbe1" // in soakBeNS
	soakLbBe  = "rsbe0" // in the node's namespace
	soakHC    = 8080
	soakDown  = "192.0.2.11" // a service whose only backend is drained: every packet is a no_backend drop
	soakUMEM  = 4096         // rings.DefaultOpts().FrameCount
	soakDrops = 500          // frames sent to soakDown: the drops the traffic asks for
)

// soakOpts is what one soak run does; the environment overrides the
// defaults (`make soak`, or by hand):
//
//	RAIL_SOAK=10m            how long the load runs (default 40s)
//	RAIL_SOAK_WARMUP=1m      RSS is compared from here to the end (default: a third of the run, at most 1m)
//	RAIL_SOAK_POLICY=off     memory.policy (default: no memory block, i.e. policy gc)
//	RAIL_SOAK_GC_PERCENT=100 memory.gc_percent (policy gc)
//	RAIL_SOAK_LIMIT=256MiB   memory.limit
//	RAIL_SOAK_RATE=20000     GRE frames per second from railbench gen
//	RAIL_SOAK_LOAD=0         no control-plane load (scrapes, API calls): the data path alone
type soakOpts struct {
	duration, warmup         time.Duration
	policy, gcPercent, limit string
	rate                     float64
	load                     bool
}

func soakOptions(t *testing.T) soakOpts {
	o := soakOpts{duration: 40 * time.Second, rate: 20000, load: true}
	if s := os.Getenv("RAIL_SOAK"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 20*time.Second {
			t.Fatalf("RAIL_SOAK=%q: want a duration of at least 20s", s)
		}
		o.duration = d
	}
	o.warmup = min(o.duration/3, time.Minute).Round(time.Second)
	if s := os.Getenv("RAIL_SOAK_WARMUP"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 || d >= o.duration {
			t.Fatalf("RAIL_SOAK_WARMUP=%q: want a duration shorter than the run (%v)", s, o.duration)
		}
		o.warmup = d
	}
	o.policy, o.gcPercent, o.limit = os.Getenv("RAIL_SOAK_POLICY"), os.Getenv("RAIL_SOAK_GC_PERCENT"), os.Getenv("RAIL_SOAK_LIMIT")
	if s := os.Getenv("RAIL_SOAK_RATE"); s != "" {
		r, err := strconv.ParseFloat(s, 64)
		if err != nil || r <= 0 {
			t.Fatalf("RAIL_SOAK_RATE=%q: want frames per second", s)
		}
		o.rate = r
	}
	o.load = os.Getenv("RAIL_SOAK_LOAD") != "0"
	return o
}

func (o soakOpts) memoryBlock() string {
	if o.policy == "" && o.gcPercent == "" && o.limit == "" {
		return ""
	}
	b := "memory:\n"
	for _, kv := range [][2]string{{"policy", o.policy}, {"gc_percent", o.gcPercent}, {"limit", o.limit}} {
		if kv[1] != "" {
			b += "  " + kv[0] + ": " + kv[1] + "\n"
		}
	}
	return b
}

func soakLabUp(t *testing.T) {
	useNames(t, "rs-gen", "rs-lb", "rsgen0", "rslb0")
	backendLabUp(t, soakBeNS, soakLbBe, soakBeIf, labBackends)
}

// serveHealth answers GET / with 200 on addr:port inside namespace ns until
// the test ends.
func serveHealth(t *testing.T, ns, addr string, port int) {
	t.Helper()
	var ln net.Listener
	inNetns(t, ns, func() {
		var err error
		if ln, err = net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(port))); err != nil {
			t.Error(err)
		}
	})
	if ln == nil {
		t.FailNow()
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ok\n")) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

var railbenchBuilt string

// railbenchBinary builds railbench once per test binary, next to raild.
func railbenchBinary(t *testing.T) string {
	if railbenchBuilt == "" {
		p := filepath.Join(filepath.Dir(raildBinary(t)), "railbench")
		if out, err := exec.Command("go", "build", "-o", p, "../railbench").CombinedOutput(); err != nil {
			t.Fatalf("go build railbench: %v\n%s", err, out)
		}
		railbenchBuilt = p
	}
	return railbenchBuilt
}

// vmRSS reads a process's resident set size from /proc/PID/status, in bytes.
func vmRSS(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

// soakSample is one second of the run.
type soakSample struct {
	at        time.Duration
	rss       int64
	heap      float64 // go_memstats_heap_inuse_bytes, from the last scrape
	gc        float64 // rail_gc_cycles_total
	gcPauseNs float64 // go_gc_duration_seconds_sum, in ns
}

// dropsByReason sums rail_drop_packets_total per reason over queues.
func dropsByReason(m map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		if !strings.HasPrefix(k, "rail_drop_packets_total{") {
			continue
		}
		i := strings.Index(k, `reason="`)
		if i < 0 {
			continue
		}
		r := k[i+len(`reason="`):]
		out[r[:strings.IndexByte(r, '"')]] += v
	}
	return out
}

// TestLabSoak runs raild under steady traffic and control-plane load —
// health checks every 100 ms, a metrics scrape and an API call ten times
// a second, a reload (SIGHUP) every 10 s — and checks that its memory stays
// flat: the resident set after the warm-up is within ±10 % of its value at
// the end, no UMEM frame is lost, and nothing is dropped but what the
// traffic asks for. `make test` runs it for 40 s; `make soak` for 10 min
// (RAIL_SOAK, see soakOpts). It logs the RSS curve and what the data path
// felt (loss, latency percentiles, the longest gap between two received
// batches).
func TestLabSoak(t *testing.T) {
	privtest.Require(t, "ip", "trafgen")
	o := soakOptions(t)
	soakLabUp(t)
	for _, a := range labBackends {
		serveHealth(t, soakBeNS, a, soakHC)
	}
	bin := railbenchBinary(t)

	dir := t.TempDir()
	sock := filepath.Join(dir, "raild.sock")
	var b strings.Builder
	fmt.Fprintf(&b, "interface: %s\nqueues: [0]\ncpus: [1]\nlocal_address: %s\nmetrics_address: %s\n", lbIf, lbAddr, labMetrics)
	fmt.Fprintf(&b, "conntrack:\n  entries_per_core: 65536\napi:\n  socket: %s\n%s", sock, o.memoryBlock())
	fmt.Fprintf(&b, "services:\n  - name: web\n    vip: %s\n    port: 80\n    protocol: tcp\n    table_size: 65537\n", labVIP)
	// Checks every 100 ms; fall 20: only 2 s of failures take a backend
	// out, so that a loaded machine's stalls (the backends are served by
	// this process) do not empty the service.
	fmt.Fprintf(&b, "    health: {type: http, port: %d, path: /, interval: 100ms, timeout: 100ms, rise: 2, fall: 20}\n    backends:\n", soakHC)
	for _, a := range labBackends {
		fmt.Fprintf(&b, "      - address: %s\n", a)
	}
	fmt.Fprintf(&b, "  - name: down\n    vip: %s\n    port: 80\n    protocol: tcp\n    table_size: 1009\n    backends:\n      - address: 10.1.0.21\n        weight: 0\n", soakDown)
	file := filepath.Join(dir, "rail.yaml")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startRaild(t, file)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("raild:\n%s", d.log)
		}
	})
	pid := d.cmd.Process.Pid // ip netns exec execs raild in place
	waitFor(t, 5*time.Second, "backends healthy", func() bool {
		var v control.ServiceView
		apiGet(t, sock, "/v1/services/web", &v)
		return v.Available && len(v.Backends) == 3 && v.Backends[0].Healthy && v.Backends[1].Healthy && v.Backends[2].Healthy
	})
	m0 := scrape(t)
	if got := sum(m0, `rail_umem_frames{queue="0"`); got != soakUMEM {
		t.Fatalf("UMEM frames add up to %v at start, want %d", got, soakUMEM)
	}
	drops0 := dropsByReason(m0)
	veth0 := vethRxDropped(t)

	// The traffic: railbench gen for the whole run (its sink on the same
	// interface), and the frames to the drained service.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gen := exec.Command("ip", "netns", "exec", genNS, bin, "gen", "--json", "--quiet", "--dev", genIf, "--cpu", "0", "--gen-nice", "20",
		"--dst-mac", net6(lbMAC), "--router", genAddr.String(), "--node", lbAddr.String(), "--vip", labVIP.String(),
		"--flows", "1000", "--size", "128", "--rate", strconv.FormatFloat(o.rate, 'f', 0, 64), "--duration", o.duration.String())
	var genOut strings.Builder
	genErr := &syncBuffer{}
	gen.Stdout, gen.Stderr = &genOut, genErr
	startCmd(t, gen)
	// Second 0 of the sink's per-second figures: railbench says when.
	waitFor(t, 10*time.Second, "railbench gen started", func() bool { return strings.Contains(genErr.String(), "railbench: started") })
	start := time.Now()
	var down [][]byte
	for i := range soakDrops {
		f, err := bench.AppendGRE(nil, bench.GRESpec{RouterMAC: genMAC, NodeMAC: lbMAC, Router: genAddr, Local: lbAddr,
			Flow: bench.FlowN(i, netip.MustParseAddr(soakDown), 80), Payload: 18})
		if err != nil {
			t.Fatal(err)
		}
		down = append(down, f)
	}
	time.Sleep(time.Second) // the generator is attached
	waitDown := trafgenBackground(t, down, "10ms", 1)

	// The control-plane load.
	var wg sync.WaitGroup
	var scrapes, scrapeErrs, calls, callErrs, hups atomic.Int64
	var last struct {
		sync.Mutex
		m      map[string]float64
		gcEnds map[float64]bool // go_memstats_last_gc_time_seconds seen
	}
	last.gcEnds = map[float64]bool{}
	record := func(m map[string]float64) {
		last.Lock()
		defer last.Unlock()
		last.m = m
		if v := m["go_memstats_last_gc_time_seconds"]; v > 0 {
			last.gcEnds[v] = true
		}
	}
	if o.load {
		every := func(d time.Duration, fn func()) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				tick := time.NewTicker(d)
				defer tick.Stop()
				for {
					select {
					case <-ctx.Done():
						return
					case <-tick.C:
						fn()
					}
				}
			}()
		}
		every(100*time.Millisecond, func() {
			m, err := scrapeErr()
			scrapes.Add(1)
			if err != nil {
				scrapeErrs.Add(1)
				return
			}
			record(m)
		})
		api := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", sock)
		}}}
		every(100*time.Millisecond, func() {
			calls.Add(1)
			resp, err := api.Get("http://raild/v1/services")
			if err != nil {
				callErrs.Add(1)
				return
			}
			var v []control.ServiceView
			if json.NewDecoder(resp.Body).Decode(&v) != nil || len(v) != 2 {
				callErrs.Add(1)
			}
			resp.Body.Close()
		})
	}
	every10 := time.NewTicker(10 * time.Second)
	defer every10.Stop()

	// Sample the resident set every second until the generator is done.
	var samples []soakSample
	sampleTick := time.NewTicker(time.Second)
	defer sampleTick.Stop()
	genDone := make(chan error, 1)
	go func() { genDone <- gen.Wait() }()
	var genErrV error
	sample := func() {
		rss, err := vmRSS(pid)
		if err != nil {
			t.Fatalf("raild: %v\n%s", err, d.log)
		}
		if !o.load { // one scrape a second still, for the heap and GC figures
			if m, err := scrapeErr(); err == nil {
				record(m)
			}
		}
		s := soakSample{at: time.Since(start), rss: rss}
		last.Lock()
		if last.m != nil {
			s.heap, s.gc, s.gcPauseNs = last.m["go_memstats_heap_inuse_bytes"], last.m["rail_gc_cycles_total"], last.m["go_gc_duration_seconds_sum"]*1e9
		}
		last.Unlock()
		samples = append(samples, s)
	}
	sample()
loop:
	for {
		select {
		case genErrV = <-genDone:
			break loop
		case <-every10.C:
			d.cmd.Process.Signal(syscall.SIGHUP)
			hups.Add(1)
		case <-sampleTick.C:
			sample()
		}
	}
	sample()
	cancel()
	wg.Wait()
	waitDown()
	if genErrV != nil {
		t.Fatalf("railbench gen: %v\n%s", genErrV, genErr)
	}
	var rep bench.Report
	if err := json.Unmarshal([]byte(genOut.String()), &rep); err != nil {
		t.Fatalf("railbench gen output: %v\n%s\n%s", err, genOut.String(), genErr)
	}
	if d.exited() {
		t.Fatalf("raild exited during the soak:\n%s", d.log)
	}
	time.Sleep(500 * time.Millisecond) // the last reload is applied
	m1 := scrape(t)

	// The RSS curve: every 5 s (every 30 s past 2 min), warm-up and end.
	rssAt := func(at time.Duration) soakSample {
		i := sort.Search(len(samples), func(i int) bool { return samples[i].at >= at })
		return samples[min(i, len(samples)-1)]
	}
	warm, end := rssAt(o.warmup), samples[len(samples)-1]
	mb := func(v float64) string { return fmt.Sprintf("%.1f", v/1e6) }
	var curve strings.Builder
	fmt.Fprintf(&curve, "%8s %9s %9s %6s %10s\n", "t", "RSS MB", "heap MB", "GCs", "pause ms")
	step := 5 * time.Second
	for at := time.Duration(0); ; at += step {
		if at > 2*time.Minute {
			step = 30 * time.Second
		}
		s := rssAt(at)
		if at > end.at {
			s = end
		}
		fmt.Fprintf(&curve, "%7.0fs %9s %9s %6.0f %10.2f\n", s.at.Seconds(), mb(float64(s.rss)), mb(s.heap), s.gc, s.gcPauseNs/1e6)
		if s == end {
			break
		}
	}
	// The longest collection pause: the largest one-second step of the
	// pause total over seconds that saw one cycle.
	var maxPause float64
	for i := 1; i < len(samples); i++ {
		if samples[i].gc-samples[i-1].gc == 1 {
			maxPause = max(maxPause, samples[i].gcPauseNs-samples[i-1].gcPauseNs)
		}
	}
	// Seconds with a collection against seconds without: the longest gap
	// and the largest latency the sink saw in each second (the first and
	// last two seconds left out: start and drain).
	isGC := map[int]bool{}
	last.Lock()
	for end := range last.gcEnds {
		if sec := int(end - float64(start.UnixNano())/1e9); sec >= 0 {
			isGC[sec] = true
		}
	}
	last.Unlock()
	var gapGC, gapNo, latGC, latNo []float64
	for sec, ps := range rep.PerSecond {
		if sec < 2 || sec >= len(rep.PerSecond)-2 || ps.Received == 0 {
			continue
		}
		if isGC[sec] {
			gapGC, latGC = append(gapGC, float64(ps.MaxGap)/1e3), append(latGC, float64(ps.MaxLatency)/1e3)
		} else {
			gapNo, latNo = append(gapNo, float64(ps.MaxGap)/1e3), append(latNo, float64(ps.MaxLatency)/1e3)
		}
	}
	l := rep.Latency
	policy := o.policy
	if policy == "" {
		policy = "gc (default)"
	}
	t.Logf("soak %v, memory.policy %s%s, %.0f pps offered; load: %d scrapes (%d failed), %d API calls (%d failed), %d SIGHUP",
		o.duration, policy, o.memoryBlockSummary(), o.rate, scrapes.Load(), scrapeErrs.Load(), calls.Load(), callErrs.Load(), hups.Load())
	t.Logf("RSS curve of raild (pid %d):\n%s", pid, curve.String())
	t.Logf("RSS: start %s MB, after warm-up (%v) %s MB, end %s MB (%+.1f %%); GC cycles %v → %v, pauses %.2f ms in all, longest %.2f ms",
		mb(float64(samples[0].rss)), o.warmup, mb(float64(warm.rss)), mb(float64(end.rss)),
		100*float64(end.rss-warm.rss)/float64(end.rss), m0["rail_gc_cycles_total"], m1["rail_gc_cycles_total"],
		(m1["go_gc_duration_seconds_sum"]-m0["go_gc_duration_seconds_sum"])*1e3, maxPause/1e6)
	t.Logf("data path: sent %d, received %d, lost %d (%.4f %%; at lb0's rx %d, at raild's socket %v, at the sink's %d), reordered %d; latency µs p50 %.1f p99 %.1f p99.9 %.1f max %.1f; longest gap %.1f µs",
		rep.Sent, rep.Received, rep.Lost(), 100*rep.LossRatio(), vethRxDropped(t)-veth0, sum(m1, "rail_xsk_rx_dropped_total")-sum(m0, "rail_xsk_rx_dropped_total"),
		rep.SinkDrops, rep.Reordered, l.P50, l.P99, l.P999, l.Max, float64(rep.MaxGap)/1e3)

	t.Logf("per second, µs (median / p90 / max of the seconds' longest gap | largest latency): %d seconds with a GC cycle: %s | %s; %d without: %s | %s",
		len(gapGC), spread(gapGC), spread(latGC), len(gapNo), spread(gapNo), spread(latNo))

	// Memory stays flat.
	if dev := float64(end.rss-warm.rss) / float64(end.rss); dev > 0.10 || dev < -0.10 {
		t.Errorf("RSS %s MB after warm-up, %s MB at the end: %+.1f %%, want within ±10 %%", mb(float64(warm.rss)), mb(float64(end.rss)), 100*dev)
	}
	// No UMEM frame lost.
	if got := sum(m1, `rail_umem_frames{queue="0"`); got != soakUMEM {
		t.Errorf("UMEM frames add up to %v at the end, want %d", got, soakUMEM)
	}
	// Drops: the frames to the drained service and nothing else. Some of
	// those frames may never reach raild on a loaded machine (the veth's
	// ring or the socket's rx ring overflows while the CPU is elsewhere:
	// lb0's rx_dropped, rail_xsk_rx_dropped_total), as some of the traffic
	// does (the sink's loss): that is loss, not a drop.
	drops1 := dropsByReason(m1)
	for r, n := range drops1 {
		switch {
		case r == "no_backend":
			if got := n - drops0[r]; got > soakDrops || got < soakDrops*9/10 {
				t.Errorf("rail_drop_packets_total{reason=\"no_backend\"} grew by %v, want the %d frames to the drained service (less what the lab lost: lb0 rx_dropped %d, socket rx ring %v)",
					got, soakDrops, vethRxDropped(t)-veth0, sum(m1, "rail_xsk_rx_dropped_total")-sum(m0, "rail_xsk_rx_dropped_total"))
			}
		case n != drops0[r]:
			t.Errorf("rail_drop_packets_total{reason=%q}: %v → %v, want no drops", r, drops0[r], n)
		}
	}
	if tx := sum(m1, "rail_tx_packets_total") - sum(m0, "rail_tx_packets_total"); tx < float64(rep.Received) {
		t.Errorf("raild forwarded %v frames, the sink received %d", tx, rep.Received)
	}
	// Loss is reported, not judged: on a shared two-CPU machine it says
	// more about the neighbours than about raild.
	if rep.Received == 0 {
		t.Errorf("the sink received none of %d frames", rep.Sent)
	}
	if got := m1[`rail_reloads_total{result="ok"}`]; got != float64(hups.Load()) {
		t.Errorf("%v reloads applied, %d SIGHUP sent", got, hups.Load())
	}
	if got := m1[`rail_service_usable_backends{service="web"}`]; got != 3 {
		t.Errorf("%v usable backends at the end, want 3", got)
	}
	if n := sum(m1, "rail_health_transitions_total"); n != 0 {
		t.Logf("%v health transitions (the machine stalled for seconds?): the drops of a service without backends count against the test", n)
	}
	if scrapeErrs.Load() > 0 || callErrs.Load() > 0 {
		t.Errorf("%d scrapes and %d API calls failed", scrapeErrs.Load(), callErrs.Load())
	}
	if code := d.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("raild exited %d on SIGTERM", code)
	}
}

func (o soakOpts) memoryBlockSummary() string {
	var s string
	if o.gcPercent != "" {
		s += ", gc_percent " + o.gcPercent
	}
	if o.limit != "" {
		s += ", limit " + o.limit
	}
	return s
}

// scrapeErr is scrape with the error returned instead of failing the test
// (for the load goroutines).
func scrapeErr() (map[string]float64, error) {
	var conn net.Conn
	var derr error
	err := netnstest.Do(lbNS, func() { conn, derr = net.DialTimeout("tcp", labMetrics, 5*time.Second) })
	if err == nil {
		err = derr
	}
	if err != nil {
		return nil, err
	}
	tr := &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) { return conn, nil }}
	c := &http.Client{Timeout: 5 * time.Second, Transport: tr}
	defer tr.CloseIdleConnections()
	resp, err := c.Get("http://" + labMetrics + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		i := strings.LastIndexByte(line, ' ')
		if i < 0 || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			m[line[:i]] = v
		}
	}
	return m, sc.Err()
}

// spread is "median / p90 / max" of v, or "-" when empty.
func spread(v []float64) string {
	if len(v) == 0 {
		return "-"
	}
	v = append([]float64(nil), v...)
	sort.Float64s(v)
	q := func(f float64) float64 { return v[min(len(v)-1, int(f*float64(len(v))))] }
	return fmt.Sprintf("%.0f / %.0f / %.0f", q(0.5), q(0.9), v[len(v)-1])
}

// vethRxDropped is the node's lab link's rx_dropped counter: frames the
// veth could not hand to raild's side.
func vethRxDropped(t *testing.T) int64 {
	t.Helper()
	out := sh(t, "ip", "-n", lbNS, "-s", "-j", "link", "show", "dev", lbIf)
	var links []struct {
		Stats struct {
			RX struct {
				Dropped int64 `json:"dropped"`
			} `json:"rx"`
		} `json:"stats64"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil || len(links) != 1 {
		t.Fatalf("ip -s -j link show %s: %v\n%s", lbIf, err, out)
	}
	return links[0].Stats.RX.Dropped
}
