package main

import (
	"fmt"
	"log/slog"
	"math"
	"runtime/debug"
	rtmetrics "runtime/metrics"

	"github.com/rail-lb/rail/control"
)

// limitHeadroom is how far above the memory the data path already holds
// the soft limit must be: a limit at or below the connection tables (which
// live as long as raild) would keep the collector running all the time.
const limitHeadroom = 32 << 20

// memorySettings is what applyMemory sets for m when the Go runtime
// already holds inUse bytes: GOGC (-1: off) and the soft limit
// (math.MaxInt64: none). raised says the configured limit was too close to
// inUse and was raised to inUse + limitHeadroom.
func memorySettings(m control.Memory, inUse int64) (gcPercent int, limit int64, raised bool) {
	gcPercent, limit = -1, m.Limit
	switch m.Policy {
	case control.MemoryGC:
		gcPercent = m.GCPercent
	case control.MemoryOff:
		return -1, math.MaxInt64, false
	}
	if limit < inUse+limitHeadroom {
		return gcPercent, inUse + limitHeadroom, true
	}
	return gcPercent, limit, false
}

// runtimeMemory is the memory the soft limit counts: everything the Go
// runtime has mapped minus what it has returned to the kernel.
func runtimeMemory() int64 {
	s := []rtmetrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	rtmetrics.Read(s)
	if s[0].Value.Kind() != rtmetrics.KindUint64 || s[1].Value.Kind() != rtmetrics.KindUint64 {
		return 0
	}
	return int64(s[0].Value.Uint64() - s[1].Value.Uint64())
}

// applyMemory puts cfg's memory policy in force. raild calls it once the
// data path is allocated (UMEM, rings, connection tables): from then on
// only the control plane allocates (docs/DEPLOY.md, Memory).
func applyMemory(m control.Memory, log *slog.Logger) {
	inUse := runtimeMemory()
	gcPercent, limit, raised := memorySettings(m, inUse)
	debug.SetGCPercent(gcPercent)
	debug.SetMemoryLimit(limit)
	if raised {
		log.Warn("memory.limit is below what the data path holds plus headroom: raised",
			"limit", control.FormatSize(m.Limit), "in_use", mib(inUse), "raised_to", mib(limit))
	}
	args := []any{"policy", string(m.Policy), "in_use", mib(inUse)}
	if m.Policy == control.MemoryGC {
		args = append(args, "gc_percent", gcPercent)
	}
	if m.Policy != control.MemoryOff {
		args = append(args, "limit", mib(limit))
	}
	log.Info("memory", args...)
}

// mib formats a byte count for the log.
func mib(b int64) string { return fmt.Sprintf("%.1fMiB", float64(b)/(1<<20)) }
