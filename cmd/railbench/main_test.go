package main

import (
	"strings"
	"testing"
)

// TestExitCodes: --help exits 0 with the flags on stdout (as --name),
// usage errors exit 2 with one line on stderr that names the command.
func TestExitCodes(t *testing.T) {
	call := func(args ...string) (int, string, string) {
		var out, errs strings.Builder
		code := run(args, &out, &errs)
		return code, out.String(), errs.String()
	}
	if code, out, _ := call("--help"); code != 0 || !strings.Contains(out, "commands:") {
		t.Errorf("railbench --help: exit %d\n%s", code, out)
	}
	if code, _, _ := call(); code != 2 {
		t.Errorf("railbench without a command: exit %d, want 2", code)
	}
	if code, _, errs := call("bogus"); code != 2 || !strings.HasPrefix(errs, "railbench: unknown command") {
		t.Errorf("railbench bogus: exit %d, %q", code, errs)
	}
	if len(commands) < 4 {
		t.Fatalf("only %d commands registered", len(commands))
	}
	for name := range commands {
		if code, out, errs := call(name, "--help"); code != 0 || !strings.Contains(out, "usage: railbench "+name) ||
			!strings.Contains(out, "\n  --") || errs != "" {
			t.Errorf("railbench %s --help: exit %d\nstdout: %s\nstderr: %s", name, code, out, errs)
		}
		code, out, errs := call(name, "--no-such-flag")
		if code != 2 || out != "" || !strings.HasPrefix(errs, "railbench "+name+": flag provided but not defined: -no-such-flag") ||
			strings.Count(errs, "\n") != 1 {
			t.Errorf("railbench %s --no-such-flag: exit %d\nstdout: %s\nstderr: %s", name, code, out, errs)
		}
	}
}
