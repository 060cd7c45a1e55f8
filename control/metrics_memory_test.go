package control

import (
	"runtime/debug"
	"strings"
	"testing"
)

// TestMetricsGCPercent: rail_gc_percent follows GOGC, -1 when the
// collector is off.
func TestMetricsGCPercent(t *testing.T) {
	old := debug.SetGCPercent(100)
	defer debug.SetGCPercent(old)
	for _, tt := range []struct {
		set  int
		want string
	}{{100, "rail_gc_percent 100\n"}, {-1, "rail_gc_percent -1\n"}, {250, "rail_gc_percent 250\n"}} {
		debug.SetGCPercent(tt.set)
		var b strings.Builder
		(&Metrics{}).WritePrometheus(&b)
		if !strings.Contains(b.String(), tt.want) || !strings.Contains(b.String(), "rail_gc_cycles_total ") {
			t.Errorf("GOGC %d: no %q in\n%s", tt.set, tt.want, b.String())
		}
	}
}
