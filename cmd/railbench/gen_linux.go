package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rail-lb/rail/bench"
	"github.com/rail-lb/rail/pipeline/header"
)

func init() {
	commands["gen"] = command{
		summary: "send GRE-in (or plain) IPv4 frames over F flows from an interface and, on the same interface, count what comes back (loss, reordering, latency, per backend)",
		run:     func(args []string, stdout, stderr io.Writer) int { return runTraffic("gen", args, stdout, stderr) },
	}
	commands["sink"] = command{
		summary: "count frames arriving on an interface: per outer destination (backend), loss against the stamps, reordering, latency",
		run:     func(args []string, stdout, stderr io.Writer) int { return runTraffic("sink", args, stdout, stderr) },
	}
}

func runTraffic(name string, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("railbench "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	dev := fs.String("dev", "gen0", "interface to send from and receive on")
	queue := fs.Int("queue", 0, "queue of the interface")
	duration := fs.Duration("duration", 5*time.Second, "how long to send (sink: to count); 0 = until --count or Ctrl-C")
	cpu := fs.Int("cpu", -1, "pin the send/receive loop to this CPU (-1: don't)")
	jsonOut := fs.Bool("json", false, "print the final report as JSON instead of a table")
	quiet := fs.Bool("quiet", false, "no live status line")
	drain := fs.Duration("drain", 300*time.Millisecond, "how long the sink keeps counting after sending stops")
	local := fs.String("local", "10.0.0.1", "this side's address: frames to it are left to the kernel")
	genNice := fs.Int("gen-nice", 0, "nice value of the generator threads (20: SCHED_IDLE), so that they leave the receive side on the same CPU its share")
	napiCPU := fs.Int("napi-cpu", -1, "run --dev's NAPI (the kernel's receive work) as a thread pinned to this CPU (-1: leave it)")
	var (
		form, dstMAC, router, node, vip *string
		size, flows                     *int
		rate                            *float64
		count                           *uint64
		port                            *uint
		sink                            *bool
	)
	if name == "gen" {
		form = fs.String("form", "gre", "gre: GRE-in frames from a router to --node; plain: inner packets straight to the VIP")
		size = fs.Int("size", 128, fmt.Sprintf("frame length in bytes without FCS, %d…%d (GRE; plain from %d)", bench.MinGRESize, bench.MaxSize, bench.MinPlainSize))
		flows = fs.Int("flows", 1000, "inner flows (source address and port vary)")
		rate = fs.Float64("rate", 0, "frames per second; 0 = flat out")
		count = fs.Uint64("count", 0, "frames to send (0: until --duration)")
		dstMAC = fs.String("dst-mac", "02:00:00:00:00:02", "destination MAC (the load balancer's NIC)")
		router = fs.String("router", "10.0.0.1", "outer source address (the router)")
		node = fs.String("node", "10.0.0.2", "outer destination address (the Rail node's local_address)")
		vip = fs.String("vip", "192.0.2.10", "inner destination (the VIP)")
		port = fs.Uint("port", 80, "inner TCP destination port")
		sink = fs.Bool("sink", true, "also count what comes back on --dev (one process, like TRex in loopback)")
	}
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	ifi, err := net.InterfaceByName(*dev)
	if err != nil {
		return fail(stderr, "--dev %s: %v", *dev, err)
	}
	loc, err := netip.ParseAddr(*local)
	if err != nil || !loc.Is4() {
		return fail(stderr, "--local %q: not an IPv4 address", *local)
	}
	o := bench.TrafficOpts{Ifname: *dev, Queue: *queue, Duration: *duration, CPU: *cpu, Drain: *drain,
		Sink: true, Local: loc, NAPICPU: *napiCPU, GenNice: *genNice}
	if name == "gen" {
		o.Sink = *sink
		o.Generate = true
		if *form != "gre" && *form != "plain" {
			return fail(stderr, "--form %q: want gre or plain", *form)
		}
		if *size < bench.MinPlainSize || *size > bench.MaxSize || (*form == "gre" && *size < bench.MinGRESize) {
			return fail(stderr, "--size %d: want %d…%d for %s frames (room for the headers and the %d-byte stamp)",
				*size, map[bool]int{true: bench.MinGRESize, false: bench.MinPlainSize}[*form == "gre"], bench.MaxSize, *form, bench.StampLen)
		}
		if *flows < 1 || *flows > 1<<20 {
			return fail(stderr, "--flows %d: want 1…%d", *flows, 1<<20)
		}
		if *rate < 0 {
			return fail(stderr, "--rate %v: want ≥ 0", *rate)
		}
		if *duration == 0 && *count == 0 {
			return fail(stderr, "--duration 0 needs --count")
		}
		mac, err := net.ParseMAC(*dstMAC)
		if err != nil || len(mac) != 6 {
			return fail(stderr, "--dst-mac %q: not a MAC address", *dstMAC)
		}
		addrs := map[string]netip.Addr{}
		for flagName, s := range map[string]string{"router": *router, "node": *node, "vip": *vip} {
			a, err := netip.ParseAddr(s)
			if err != nil || !a.Is4() {
				return fail(stderr, "--%s %q: not an IPv4 address", flagName, s)
			}
			addrs[flagName] = a
		}
		if *port > 65535 {
			return fail(stderr, "--port %d: want 0…65535", *port)
		}
		t, err := bench.NewTemplate(bench.TemplateOpts{Size: *size, Plain: *form == "plain",
			SrcMAC: header.MAC(ifi.HardwareAddr), DstMAC: header.MAC(mac),
			Router: addrs["router"], Local: addrs["node"], VIP: addrs["vip"], Port: uint16(*port)})
		if err != nil {
			return fail(stderr, "%v", err)
		}
		o.Template, o.Flows, o.Rate, o.Count = t, *flows, *rate, *count
	}
	if !*quiet {
		o.Status = func(s bench.Status) { fmt.Fprintf(stderr, "\r%s  ", s.Line()) }
	}
	if *jsonOut {
		// For railbench compare: when the traffic starts.
		o.Started = func() { fmt.Fprintln(stderr, "railbench: started") }
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := bench.RunTraffic(ctx, o)
	if !*quiet {
		fmt.Fprintln(stderr)
	}
	if err != nil {
		return fail(stderr, "%v", err)
	}
	if *jsonOut {
		e := json.NewEncoder(stdout)
		e.SetIndent("", "  ")
		if err := e.Encode(rep); err != nil {
			return fail(stderr, "%v", err)
		}
		return 0
	}
	fmt.Fprint(stdout, rep.Table())
	return 0
}
