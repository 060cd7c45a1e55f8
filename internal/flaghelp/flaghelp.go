// Package flaghelp prints a command's flags the way they are typed,
// --name VALUE, for the commands that parse their flags with package
// flag (raild, railbench); railctl's come from cobra in the same style.
package flaghelp

import (
	"flag"
	"fmt"
	"io"
)

// Print writes "usage: " and usage, then every flag of fs as
// "--name VALUE" with its text and a default that is not a zero value.
func Print(w io.Writer, usage string, fs *flag.FlagSet) {
	fmt.Fprintf(w, "usage: %s\n\nflags:\n", usage)
	fs.VisitAll(func(f *flag.Flag) {
		arg, text := flag.UnquoteUsage(f)
		if arg != "" {
			arg = " " + placeholder(f.Name, arg)
		}
		switch f.DefValue {
		case "", "0", "false", "0s", "[]":
		default:
			text += fmt.Sprintf(" (default %s)", f.DefValue)
		}
		fmt.Fprintf(w, "  --%s%s\n        %s\n", f.Name, arg, text)
	})
}

// placeholder names a flag's value: the word a usage string marks with
// backquotes, else a short name for its type.
func placeholder(flagName, arg string) string {
	switch {
	case flagName == "config":
		return "FILE"
	case arg == "int" || arg == "uint":
		return "N"
	case arg == "duration":
		return "D"
	case arg == "string" || arg == "value":
		return "VALUE"
	}
	return arg
}
