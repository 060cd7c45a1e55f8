package pipeline

import (
	"net/netip"
	"testing"

	"github.com/rail-lb/rail/internal/privtest"
	"github.com/rail-lb/rail/rings"
)

// The XDP steering program and Process must agree on every frame: the
// program redirects exactly what Process does not pass, and gives the same
// reason for what it passes. One source of truth: docs/verdicts.md.
func TestSteerAgreesWithProcess(t *testing.T) {
	privtest.Require(t)
	p, err := rings.LoadSteer()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := testConfig()
	if err := p.SetLocals([]netip.Addr{c.Local, c.Local6}); err != nil {
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
		got, err := p.Classify(tc.frame)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		want := rings.Ours
		if r.Verdict == Pass {
			want = rings.PassReason(r.Reason)
		}
		if got != want {
			t.Errorf("%s: XDP says %v but Process says %v/%v", tc.name, got, r.Verdict, r.Reason)
		}
	}
}

// The pass codes of the steering program are pipeline.Reason values.
func TestPassReasonNumbers(t *testing.T) {
	for _, c := range []struct {
		x rings.PassReason
		r Reason
	}{{rings.PassNotIP, NotIP}, {rings.PassNotOurs, NotOurs}, {rings.PassNoService, NoService}} {
		if uint8(c.x) != uint8(c.r) || c.x.String() != c.r.String() {
			t.Errorf("rings %v (%d) vs pipeline %v (%d)", c.x, c.x, c.r, c.r)
		}
	}
}
