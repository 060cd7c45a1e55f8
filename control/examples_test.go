package control

import (
	"path/filepath"
	"testing"
)

// TestExamples: every file in examples/ loads without a problem, and the
// demos' configurations use a metrics port and an admin socket of their
// own, neither the defaults (a raild on the host) nor each other's.
func TestExamples(t *testing.T) {
	files, err := filepath.Glob("../examples/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	metrics := map[string]string{DefaultMetricsAddress: "the default"}
	sockets := map[string]string{DefaultAPISocket: "the default"}
	for _, f := range files {
		c, probs := Load(f)
		if c == nil || len(probs) != 0 {
			t.Errorf("%s: %v", f, probs)
			continue
		}
		base := filepath.Base(f)
		if base != "lab.yaml" && base != "dsr.yaml" {
			continue
		}
		if other, ok := metrics[c.MetricsAddress]; ok {
			t.Errorf("%s: metrics_address %s is %s's", base, c.MetricsAddress, other)
		}
		if other, ok := sockets[c.API.Socket]; ok {
			t.Errorf("%s: api.socket %s is %s's", base, c.API.Socket, other)
		}
		metrics[c.MetricsAddress], sockets[c.API.Socket] = base, base
	}
}
