package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/rail-lb/rail/bench"
)

func init() {
	commands["compare"] = command{
		summary: "run raild (with and without busy polling), an asavie/xdp baseline, an in-kernel XDP_TX forwarder and kernel IP forwarding one after another on the veth lab with the same traffic; write bench/results/NAME.{md,csv,png}",
		run:     runCompare,
	}
}

func runCompare(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("railbench compare", flag.ContinueOnError)
	fs.SetOutput(stderr)
	self, _ := os.Executable()
	name := fs.String("name", "veth-lab", "result name: writes DIR/NAME.md, NAME.csv, NAME.png")
	dir := fs.String("dir", "bench/results", "result directory")
	prefix := fs.String("prefix", "rb-", "lab namespace prefix (removed afterwards)")
	labSh := fs.String("lab", "tools/lab.sh", "the lab script")
	raild := fs.String("raild", "bin/raild", "raild binary")
	asavie := fs.String("asavie", "bin/asaviefwd", "asavie/xdp baseline binary (go build ./bench/asaviefwd)")
	genCPU := fs.Int("gen-cpu", 0, "CPU for the generator/sink and gen0's NAPI thread")
	fwdCPU := fs.Int("fwd-cpu", 1, "CPU for the forwarder under test and lb0's NAPI thread")
	genNAPI := fs.Int("gen-napi-cpu", -1, "run gen0's NAPI as a thread pinned to this CPU (-1: softirq where raised; a threaded gen0 NAPI stalled for whole runs on Linux 6.18)")
	duration := fs.Duration("duration", 2*time.Second, "length of each measurement")
	repeat := fs.Int("repeat", 3, "repeats of each measurement (median and spread are reported)")
	flows := fs.Int("flows", 1000, "inner flows")
	size := fs.Int("size", 128, "frame size in bytes (GRE form; the plain frames of the kernel row are 24 bytes shorter)")
	rows := fs.String("rows", "raild,raild-nobp,asavie/xdp,xdp_tx,kernel,loopback", "forwarders to measure, in order (raild: busy_poll: true, the default; raild-nobp: busy_poll: false; loopback: every frame bounced straight back, the lab's ceiling)")
	common := fs.Float64("common-rate", 20000, "offered pps at which every row's CPU per packet is also measured (0: skip)")
	raildArgs := fs.String("raild-args", "--idle-spins 64 --idle-wait 1ms", "extra arguments for raild run (space-separated)")
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	if os.Geteuid() != 0 {
		return fail(stderr, "compare needs root (network namespaces, XDP)")
	}
	if *repeat < 1 || *duration < time.Second {
		return fail(stderr, "--repeat must be ≥ 1 and --duration ≥ 1s")
	}
	for _, p := range []*string{raild, asavie, labSh} {
		if a, err := filepath.Abs(*p); err == nil {
			*p = a
		}
	}
	o := bench.CompareOpts{Prefix: *prefix, LabSh: *labSh, Railbench: self, Raild: *raild, Asavie: *asavie,
		GenCPU: *genCPU, FwdCPU: *fwdCPU, GenNAPICPU: *genNAPI, Duration: *duration, Repeat: *repeat, Flows: *flows, Size: *size,
		Rows: strings.Split(*rows, ","), RaildArgs: strings.Fields(*raildArgs), CommonRate: *common, Log: stderr}
	lab := &bench.Lab{Prefix: *prefix, LabSh: *labSh}
	defer lab.Down()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	c := &bench.Comparison{Name: *name, Machine: bench.Machine(), CommonRate: *common,
		Command: "railbench compare " + strings.Join(args, " "),
		Traffic: fmt.Sprintf("%d-byte GRE-in IPv4/TCP frames (plain %d-byte inner packets for the kernel row) over %d flows, %v per measurement, %d repeats; generator+sink on CPU %d (gen0 NAPI: %s), forwarder and lb0's NAPI thread on CPU %d; raild run %s",
			*size, *size-24, *flows, *duration, *repeat, *genCPU, napiWhere(*genNAPI), *fwdCPU, *raildArgs)}
	start := time.Now()
	for _, r := range o.Rows {
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(stderr, "== %s\n", r)
		c.Rows = append(c.Rows, bench.MeasureRow(ctx, o, lab, r))
	}
	if ctx.Err() != nil {
		return fail(stderr, "interrupted")
	}
	c.Notes = append(c.Notes, notes(c)...)
	c.Notes = append(c.Notes, fmt.Sprintf("compare took %v", time.Since(start).Round(time.Second)))

	if err := os.MkdirAll(*dir, 0o755); err != nil {
		return fail(stderr, "%v", err)
	}
	var md, csv, png bytes.Buffer
	c.Markdown(&md)
	if err := c.CSV(&csv); err != nil {
		return fail(stderr, "%v", err)
	}
	if err := c.PNG(&png); err != nil {
		return fail(stderr, "%v", err)
	}
	for ext, b := range map[string][]byte{"md": md.Bytes(), "csv": csv.Bytes(), "png": png.Bytes()} {
		if err := os.WriteFile(filepath.Join(*dir, *name+"."+ext), b, 0o644); err != nil {
			return fail(stderr, "%v", err)
		}
	}
	fmt.Fprintln(stdout)
	c.Text(stdout)
	fmt.Fprintf(stdout, "\nwrote %s.{md,csv,png}\n", filepath.Join(*dir, *name))
	for _, r := range c.Rows {
		if r.Err != "" || len(r.MaxPPS) == 0 {
			return 1
		}
	}
	return 0
}

