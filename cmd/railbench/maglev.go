package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rail-lb/rail/bench/hashing"
)

func init() {
	commands["maglev"] = command{
		summary: "compare Maglev, rendezvous and ring hashing (evenness, disruption, weights, build time); write CSV + PNG plots to --out",
		run:     runMaglev,
	}
}

func runMaglev(args []string, stdout, stderr io.Writer) int {
	c := hashing.DefaultConfig()
	fs := flag.NewFlagSet("railbench maglev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	ns := fs.String("n", joinInts(c.Ns), "evenness: comma-separated backend counts N")
	ms := fs.String("m", joinUints(c.Ms), "comma-separated prime table sizes M")
	fs.IntVar(&c.Trials, "trials", c.Trials, "independent trials (seed, seed+1, …); tables report their mean")
	fs.Uint64Var(&c.Seed, "seed", c.Seed, "hash seed of the first trial")
	fs.IntVar(&c.Flows, "flows", c.Flows, "random 5-tuples per trial for traffic evenness and weights")
	fs.IntVar(&c.DisruptN, "disrupt-n", c.DisruptN, "disruption: backends before the change")
	ks := fs.String("disrupt-k", joinInts(c.DisruptKs), "disruption: comma-separated numbers of backends removed / added")
	fs.IntVar(&c.DisruptFlows, "disrupt-flows", c.DisruptFlows, "disruption: random 5-tuples compared before and after")
	fs.IntVar(&c.WeightsN, "weights-n", c.WeightsN, "weights: backends with a random weight 1…--max-weight")
	maxW := fs.Uint("max-weight", uint(c.MaxWeight), "weights: largest weight")
	fs.IntVar(&c.Drained, "drained", c.Drained, "weights: extra backends with weight 0")
	fs.IntVar(&c.Vnodes, "vnodes", c.Vnodes, "ring: virtual nodes per backend (of mean weight)")
	fs.IntVar(&c.Workers, "workers", 0, "goroutines (0 = GOMAXPROCS)")
	buildN := fs.String("build-n", "100,1000", "build time: comma-separated N (timed at every M)")
	repeats := fs.Int("build-repeats", 21, "build time: builds per (N, M); the median is reported")
	out := fs.String("out", "", "directory for the CSV files and PNG plots (created; empty = summary only)")
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	if fs.NArg() > 0 {
		return fail(stderr, "maglev: unexpected argument %q", fs.Arg(0))
	}
	var err error
	if c.Ns, err = parseInts(*ns); err != nil {
		return fail(stderr, "--n: %v", err)
	}
	if c.DisruptKs, err = parseInts(*ks); err != nil {
		return fail(stderr, "--disrupt-k: %v", err)
	}
	bns, err := parseInts(*buildN)
	if err != nil {
		return fail(stderr, "--build-n: %v", err)
	}
	mi, err := parseInts(*ms)
	if err != nil {
		return fail(stderr, "--m: %v", err)
	}
	c.Ms = nil
	for _, m := range mi {
		c.Ms = append(c.Ms, uint32(m))
	}
	c.MaxWeight = uint32(*maxW)
	if *repeats <= 0 {
		return fail(stderr, "--build-repeats must be positive, got %d", *repeats)
	}
	if err := c.Check(); err != nil {
		return fail(stderr, "maglev: %v", err)
	}

	// Build times first, while nothing else of ours runs.
	bt, err := hashing.BuildTimes(bns, c.Ms, *repeats, c.Seed)
	if err != nil {
		return fail(stderr, "maglev: %v", err)
	}
	t0 := time.Now()
	res, err := hashing.Run(c)
	if err != nil {
		return fail(stderr, "maglev: %v", err)
	}
	res.WriteSummary(stdout)
	fmt.Fprintf(stdout, "\nbuild time of maglev.New, median of %d builds (table bytes = 2·M)\n", *repeats)
	fmt.Fprintf(stdout, "%5s %8s %-9s %10s %10s %10s\n", "N", "M", "weights", "median", "min", "bytes")
	for _, b := range bt {
		w := "equal"
		if b.Weighted {
			w = "1…10"
		}
		fmt.Fprintf(stdout, "%5d %8d %-9s %10s %10s %10d\n", b.N, b.M, w, b.Median.Round(time.Microsecond), b.Min.Round(time.Microsecond), b.Bytes)
	}
	fmt.Fprintf(stdout, "\nevaluation took %s\n", time.Since(t0).Round(time.Millisecond))
	if *out == "" {
		return 0
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fail(stderr, "maglev: %v", err)
	}
	files, err := hashing.WriteAll(res, bt, *out)
	if err != nil {
		return fail(stderr, "maglev: %v", err)
	}
	for _, f := range files {
		fmt.Fprintf(stdout, "wrote %s\n", filepath.Join(*out, f))
	}
	return 0
}

func parseInts(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		v, err := strconv.Atoi(f)
		if err != nil || v <= 0 {
			return nil, fmt.Errorf("%q is not a positive integer", f)
		}
		out = append(out, v)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty list")
	}
	return out, nil
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.Itoa(x)
	}
	return strings.Join(s, ",")
}

func joinUints(v []uint32) string {
	s := make([]string, len(v))
	for i, x := range v {
		s[i] = strconv.FormatUint(uint64(x), 10)
	}
	return strings.Join(s, ",")
}
