package pipeline

// Verdict is what happens to a packet: it is transmitted to a backend, left
// to the kernel, or dropped. Every packet gets exactly one.
type Verdict uint8

const (
	Tx Verdict = iota
	Pass
	Drop
)

var verdictNames = [...]string{Tx: "tx", Pass: "pass", Drop: "drop"}

func (v Verdict) String() string {
	if int(v) < len(verdictNames) {
		return verdictNames[v]
	}
	return "unknown"
}

// Reason says why a packet got its verdict. Each reason belongs to exactly
// one verdict (see Reason.Verdict), so per-core counters are kept per reason
// and the verdict totals are sums.
type Reason uint8

const (
	// ReasonNone goes with Tx.
	ReasonNone Reason = iota

	// Pass reasons: not ours, left to the kernel.
	NotIP     // neither IPv4 nor IPv6 (ARP, LLDP, …)
	NotOurs   // neither GRE to a local address nor addressed to a VIP
	NoService // a VIP (or GRE-inner) packet that matches no service

	// Drop reasons: ours but unforwardable.
	Malformed   // truncated or inconsistent headers
	Unsupported // GRE version ≠ 0, routing or other unknown GRE bits, non-IPv4 GRE payload
	NoBackend   // the service has no healthy backend with weight > 0
	Fragment    // an outer (tunnel) fragment: inner fragments are forwarded
	NoHeadroom  // no room in the frame to prepend the outer headers
	NoNeighbor  // next_hop kernel: the backend's next-hop MAC is not resolved yet
	TooBig      // the encapsulated packet would exceed the interface MTU (and no ICMP reply is due)
	TxRingFull  // forwarded by Process, but the tx ring had no room (counted by the worker loop)

	// ICMPTooBig goes with Tx: instead of the packet, an ICMP
	// fragmentation-needed (IPv4, DF set) or ICMPv6 packet-too-big reply
	// went back to the client.
	ICMPTooBig

	// NumReasons is the number of reasons, for sizing counter arrays.
	NumReasons
)

var reasonNames = [...]string{
	ReasonNone:  "-",
	NotIP:       "not_ip",
	NotOurs:     "not_ours",
	NoService:   "no_service",
	Malformed:   "malformed",
	Unsupported: "unsupported",
	NoBackend:   "no_backend",
	Fragment:    "fragment",
	NoHeadroom:  "no_headroom",
	NoNeighbor:  "no_neighbor",
	TooBig:      "too_big",
	TxRingFull:  "tx_ring_full",
	ICMPTooBig:  "icmp_too_big",
}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return "unknown"
}

// Verdict returns the verdict this reason belongs to.
func (r Reason) Verdict() Verdict {
	switch {
	case r == ReasonNone || r == ICMPTooBig:
		return Tx
	case r <= NoService:
		return Pass
	default:
		return Drop
	}
}

// Result is the outcome of Process for one packet. Service and Backend index
// the snapshot's services and that service's backends when Verdict is Tx.
type Result struct {
	Verdict Verdict
	Reason  Reason
	Service uint16
	Backend uint16
}
