package main

import (
	"math"
	"testing"

	"github.com/rail-lb/rail/control"
)

func TestMemorySettings(t *testing.T) {
	const mb = 1 << 20
	tests := []struct {
		name      string
		m         control.Memory
		inUse     int64
		gcPercent int
		limit     int64
		raised    bool
	}{
		{"gc", control.DefaultMemory, 40 * mb, 100, 512 * mb, false},
		{"gc percent", control.Memory{Policy: control.MemoryGC, GCPercent: 50, Limit: 1 << 30}, 40 * mb, 50, 1 << 30, false},
		{"limit", control.Memory{Policy: control.MemoryLimit, Limit: 256 * mb}, 40 * mb, -1, 256 * mb, false},
		{"off", control.Memory{Policy: control.MemoryOff, Limit: 256 * mb}, 40 * mb, -1, math.MaxInt64, false},
		// A 16-queue node with 1 Mi connection entries per core holds ~770 MiB.
		{"gc below the data path", control.DefaultMemory, 770 * mb, 100, 770*mb + limitHeadroom, true},
		{"limit below the data path", control.Memory{Policy: control.MemoryLimit, Limit: 256 * mb}, 250 * mb, -1, 250*mb + limitHeadroom, true},
		{"smallest limit, small node", control.Memory{Policy: control.MemoryLimit, Limit: control.MinMemoryLimit}, 12 * mb, -1, control.MinMemoryLimit, false},
		{"limit just too close", control.Memory{Policy: control.MemoryLimit, Limit: control.MinMemoryLimit}, 40 * mb, -1, 40*mb + limitHeadroom, true},
		{"off ignores the data path", control.Memory{Policy: control.MemoryOff, Limit: 256 * mb}, 770 * mb, -1, math.MaxInt64, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gc, limit, raised := memorySettings(tt.m, tt.inUse)
			if gc != tt.gcPercent || limit != tt.limit || raised != tt.raised {
				t.Errorf("memorySettings = %d, %d, %v; want %d, %d, %v", gc, limit, raised, tt.gcPercent, tt.limit, tt.raised)
			}
		})
	}
	if runtimeMemory() <= 0 {
		t.Errorf("runtimeMemory() = %d", runtimeMemory())
	}
}
