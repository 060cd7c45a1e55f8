package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCaptureBadFilter: a filter raild refuses is one line on stderr,
// exit status 1, and no file.
func TestCaptureBadFilter(t *testing.T) {
	sock, _ := daemon(t)
	file := filepath.Join(t.TempDir(), "c.pcapng")
	for _, args := range [][]string{
		{"capture", "-w", file, "--verdict", "maybe"},
		{"capture", "-w", file, "--service", "nope"},
		{"capture", "-w", file, "--dport", "http"},
	} {
		code, _, errOut := railctl(t, sock, args...)
		if code != 1 || strings.Count(errOut, "\n") != 1 || !strings.HasPrefix(errOut, "railctl: ") {
			t.Errorf("%v: exit %d, %q", args, code, errOut)
		}
		if _, err := os.Stat(file); err == nil {
			t.Errorf("%v created %s", args, file)
		}
	}
	if code, _, errOut := railctl(t, sock, "capture", "--count", "1"); code != 1 || !strings.Contains(errOut, "-w FILE is required") {
		t.Errorf("without -w: exit %d, %q", code, errOut)
	}
}
