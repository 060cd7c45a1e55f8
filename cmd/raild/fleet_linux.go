package main

import (
	"context"
	"log/slog"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rail-lb/rail/control"
)

// stallAfter is how long a worker may make no progress while its rx ring
// holds frames before the node stops announcing its VIPs.
const stallAfter = time.Second

// watchWorkers tells the speaker whether every worker forwards: a worker
// that has completed no batch for stallAfter while frames wait on its rx
// ring is stalled, and the node withdraws everything until it moves again
// (never announce what you cannot forward). It returns when stop is set.
func watchWorkers(n *node, sp *control.Speaker, stop *atomic.Bool, log *slog.Logger) {
	type seen struct {
		batches uint64
		since   time.Time
	}
	last := make([]seen, len(n.queues))
	stalled := false
	for !stop.Load() {
		now := time.Now()
		bad := -1
		for i, q := range n.queues {
			b := q.loop.W.Stats().Batches.Load()
			if b != last[i].batches || q.sock.Frames().Rx == 0 {
				last[i] = seen{b, now}
				continue
			}
			if now.Sub(last[i].since) >= stallAfter {
				bad = q.queue
			}
		}
		switch {
		case bad >= 0 && !stalled:
			stalled = true
			log.Error("worker stalled: frames wait on its rx ring and it makes no progress; withdrawing every route", "queue", bad)
			sp.SetForwarding(false)
		case bad < 0 && stalled:
			stalled = false
			log.Info("workers forward again: announcing")
			sp.SetForwarding(true)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// drain is the graceful stop of a node with BGP: GRACEFUL_SHUTDOWN for
// drain_time while forwarding, withdraw, then keep forwarding a little
// longer (settle) while the router moves the last flows. Another SIGINT or
// SIGTERM cuts it short.
func drain(sp *control.Speaker, b *control.BGP, sig <-chan os.Signal, log *slog.Logger) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan struct{})
	go func() {
		sp.Drain(ctx)
		settle := min(b.DrainTime, 2*time.Second)
		select {
		case <-time.After(settle):
		case <-ctx.Done():
		}
		close(done)
	}()
	for {
		select {
		case <-done:
			return
		case s := <-sig:
			if s == syscall.SIGHUP {
				continue
			}
			log.Warn("second signal: stopping without waiting for the drain", "signal", s.String())
			cancel()
			<-done
			return
		}
	}
}
