package rings

// For the external tests (memory_test.go), which drive a Socket through
// package ringstest and so cannot be in package rings.

// Counters returns the socket's own counters without the kernel's
// statistics (a memory socket has none).
func (s *Socket) Counters() Stats {
	var st Stats
	s.counters(&st)
	return st
}

// SetBusy makes the socket behave as if preferred busy polling were on.
func (s *Socket) SetBusy(on bool) { s.busy = on }
