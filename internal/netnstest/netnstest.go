// Package netnstest runs code inside a network namespace from a test: a
// socket, a BPF attach or a listener made there belongs to that
// namespace. The privileged tests of several packages share it.
package netnstest

import (
	"runtime"

	"github.com/vishvananda/netns"
)

// Do runs fn on an OS thread switched into the namespace called name (as
// `ip netns add` names it) and waits for it. The thread is never switched
// back: it ends with its goroutine, so nothing else ever runs on it.
func Do(name string, fn func()) error {
	h, err := netns.GetFromName(name)
	if err != nil {
		return err
	}
	defer h.Close()
	return DoHandle(h, fn)
}

// DoHandle is Do for a namespace handle.
func DoHandle(h netns.NsHandle, fn func()) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		if err := netns.Set(h); err != nil {
			errc <- err
			return
		}
		fn()
		errc <- nil
	}()
	return <-errc
}
