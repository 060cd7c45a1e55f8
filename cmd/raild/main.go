package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/rail-lb/rail/control"
	"github.com/rail-lb/rail/pipeline"
	"github.com/rail-lb/rail/pipeline/replay"
)

// command is one raild subcommand; each registers itself in commands from
// its own file.
type command struct {
	usage string // the synopsis line(s) after the name
	run   func(args []string, stdout, stderr io.Writer) int
}

var commands = map[string]command{
	"run": {"--config FILE\n        attach to the interface and forward until SIGINT/SIGTERM",
		func(args []string, _, stderr io.Writer) int { return cmdRun(args, stderr) }},
	"replay": {"--config FILE --in IN.pcap --out OUT.pcap [--verdicts V.csv]\n        run the production pipeline offline over a pcap", cmdReplay},
	"check":  {"--config FILE\n        validate the configuration and print every problem", cmdCheck},
}

func usage() string {
	var names []string
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	s := "usage: raild <command> [flags]\n\ncommands:\n"
	for _, n := range names {
		s += fmt.Sprintf("  %s %s\n", n, commands[n].usage)
	}
	return s
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, usage())
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "raild: unknown command %q\n%s", args[0], usage())
		return 2
	}
	return c.run(args[1:], stdout, stderr)
}

// flags parses a subcommand's flags; positional arguments are an error.
func flags(name string, args []string, stderr io.Writer, def func(*flag.FlagSet)) bool {
	fs := flag.NewFlagSet("raild "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	// A bad flag is one line naming it (the flag package prints it); the
	// flags are listed only when asked for with -h.
	fs.Usage = func() {}
	def(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintf(stderr, "usage: raild %s [flags]\n", name)
			fs.PrintDefaults()
		}
		return false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "raild %s: unexpected argument %q\n", name, fs.Arg(0))
		return false
	}
	return true
}

// loadConfig loads and reports the configuration; nil means it was invalid
// (and every problem was printed).
func loadConfig(file string, stderr io.Writer) *control.Config {
	if file == "" {
		fmt.Fprintln(stderr, "raild: --config FILE is required")
		return nil
	}
	cfg, probs := control.Load(file)
	for _, p := range probs {
		fmt.Fprintln(stderr, p)
	}
	return cfg
}

// snapshot builds the data path's view of cfg.
func snapshot(cfg *control.Config) (*pipeline.Snapshot, error) {
	pc, err := cfg.PipelineConfig()
	if err != nil {
		return nil, err
	}
	return pipeline.NewSnapshot(pc)
}

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	var file string
	if !flags("check", args, stderr, func(fs *flag.FlagSet) { fs.StringVar(&file, "config", "", "configuration file") }) {
		return 2
	}
	cfg := loadConfig(file, stderr)
	if cfg == nil {
		return 1
	}
	if _, err := snapshot(cfg); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", file, err)
		return 1
	}
	n := 0
	for _, s := range cfg.Services {
		n += len(s.Backends)
	}
	fmt.Fprintf(stdout, "%s: ok: %d services, %d backends\n", file, len(cfg.Services), n)
	return 0
}

func cmdReplay(args []string, stdout, stderr io.Writer) int {
	var file, in, out, verdicts string
	if !flags("replay", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&file, "config", "", "configuration file")
		fs.StringVar(&in, "in", "", "input pcap (Ethernet)")
		fs.StringVar(&out, "out", "", "output pcap: the transmitted frames in input order")
		fs.StringVar(&verdicts, "verdicts", "", "optional CSV: one row per input packet")
	}) {
		return 2
	}
	if in == "" || out == "" {
		fmt.Fprintln(stderr, "raild replay: --in and --out are required")
		return 2
	}
	cfg := loadConfig(file, stderr)
	if cfg == nil {
		return 1
	}
	snap, err := snapshot(cfg)
	if err != nil {
		fmt.Fprintf(stderr, "raild replay: %v\n", err)
		return 1
	}
	ct, err := pipeline.NewConntrack(cfg.Conntrack.EntriesPerCore, cfg.Conntrack.TCPTimeout, cfg.Conntrack.UDPTimeout)
	if err != nil {
		fmt.Fprintf(stderr, "raild replay: %v\n", err)
		return 1
	}
	inf, err := os.Open(in)
	if err != nil {
		fmt.Fprintf(stderr, "raild replay: %v\n", err)
		return 1
	}
	defer inf.Close()
	if is, err := inf.Stat(); err == nil {
		if ostat, err := os.Stat(out); err == nil && os.SameFile(is, ostat) {
			fmt.Fprintf(stderr, "raild replay: --out %s is the input file\n", out)
			return 1
		}
	}
	outf, err := os.Create(out)
	if err != nil {
		fmt.Fprintf(stderr, "raild replay: %v\n", err)
		return 1
	}
	var vw io.Writer
	var vf *os.File
	if verdicts != "" {
		if vf, err = os.Create(verdicts); err != nil {
			fmt.Fprintf(stderr, "raild replay: %v\n", err)
			return 1
		}
		vw = vf
	}
	sum, err := replay.Run(pipeline.NewWorker(ct), snap, inf, outf, vw)
	if cerr := outf.Close(); err == nil {
		err = cerr
	}
	if vf != nil {
		if cerr := vf.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		os.Remove(out) // no half-written output
		if errors.Is(err, replay.ErrInput) {
			fmt.Fprintf(stderr, "raild replay: %s: %v\n", in, err)
		} else {
			fmt.Fprintf(stderr, "raild replay: %v\n", err)
		}
		return 1
	}
	fmt.Fprintf(stdout, "replayed %d packets: %s\n", sum.Packets, summarize(sum.Reasons[:]))
	return 0
}

// summarize renders per-reason counts as "tx 10, pass not_ip 2, drop malformed 1".
func summarize[T ~int | ~uint64](counts []T) string {
	s := fmt.Sprintf("tx %d", counts[pipeline.ReasonNone])
	for r := pipeline.Reason(1); r < pipeline.NumReasons; r++ {
		if counts[r] != 0 {
			s += fmt.Sprintf(", %v %v %d", r.Verdict(), r, counts[r])
		}
	}
	return s
}
