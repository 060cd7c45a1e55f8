package main

import (
	"fmt"
	"io"
	"os"
	"sort"
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

func fail(w io.Writer, format string, a ...any) int {
	fmt.Fprintf(w, "railbench: "+format+"\n", a...)
	return 1
}
