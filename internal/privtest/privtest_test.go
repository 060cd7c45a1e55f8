package privtest

import (
	"os"
	"testing"
)

// fakeT records what Require did instead of stopping the test.
type fakeT struct {
	testing.TB
	skipped, failed bool
}

func (f *fakeT) Helper()               {}
func (f *fakeT) Skip(...any)           { f.skipped = true; panic(f) }
func (f *fakeT) Fatalf(string, ...any) { f.failed = true; panic(f) }

func outcome(ci string, tools ...string) (skipped, failed bool) {
	old, had := os.LookupEnv("CI")
	os.Setenv("CI", ci)
	defer func() {
		if had {
			os.Setenv("CI", old)
		} else {
			os.Unsetenv("CI")
		}
	}()
	f := &fakeT{}
	func() {
		defer func() { recover() }()
		Require(f, tools...)
	}()
	return f.skipped, f.failed
}

func TestRequire(t *testing.T) {
	const missing = "rail-no-such-tool"
	if s, f := outcome("true", missing); s || !f {
		t.Errorf("CI=true, missing tool: skipped %v failed %v, want a failure", s, f)
	}
	if s, f := outcome("", missing); !s || f {
		t.Errorf("no CI, missing tool: skipped %v failed %v, want a skip", s, f)
	}
	if os.Geteuid() == 0 {
		if s, f := outcome("true"); s || f {
			t.Errorf("root, no tools: skipped %v failed %v, want neither", s, f)
		}
	}
}
