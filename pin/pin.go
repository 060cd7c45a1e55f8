package pin

import (
	"errors"
	"runtime"
)

// ErrGoexit is what Go reports when fn ends by runtime.Goexit (for
// example t.FailNow in a test) instead of returning.
var ErrGoexit = errors.New("pinned function exited without returning (runtime.Goexit)")

// Go starts fn on a goroutine of its own that is locked to its OS thread
// (runtime.LockOSThread) and that thread pinned to cpu. The returned
// channel receives exactly one value and is then closed: the pinning error
// — in which case fn never runs — or nil once fn has returned.
//
// The goroutine never unlocks its thread, so when fn returns the runtime
// destroys the pinned thread instead of handing it, still pinned, to other
// goroutines. Threads that the runtime starts while a locked goroutine
// runs are created by its template thread, so the pin does not leak into
// them either.
func Go(cpu int, fn func()) <-chan error {
	done := make(chan error, 1)
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: see above
		if err := pinThread(cpu); err != nil {
			done <- err
			return
		}
		returned := false
		defer func() {
			if !returned {
				done <- ErrGoexit
			}
		}()
		fn()
		returned = true
		done <- nil
	}()
	return done
}