// notes checks the targets against the medians and says which
// rows were noisy.
func notes(c *bench.Comparison) []string {
	get := func(n string) *bench.Row {
		for i := range c.Rows {
			if c.Rows[i].Name == n && c.Rows[i].Err == "" && len(c.Rows[i].MaxPPS) > 0 {
				return &c.Rows[i]
			}
		}
		return nil
	}
	var out []string
	r, a, x := get("raild"), get("asavie/xdp"), get("xdp_tx")
	// check reports a target; one whose rows were NOISY in this run is
	// said to be so: a ratio of two noisy medians can cross a threshold
	// either way from one run to the next.
	check := func(ok bool, s string, rows ...*bench.Row) {
		v := "MET"
		if !ok {
			v = "NOT MET"
		}
		var noisy []string
		for _, row := range rows {
			if len(row.Noisy()) > 0 {
				noisy = append(noisy, row.Name)
			}
		}
		if len(noisy) > 0 {
			v += " in this run, not firm: " + strings.Join(noisy, " and ") + " NOISY"
		}
		out = append(out, fmt.Sprintf("target %s: %s", s, v))
	}
	if r != nil && a != nil {
		q := r.NsPkt.Median() / a.NsPkt.Median()
		check(q <= 0.7, fmt.Sprintf("raild CPU ns/pkt ≤ 0.7× asavie/xdp (%.2f×)", q), r, a)
		q = r.MaxPPS.Median() / a.MaxPPS.Median()
		check(q >= 1.2, fmt.Sprintf("raild max pps ≥ 1.2× asavie/xdp (%.2f×)", q), r, a)
	}
	if r != nil && x != nil {
		q := r.NsPkt.Median() / x.NsPkt.Median()
		check(q <= 1.5, fmt.Sprintf("raild CPU ns/pkt ≤ 1.5× XDP_TX (%.2f×)", q), r, x)
	}
	if r != nil && len(r.UserNs) > 0 {
		q := r.UserNs.Median() / r.NsPkt.Median()
		check(q < 0.1, fmt.Sprintf("raild user-space ns/pkt < 10 %% of its total (%.1f %%)", 100*q), r)
	}
	if n, a := get("raild-nobp"), a; n != nil && a != nil {
		out = append(out, fmt.Sprintf("raild-nobp (the same path as raild here) vs asavie/xdp: CPU ns/pkt %.2f×, max pps %.2f×",
			n.NsPkt.Median()/a.NsPkt.Median(), n.MaxPPS.Median()/a.MaxPPS.Median()))
	}
	if r != nil {
		if strings.Contains(r.BusyPoll, "unavailable") || r.BusyPolledRx == 0 {
			out = append(out, fmt.Sprintf("busy polling did not take effect in the raild row (%.1f %% of its frames received in a busy poll): "+
				"its sockets fell back to need_wakeup kicks, so raild and raild-nobp run the same path; see raild's line above and bench/README.md", 100*r.BusyPolledRx))
		} else {
			out = append(out, fmt.Sprintf("busy polling took effect in the raild row: %.1f %% of its frames were received in a busy poll", 100*r.BusyPolledRx))
		}
	}
	for _, row := range c.Rows {
		if n := row.Noisy(); len(n) > 0 {
			out = append(out, fmt.Sprintf("%s: the machine was too noisy for a firm number (%s across %d repeats)", row.Name, strings.Join(n, ", "), len(row.MaxPPS)))
		}
	}
	return out
}

func napiWhere(cpu int) string {
	if cpu < 0 {
		return "softirq where raised"
	}
	return fmt.Sprintf("thread on CPU %d", cpu)
}
