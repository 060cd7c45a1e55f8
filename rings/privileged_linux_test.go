package rings

import (
	"os"
	"testing"
)

// requirePrivileged skips a test that needs root only on a developer's
// machine; under CI (CI set) it fails instead, so privileged tests always run there.
func requirePrivileged(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("needs root (CI=%q: privileged tests must run, not skip)", os.Getenv("CI"))
	}
	t.Skip("needs root (set CI=true to make this a failure)")
}
