package decap

import (
	"errors"
	"fmt"
)

// Mode is how the program is hooked to an interface's ingress.
type Mode int

const (
	// ModeAuto tries tcx, then a cls_bpf filter on clsact.
	ModeAuto Mode = iota
	// ModeTCX attaches through a tcx bpf_link (Linux 6.6+).
	ModeTCX
	// ModeTC adds a direct-action cls_bpf filter on the clsact qdisc
	// (any kernel with clsact, 4.5+); the qdisc is created when missing.
	ModeTC
)

func (m Mode) String() string {
	switch m {
	case ModeAuto:
		return "auto"
	case ModeTCX:
		return "tcx"
	case ModeTC:
		return "tc"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode reads "auto", "tcx" or "tc".
func ParseMode(s string) (Mode, error) {
	for _, m := range []Mode{ModeAuto, ModeTCX, ModeTC} {
		if s == m.String() {
			return m, nil
		}
	}
	return 0, fmt.Errorf("decap: mode %q: want auto, tcx or tc", s)
}

// Counts are the program's counters summed over CPUs.
type Counts struct {
	Decapsulated uint64 // GRE to us, taken apart, inner packet passed up
	Passed       uint64 // not ours: left untouched
	Errors       uint64 // ours, but the kernel refused to shrink the packet: dropped
	Unsupported  uint64 // GRE to us the program does not take apart: left untouched
}

// indexes of the counts map (decap.c's COUNT_ constants).
const (
	countDecap = iota
	countPass
	countError
	countUnsupported
	numCounts
)

// tc verdicts returned by the program (linux/pkt_cls.h).
const (
	ActOK   = 0 // TC_ACT_OK: the frame goes on up the stack
	ActShot = 2 // TC_ACT_SHOT: dropped
)

// ErrClosed is returned by every method of a closed Program.
var ErrClosed = errors.New("decap: program closed")

// FilterName is the name of the cls_bpf filter ModeTC adds, which is how
// `tc filter show dev IF ingress` shows it.
const FilterName = "rail_decap"
