package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/rail-lb/rail/internal/flaghelp"
)

// command is one railbench subcommand; each lives in its own file and
// registers itself in commands.
type command struct {
	summary string
	run     func(args []string, stdout, stderr io.Writer) int
}

var commands = map[string]command{}

func usage() string {
	var names []string
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	s := "usage: railbench <command> [flags]\n\ncommands:\n"
	for _, n := range names {
		s += fmt.Sprintf("  %-10s %s\n", n, commands[n].summary)
	}
	return s + "\nrailbench <command> --help shows a command's flags.\n"
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
	case "-h", "--help", "help":
		fmt.Fprint(stdout, usage())
		return 0
	}
	c, ok := commands[args[0]]
	if !ok {
		fmt.Fprintf(stderr, "railbench: unknown command %q\n%s", args[0], usage())
		return 2
	}
	return c.run(args[1:], stdout, stderr)
}

// parseFlags parses a subcommand's flags. When ok is false the command
// stops with code: 0 after --help (the flags listed on stdout as they are
// typed, --name VALUE), 2 after a usage error (one line on stderr that
// starts with the command).
func parseFlags(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (code int, ok bool) {
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		flaghelp.Print(stdout, fs.Name()+" [flags]", fs)
		return 0, false
	case err != nil:
		fmt.Fprintf(stderr, "%s: %v (%s --help lists the flags)\n", fs.Name(), err, fs.Name())
		return 2, false
	}
	return 0, true
}

func fail(w io.Writer, format string, a ...any) int {
	fmt.Fprintf(w, "railbench: "+format+"\n", a...)
	return 1
}
