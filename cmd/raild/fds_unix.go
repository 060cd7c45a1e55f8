//go:build unix

package main

import "syscall"

// raiseNoFile lifts the soft RLIMIT_NOFILE to the hard limit (raising the
// hard limit needs CAP_SYS_RESOURCE, which raild does not ask for) and
// returns both.
func raiseNoFile() (soft, hard uint64) {
	var r syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r) != nil {
		return 0, 0
	}
	if r.Cur < r.Max {
		n := r
		n.Cur = n.Max
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &n) == nil {
			r = n
		}
	}
	return uint64(r.Cur), uint64(r.Max)
}
