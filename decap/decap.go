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

// Options are what Load sets in the program before loading it.
type Options struct {
	// LookupUnkeyed looks up the socket of every TCP segment without SYN
	// that comes without a second hop too, so that NoSocketNoSecondHop
	// counts every segment this host will answer with a reset. It costs
	// a socket lookup per such segment (docs/DSR.md, "Second chance",
	// has the measured cost); the segment is delivered either way. Off,
	// only segments with a second hop are looked up.
	LookupUnkeyed bool
}

// Counts are the program's counters summed over CPUs: one per decision,
// every frame the program sees counted exactly once (but Decapsulated,
// which sums the three ways of delivering).
type Counts struct {
	Delivered           uint64 // GRE to us, taken apart, inner packet passed up
	HandedOn            uint64 // second chance: no socket here, sent on to the second hop in GRE
	NoSocketNoSecondHop uint64 // no socket here and no second hop (or it is us): delivered anyway
	NoRoute             uint64 // no socket here, but no route to the second hop: delivered anyway
	HandOnFailed        uint64 // the hand-on rewrite or redirect failed half-way: dropped
	Errors              uint64 // ours, but the kernel refused to shrink the packet: dropped
	Unsupported         uint64 // GRE to us the program does not take apart: left untouched
	Passed              uint64 // not ours: left untouched

	// Decapsulated is Delivered + NoSocketNoSecondHop + NoRoute: every
	// frame taken apart here and passed up.
	Decapsulated uint64
}

// Decision is one counter under the name /metrics gives it
// (rail_decap_packets_total{decision="…"}) and `raild decap --stats`
// prints.
type Decision struct {
	Name    string
	Packets uint64
}

// Decisions lists the counters in a fixed order (Decapsulated, a sum of
// three, is not among them).
func (c Counts) Decisions() []Decision {
	return []Decision{
		{"delivered", c.Delivered},
		{"handed_on", c.HandedOn},
		{"no_socket_no_second_hop", c.NoSocketNoSecondHop},
		{"no_route", c.NoRoute},
		{"hand_on_failed", c.HandOnFailed},
		{"decap_failed", c.Errors},
		{"unsupported", c.Unsupported},
		{"passed", c.Passed},
	}
}

// indexes of the counts map (decap.c's COUNT_ constants).
const (
	countDelivered = iota
	countPass
	countError
	countUnsupported
	countHandedOn
	countNoSocket
	countNoRoute
	countHandOnError
	numCounts
)

func countsOf(c [numCounts]uint64) Counts {
	return Counts{
		Delivered: c[countDelivered], HandedOn: c[countHandedOn], NoSocketNoSecondHop: c[countNoSocket],
		NoRoute: c[countNoRoute], HandOnFailed: c[countHandOnError], Errors: c[countError],
		Unsupported: c[countUnsupported], Passed: c[countPass],
		Decapsulated: c[countDelivered] + c[countNoSocket] + c[countNoRoute],
	}
}

// tc verdicts returned by the program (linux/pkt_cls.h).
const (
	ActOK       = 0 // TC_ACT_OK: the frame goes on up the stack
	ActShot     = 2 // TC_ACT_SHOT: dropped
	ActRedirect = 7 // TC_ACT_REDIRECT: sent out as bpf_redirect or bpf_redirect_neigh said
)

// ErrClosed is returned by every method of a closed Program.
var ErrClosed = errors.New("decap: program closed")

// CountsPin is where Pin(path) pins the counters map: path + CountsPin
// (bpffs refuses names with a dot).
const CountsPin = "_counts"

// FilterName is the name of the cls_bpf filter ModeTC adds, which is how
// `tc filter show dev IF ingress` shows it.
const FilterName = "rail_decap"
