package main

import (
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// TestDSRTakeover: a paced download from a real nginx through the VIP
// (DSR: the replies go straight to the client) while a new raild takes
// over from the running one. The download must end byte for byte; the
// longest stall in its progress is reported, and the same for a plain
// restart in its place (raild stopped, then started: what an upgrade was
// without the hand-over).
func TestDSRTakeover(t *testing.T) {
	l := dsrLabUp(t)
	upgrade := func(what string, step func()) {
		s := l.startStream(t)
		who := s.backend(t)
		var stall atomic.Int64 // the longest time the body did not grow, in ns
		done := make(chan struct{})
		go func() {
			last, at := s.received(), time.Now()
			for {
				select {
				case <-done:
					return
				case <-time.After(5 * time.Millisecond):
				}
				if n := s.received(); n != last {
					if d := time.Since(at); int64(d) > stall.Load() {
						stall.Store(int64(d))
					}
					last, at = n, time.Now()
				}
			}
		}()
		// Halfway through the download.
		waitFor(t, 10*time.Second, "a third of the download", func() bool { return s.received() > int64(s.wantBytes/3) })
		at := s.received()
		step()
		took := s.finish(t)
		close(done)
		t.Logf("%s at byte %d of %d, from %s: the download ended byte for byte after %v; its longest stall %v",
			what, at, s.wantBytes, who, took.Round(time.Millisecond), time.Duration(stall.Load()).Round(time.Millisecond))
	}

	upgrade("takeover", func() {
		old := l.d
		l.d = startRaild(l.top, l.cfg, "--takeover")
		if code := old.waitExit(t, 10*time.Second); code != 0 {
			t.Fatalf("the old raild exited %d after the takeover:\n%s", code, old.log)
		}
	})
	upgrade("a restart instead", func() {
		if code := l.d.stop(t, syscall.SIGTERM); code != 0 {
			t.Fatalf("raild exited %d", code)
		}
		l.d = startRaild(l.top, l.cfg)
	})
}
