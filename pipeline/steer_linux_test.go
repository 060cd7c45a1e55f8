package pipeline

import (
	"net/netip"
	"os"
	"testing"

	"github.com/rail-lb/rail/rings"
)

// privileged skips a test that needs root, except in CI, where it fails:
// privileged tests must run there.
func privileged(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") == "true" {
			t.Fatal("this test needs root and CI=true: it must run")
		}
		t.Skip("needs root (CAP_BPF, CAP_NET_ADMIN)")
	}
}

// The XDP steering program and Process must agree on every frame: the
// program redirects exactly what Process does not pass. One source of
// truth: docs/verdicts.md.
func TestSteerAgreesWithProcess(t *testing.T) {
	privileged(t)
	p, err := rings.LoadSteer()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := testConfig()
	if err := p.SetLocals([]netip.Addr{c.Local}); err != nil {
		t.Fatal(err)
	}
	var keys []rings.ServiceKey
	for _, s := range c.Services {
		keys = append(keys, rings.ServiceKey{VIP: s.VIP, Port: s.Port, Proto: s.Proto})
	}
	if err := p.SetServices(keys); err != nil {
		t.Fatal(err)
	}
	for _, tc := range verdictCases(t) {
		w := newTestWorker(t, c)
		r := w.Process(packetFor(tc.frame))
		redirect, err := p.Run(tc.frame)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if redirect != (r.Verdict != Pass) {
			t.Errorf("%s: XDP redirect=%v but Process says %v/%v", tc.name, redirect, r.Verdict, r.Reason)
		}
	}
}
