package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
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
	warm := fs.Bool("warmup", true, "send every flow once, untimed, before the timed run (steady state: connection entries exist)")
	if err := fs.Parse(args); err != nil {
		return 2
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
	r := bench.RunPipeline(w, snap, wl, *packets, *batch)
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
	fmt.Fprintf(stdout, "packets:   %d %s over %d flows, %d backends, %d-byte frames, warm-up %v\n", r.Packets, family, r.Flows, *backends, frameLen, *warm)
	fmt.Fprintf(stdout, "elapsed:   %v\n", r.Elapsed.Round(time.Microsecond))
	fmt.Fprintf(stdout, "rate:      %.0f packets/s\n", r.PacketsPerSecond())
	fmt.Fprintf(stdout, "per packet: %.1f ns\n", r.NsPerPacket())
	return 0
}
