package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"github.com/rail-lb/rail/bench"
	"github.com/rail-lb/rail/pipeline"
)

func init() {
	commands["pipeline"] = command{
		summary: "run N synthetic GRE-in IPv4/TCP packets over F flows through pipeline.Process in memory; print packets/s and ns/packet",
		run:     runPipeline,
	}
}

func runPipeline(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("railbench pipeline", flag.ContinueOnError)
	fs.SetOutput(stderr)
	packets := fs.Int("packets", 1000000, "packets to process")
	flows := fs.Int("flows", 10000, "distinct flows (inner 5-tuples)")
	backends := fs.Int("backends", 10, "backends behind the VIP")
	payload := fs.Int("payload", 18, "TCP payload bytes per packet")
	batch := fs.Int("batch", 64, "packets between counter flushes, as the live worker's batch")
	entries := fs.Uint("conntrack-entries", 1<<20, "connection table entries")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the timed run to this file (e.g. for cmd/*/default.pgo)")
	ipv6 := fs.Bool("ipv6", false, "IPv6 client flows to an IPv6 VIP with IPv6 backends, tunnelled in GRE over IPv4")
	plain := fs.Bool("plain", false, "plain IPv4 client packets straight to the VIP (no GRE from a router), encapsulated into the headroom (--layout nic)")
	warm := fs.Bool("warmup", true, "send every flow once, untimed, before the timed run (steady state: connection entries exist)")
	layout := fs.String("layout", "nic", "nic: frames from a UMEM-sized pool, flows in random order, headers written as they arrive; per-flow: one frame buffer per flow, flows round-robin (the old layout)")
	pool := fs.Int("pool", 4096, "frames in the pool (--layout nic): raild's UMEM")
	zipf := fs.Float64("zipf", 0, "Zipf exponent of the flows' popularity (> 1; 0: uniform) (--layout nic)")
	staged := fs.Bool("staged", true, "process each batch in two stages, connection-table buckets touched first (ProcessBatch) (--layout nic)")
	quicMode := fs.String("quic", "", "QUIC short-header packets to a UDP service on port 443: udp (no QUIC-LB option), plaintext, single-pass or four-pass (QUIC-LB, routed by connection ID); --payload is then the QUIC packet (default 1200)")
	quicNew := fs.Bool("quic-new-tuples", true, "with --quic: each packet from a new source port, a tuple the connection table lacks, so QUIC-LB decodes every one (a client that moved); false: the tuples repeat and the table answers")
	capture := fs.String("capture", "idle", "the live loop's capture hook (--layout per-flow): idle (hooked, no capture running, as a node normally runs), on (a capture of every packet running, read by another goroutine), off (no hook)")
	sweep := fs.String("flows-sweep", "", "comma-separated flow counts (e.g. 1k,10k,100k,1M,4M): ns/packet for each and the ratio to the first, in one run (--layout nic)")
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	if *quicMode != "" {
		qp := 1200
		fs.Visit(func(f *flag.Flag) {
			if f.Name == "payload" {
				qp = *payload
			}
		})
		return runQUICBench(stdout, stderr, *quicMode, *quicNew, *packets, *flows, *backends, qp, *batch, *entries)
	}
	if *layout != "nic" && *layout != "per-flow" {
		return fail(stderr, "--layout %q: use nic or per-flow", *layout)
	}
	if *plain && (*ipv6 || *layout != "nic") {
		return fail(stderr, "--plain is IPv4 and needs --layout nic")
	}
	if *layout == "nic" {
		form := bench.FormGRE
		switch {
		case *ipv6:
			form = bench.FormGRE6
		case *plain:
			form = bench.FormPlain
		}
		counts := []int{*flows}
		if *sweep != "" {
			var err error
			if counts, err = parseCounts(*sweep); err != nil {
				return fail(stderr, "--flows-sweep: %v", err)
			}
		}
		if *pool <= 0 || *batch <= 0 || *packets <= 0 {
			return fail(stderr, "--pool, --batch and --packets must be positive")
		}
		return runNICSweep(stdout, stderr, form, counts, *packets, *pool, *payload, *backends, *batch, *entries, *zipf, *staged)
	}
	switch {
	case *packets <= 0:
		return fail(stderr, "--packets must be positive, got %d", *packets)
	case *flows <= 0:
		return fail(stderr, "--flows must be positive, got %d", *flows)
	case *backends <= 0 || *backends > 1000:
		return fail(stderr, "--backends must be 1…1000, got %d", *backends)
	case *payload < 0 || *payload > 1400:
		return fail(stderr, "--payload must be 0…1400, got %d", *payload)
	case *batch <= 0:
		return fail(stderr, "--batch must be positive, got %d", *batch)
	}
	cfg, newWorkload, frameLen := bench.BenchConfig(*backends), bench.NewWorkload, bench.GREFrameLen(*payload)
	if *ipv6 {
		cfg, newWorkload, frameLen = bench.BenchConfig6(*backends), bench.NewWorkload6, bench.GRE6FrameLen(*payload)
	}
	snap, err := pipeline.NewSnapshot(cfg)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	ct, err := pipeline.NewConntrack(uint32(*entries), time.Hour, 30*time.Second)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	wl, err := newWorkload(*flows, *payload)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	w := pipeline.NewWorker(ct)
	if *warm {
		bench.WarmUp(w, snap, wl)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return fail(stderr, "%v", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fail(stderr, "%v", err)
		}
	}
	var tap *pipeline.CaptureTap
	switch *capture {
	case "off":
	case "idle", "on":
		hub := pipeline.NewCapture()
		tap = hub.NewTap(0, 0)
		if *capture == "on" {
			sess, err := hub.Start(pipeline.CaptureFilter{})
			if err != nil {
				return fail(stderr, "%v", err)
			}
			defer sess.Stop()
			go func() {
				for range sess.Ready() {
					sess.Read(func(*pipeline.CapturedPacket) bool { return true })
				}
			}()
		}
	default:
		return fail(stderr, "--capture %q: use idle, on or off", *capture)
	}
	r := bench.RunPipelineTap(w, snap, wl, *packets, *batch, tap)
	if *cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	if r.Tx != uint64(r.Packets) {
		return fail(stderr, "only %d of %d packets were forwarded", r.Tx, r.Packets)
	}
	family := "IPv4"
	if *ipv6 {
		family = "IPv6"
	}
	fmt.Fprintf(stdout, "packets:   %d %s over %d flows, %d backends, %d-byte frames, warm-up %v, capture hook %s\n", r.Packets, family, r.Flows, *backends, frameLen, *warm, *capture)
	fmt.Fprintf(stdout, "elapsed:   %v\n", r.Elapsed.Round(time.Microsecond))
	fmt.Fprintf(stdout, "rate:      %.0f packets/s\n", r.PacketsPerSecond())
	fmt.Fprintf(stdout, "per packet: %.1f ns\n", r.NsPerPacket())
	return 0
}

// parseCounts reads "1k,10k,1M".
func parseCounts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		mult := 1
		switch {
		case strings.HasSuffix(f, "k"), strings.HasSuffix(f, "K"):
			mult, f = 1000, f[:len(f)-1]
		case strings.HasSuffix(f, "M"), strings.HasSuffix(f, "m"):
			mult, f = 1000000, f[:len(f)-1]
		}
		n, err := strconv.Atoi(f)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("%q is not a flow count (e.g. 10k, 1M)", f)
		}
		out = append(out, n*mult)
	}
	return out, nil
}

// runNICSweep runs the NIC-like workload for each flow count, pinned to
// whatever CPU the caller gave (taskset), and prints ns/packet and the
// ratio to the first count.
func runNICSweep(stdout, stderr io.Writer, form bench.NICForm, counts []int, packets, pool, payload, backends, batch int, entries uint, zipf float64, staged bool) int {
	snap, err := pipeline.NewSnapshot(form.Config(backends))
	if err != nil {
		return fail(stderr, "%v", err)
	}
	order := "uniform"
	if zipf > 1 {
		order = fmt.Sprintf("zipf %.2f", zipf)
	}
	fmt.Fprintf(stdout, "layout nic: %s, %d-frame pool, %s arrivals, batches of %d, staged %v, %d packets per row, conntrack %d entries\n",
		form, pool, order, batch, staged, packets, entries)
	fmt.Fprintf(stdout, "%10s %12s %10s %8s %6s  %s\n", "flows", "packets/s", "ns/packet", "ratio", "fast", "conntrack pages")
	first := 0.0
	for _, flows := range counts {
		// Room for every flow, twice over, in its family's table (the IPv6
		// table has a quarter of the IPv4 one's slots).
		room := uint(2 * flows)
		if form == bench.FormGRE6 {
			room *= 4
		}
		ct, err := pipeline.NewConntrack(uint32(max(entries, room)), time.Hour, 30*time.Second)
		if err != nil {
			return fail(stderr, "%v", err)
		}
		wl, err := bench.NewNICWorkload(form, flows, packets, pool, payload, zipf, uint64(flows))
		if err != nil {
			return fail(stderr, "%v", err)
		}
		w := pipeline.NewWorker(ct)
		bench.WarmUpNIC(w, snap, wl)
		st := w.Stats()
		fast0 := st.FastPath.Load()
		r := bench.RunNIC(w, snap, wl, batch, staged)
		fast := float64(st.FastPath.Load()-fast0) / float64(r.Packets)
		if r.Tx != uint64(r.Packets) {
			return fail(stderr, "%d flows: only %d of %d packets were forwarded", flows, r.Tx, r.Packets)
		}
		ns := r.NsPerPacket()
		if first == 0 {
			first = ns
		}
		fmt.Fprintf(stdout, "%10d %12.0f %10.1f %7.2fx %5.1f%%  %v\n", flows, r.PacketsPerSecond(), ns, ns/first, 100*fast, ct.Pages())
		ct.Close() // its pages (hugetlb ones too) free for the next row
	}
	return 0
}

// runQUICBench is railbench pipeline --quic: the per-flow layout over QUIC
// short-header packets (bench.NewQUICWorkload), warmed up like the TCP runs.
func runQUICBench(stdout, stderr io.Writer, mode string, fresh bool, packets, flows, backends, payload, batch int, entries uint) int {
	if packets <= 0 || batch <= 0 || backends <= 0 || backends > 1000 || payload > 1400 {
		return fail(stderr, "--packets and --batch must be positive, --backends 1…1000, --payload at most 1400")
	}
	cfg, err := bench.QUICBenchConfig(backends, mode)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	snap, err := pipeline.NewSnapshot(cfg)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	ct, err := pipeline.NewConntrack(uint32(entries), time.Hour, 30*time.Second)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	wl, err := bench.NewQUICWorkload(flows, payload, backends, mode, fresh)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	w := pipeline.NewWorker(ct)
	bench.WarmUp(w, snap, wl)
	r := bench.RunPipeline(w, snap, wl, packets, batch)
	if r.Tx != uint64(r.Packets) {
		return fail(stderr, "only %d of %d packets were forwarded", r.Tx, r.Packets)
	}
	st := w.Stats()
	fmt.Fprintf(stdout, "packets:   %d QUIC short-header (%s, new tuples %v) over %d flows, %d backends, %d-byte frames\n",
		r.Packets, mode, fresh, r.Flows, backends, bench.QUICFrameLen(payload))
	fmt.Fprintf(stdout, "routed by connection ID: %d, by the 5-tuple: %d (warm-up included)\n", st.QUICRouted.Load(), st.QUICFallback.Load())
	fmt.Fprintf(stdout, "elapsed:   %v\n", r.Elapsed.Round(time.Microsecond))
	fmt.Fprintf(stdout, "rate:      %.0f packets/s\n", r.PacketsPerSecond())
	fmt.Fprintf(stdout, "per packet: %.1f ns\n", r.NsPerPacket())
	return 0
}
