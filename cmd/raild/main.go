package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"github.com/rail-lb/rail/control"
	"github.com/rail-lb/rail/internal/flaghelp"
	"github.com/rail-lb/rail/pipeline"
	"github.com/rail-lb/rail/pipeline/replay"
)

// command is one raild subcommand. Each is registered in commands by an
// init function: run, replay and check below (run's body is in
// run_linux.go), plan in plan.go, decap in decap.go.
type command struct {
	// usage is the synopsis after the name, then an indented line saying
	// what the command does.
	usage string
	run   func(args []string, stdout, stderr io.Writer) int
}

var commands = map[string]command{}

func init() {
	commands["run"] = command{"--config FILE [--idle-spins N] [--idle-wait D] [--takeover]\n" +
		"        attach to the interface and forward until SIGINT/SIGTERM (--takeover: from the running raild, losing nothing)",
		func(args []string, _, stderr io.Writer) int { return cmdRun(args, stderr) }}
	commands["replay"] = command{"--config FILE --in IN.pcap --out OUT.pcap [--verdicts V.csv]\n" +
		"        run the production pipeline offline over a pcap", cmdReplay}
	commands["check"] = command{"--config FILE\n" +
		"        validate the configuration, print every problem and say whether raild run can use it", cmdCheck}
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
	return s + "\nraild <command> --help lists a command's flags (docs/reference.md has them all).\n" +
		"Exit status: 0 done, 1 failed, 2 the command line is wrong.\n"
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
	case "-h", "-help", "--help":
		fmt.Fprint(stdout, usage())
		return 0
	case "help":
		if len(args) == 1 {
			fmt.Fprint(stdout, usage())
			return 0
		}
		if len(args) > 2 {
			fmt.Fprintf(stderr, "raild help: one command at a time, got %s\n", strings.Join(args[1:], " "))
			return 2
		}
		args = []string{args[1], "--help"} // raild help check = raild check --help
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "raild: unknown command %q\n%s", args[0], usage())
		return 2
	}
	out := &cmdOutput{Writer: stderr, stdout: stdout}
	code := c.run(args[1:], stdout, out)
	if out.help {
		return 0
	}
	return code
}

// cmdOutput is the stderr run hands a command. It also carries stdout, so
// that flags, which sees only stderr, can print --help there and tell run
// that help was asked for: run then exits 0 whatever the command returns
// (every command returns 2 when flags says stop).
type cmdOutput struct {
	io.Writer // stderr
	stdout    io.Writer
	help      bool
}

// flags parses a subcommand's flags. It returns false when the command must
// stop: the command line is wrong (one line on stderr that starts with the
// command's name; the command exits 2), or --help was asked for (the flags
// are listed on stdout and raild exits 0). Positional arguments are an
// error, and so is an empty --config: every command that has the flag
// needs the file.
func flags(name string, args []string, stderr io.Writer, def func(*flag.FlagSet)) bool {
	fs := flag.NewFlagSet("raild "+name, flag.ContinueOnError)
	// The flag package would print its error line, unprefixed, and then the
	// usage to the FlagSet's output. Parse returns that same error, which
	// is printed below with the command's name in front; the flags are
	// listed only for --help.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	def(fs)
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		w := stderr
		if o, ok := stderr.(*cmdOutput); ok {
			o.help, w = true, o.stdout
		}
		printHelp(w, name, fs)
		return false
	case err != nil:
		fmt.Fprintf(stderr, "raild %s: %v\n", name, err)
		return false
	case fs.NArg() > 0:
		fmt.Fprintf(stderr, "raild %s: unexpected argument %q (raild %s takes only flags)\n", name, fs.Arg(0), name)
		return false
	}
	if f := fs.Lookup("config"); f != nil && f.Value.String() == "" {
		fmt.Fprintf(stderr, "raild %s: --config FILE is required\n", name)
		return false
	}
	return true
}

// printHelp lists a command's flags as they are typed: --name VALUE.
func printHelp(w io.Writer, name string, fs *flag.FlagSet) {
	flaghelp.Print(w, "raild "+name+" "+commands[name].usage, fs)
}

// count writes n and a noun, plural unless n is 1: "1 service", "2 backends".
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// loadConfig loads and reports the configuration; nil means it was invalid
// (and every problem was printed, each with the file's name and line).
func loadConfig(file string, stderr io.Writer) *control.Config {
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
	if !flags("check", args, stderr, func(fs *flag.FlagSet) { fs.StringVar(&file, "config", "", "the configuration `FILE` to check") }) {
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
	what := count(len(cfg.Services), "service") + ", " + count(n, "backend")
	if len(cfg.RequireInterface()) > 0 {
		fmt.Fprintf(stdout, "%s: ok for replay and check: %s; raild run also needs interface: (e.g. interface: eth1)\n", file, what)
		return 0
	}
	fmt.Fprintf(stdout, "%s: ok: %s\n", file, what)
	return 0
}

func cmdReplay(args []string, stdout, stderr io.Writer) int {
	var file, in, out, verdicts string
	if !flags("replay", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&file, "config", "", "the configuration `FILE` (interface not needed)")
		fs.StringVar(&in, "in", "", "input pcap of Ethernet frames (`IN.pcap`, required)")
		fs.StringVar(&out, "out", "", "output pcap: the transmitted frames in input order (`OUT.pcap`, required)")
		fs.StringVar(&verdicts, "verdicts", "", "optional CSV, one row per input packet: index,verdict,reason,service,backend,second_hop (`V.csv`)")
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
	fmt.Fprintf(stdout, "replayed %s: %s\n", count(sum.Packets, "packet"), summarize(sum.Reasons[:]))
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
