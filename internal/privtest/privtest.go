// Package privtest decides what a test that needs root (network
// namespaces, XDP, AF_XDP, tc) does when it does not have it: on a
// developer's machine it skips, under CI=true it fails — privileged tests
// must run in CI, never quietly skip. The same holds for the tools such a
// test drives (ip, tcpdump, trafgen, nginx, …): .ci/run installs them.
package privtest

import (
	"os"
	"os/exec"
	"testing"
)

// Require skips or fails t unless it runs as root and finds every tool on
// PATH.
func Require(t testing.TB, tools ...string) {
	t.Helper()
	ci := os.Getenv("CI") == "true"
	need := func(why string) {
		t.Helper()
		if ci {
			t.Fatalf("%s, and CI=true: privileged tests must run (install what is missing in .ci/run)", why)
		}
		t.Skip(why)
	}
	if os.Geteuid() != 0 {
		need("needs root")
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			need("needs " + tool)
		}
	}
}
