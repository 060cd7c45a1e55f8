package pipeline

import (
	"fmt"
	"time"
)

// flowKey is a 5-tuple of either family in five words: addresses as
// addr128 (IPv4 mapped), and rest = (source port << 16 | destination port)
// << 8 | protocol. Fixed size, comparable, hashed once.
type flowKey struct {
	src, dst addr128
	rest     uint64
}

func makeFlowKey(src, dst addr128, ports uint32, proto uint8) flowKey {
	return flowKey{src: src, dst: dst, rest: uint64(ports)<<8 | uint64(proto)}
}

func (k flowKey) proto() uint8 { return uint8(k.rest) }

// Connection states. A new entry has seen only its first packet (for TCP,
// a SYN); established ones have seen more (for TCP, an ACK without SYN);
// closing ones a FIN or RST. Each state has its own timeout, and new
// entries never push established ones out of a full bucket: a flood of
// new tuples (a SYN flood) churns only the new entries.
const (
	ctNew uint8 = iota + 1
	ctEstablished
	ctClosing
)

// TCP flag bits.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpRST = 0x04
	tcpACK = 0x10
)

// ctEntry is one connection: the flow and the backend it was given. It holds
// no pointers, so the collector never scans the table.
type ctEntry struct {
	key      flowKey
	tag      uint32 // the backend's address tag: a hit is honoured only if it still matches
	deadline uint32 // seconds since the worker's epoch when it expires; 0 = empty
	backend  uint16 // index in the service's backends when recorded
	state    uint8
	_        [13]byte // to 64 bytes: one entry, one cache line (large slices are page aligned)
}

// same compares keys word by word (a struct comparison of five words
// would be a call to memequal).
func (k *flowKey) same(o flowKey) bool {
	return k.rest == o.rest && k.src.lo == o.src.lo && k.dst.lo == o.dst.lo && k.src.hi == o.src.hi && k.dst.hi == o.dst.hi
}

// ctWays is the associativity: a flow lives in one of ctWays slots of its
// bucket — bounded probing: a lookup touches at most ctWays entries.
const ctWays = 4

type ctBucket [ctWays]ctEntry

// Timeouts for states the configuration does not set.
const (
	ctNewTimeout     = 10 // seconds: a SYN or first datagram not yet answered
	ctClosingTimeout = 10 // seconds: after FIN or RST
)

// Conntrack is a per-core, fixed-size, set-associative connection table.
// It is written only by its worker; nothing else touches it.
type Conntrack struct {
	buckets    []ctBucket
	bucketMask uint32
	tcpTimeout uint32 // seconds, established TCP
	udpTimeout uint32 // seconds, established UDP and other protocols

	live    uint64 // entries in use (expired ones count until reused)
	evicted uint64 // live entries replaced to make room
	refused uint64 // new flows not recorded because their bucket was full of established ones
}

// NewConntrack allocates a table of at least entries slots (rounded up to a
// power of two, minimum ctWays). Its memory is fixed from here on.
func NewConntrack(entries uint32, tcpTimeout, udpTimeout time.Duration) (*Conntrack, error) {
	if entries == 0 || entries > 1<<28 {
		return nil, fmt.Errorf("conntrack: %d entries per core is out of range (1…%d)", entries, 1<<28)
	}
	n := uint32(ctWays)
	for n < entries {
		n <<= 1
	}
	return &Conntrack{
		buckets:    make([]ctBucket, n/ctWays),
		bucketMask: n/ctWays - 1,
		tcpTimeout: secs(tcpTimeout),
		udpTimeout: secs(udpTimeout),
	}, nil
}

func secs(d time.Duration) uint32 {
	s := d / time.Second
	if s < 1 {
		return 1
	}
	return uint32(s)
}

// timeout is how long an entry in state may stay idle, in seconds.
func (c *Conntrack) timeout(state, proto uint8) uint32 {
	switch {
	case state == ctEstablished && proto == 6:
		return c.tcpTimeout
	case state == ctEstablished:
		return c.udpTimeout
	case state == ctClosing:
		return ctClosingTimeout
	}
	return ctNewTimeout
}

func expired(e *ctEntry, now uint32) bool { return now > e.deadline }

// lookup returns the bucket's entries and the index of key in it, or -1.
// now is in seconds since the epoch of this table and is never 0; an
// empty entry's deadline is 0, so it never matches.
func (c *Conntrack) lookup(h uint64, k flowKey, now uint32) (*ctBucket, int) {
	b := &c.buckets[uint32(h)&c.bucketMask]
	for i := range b {
		if e := &b[i]; e.deadline >= now && e.key.same(k) {
			return b, i
		}
	}
	return b, -1
}

// seen updates an entry for a packet with TCP flags (0 for other
// protocols): its state and its deadline. The deadline is rewritten only
// when it moves, to keep the cache line clean on most hits.
func (c *Conntrack) seen(e *ctEntry, flags uint8, now uint32) {
	state := e.state
	switch {
	case flags&(tcpFIN|tcpRST) != 0:
		state = ctClosing
	case state == ctNew && (e.key.proto() != 6 || flags&(tcpACK|tcpSYN) == tcpACK):
		state = ctEstablished
	}
	if d := now + c.timeout(state, e.key.proto()); d != e.deadline || state != e.state {
		e.deadline, e.state = d, state
	}
}

// insert records key → backend in the bucket. It takes an empty or expired
// slot, else the least recently seen new one; only a packet that proves an
// established connection (a TCP ACK without SYN, picked up mid-stream after
// a restart or a table loss) may replace the least recently seen
// established entry. A new flow that finds the bucket full of established
// ones is forwarded but not recorded.
func (c *Conntrack) insert(b *ctBucket, key *flowKey, flags uint8, backend uint16, tag, now uint32) {
	state := ctNew
	if key.proto() == 6 && flags&(tcpACK|tcpSYN) == tcpACK {
		state = ctEstablished
	}
	// Among live entries, the one closest to its deadline goes first.
	victim, oldNew, oldEst := -1, -1, -1
	for i := range b {
		e := &b[i]
		if e.deadline == 0 {
			victim = i
			c.live++
			break
		}
		if e.key.same(*key) || expired(e, now) {
			victim = i
			break
		}
		if e.state == ctEstablished {
			if oldEst < 0 || e.deadline < b[oldEst].deadline {
				oldEst = i
			}
		} else if oldNew < 0 || e.deadline < b[oldNew].deadline {
			oldNew = i
		}
	}
	if victim < 0 {
		switch {
		case oldNew >= 0:
			victim = oldNew
		case state == ctEstablished:
			victim = oldEst
		default:
			c.refused++
			return
		}
		c.evicted++
	}
	b[victim] = ctEntry{key: *key, tag: tag, deadline: now + c.timeout(state, key.proto()), backend: backend, state: state}
}

// Len returns the number of slots.
func (c *Conntrack) Len() int { return len(c.buckets) * ctWays }

// fragKey identifies the fragments of one datagram.
type fragKey struct {
	src, dst addr128
	idProto  uint64 // identification << 8 | protocol
}

type fragEntry struct {
	key     fragKey
	tag     uint32
	last    uint32
	service uint16
	backend uint16
}

// fragTimeout is how long a first fragment's choice waits for the rest, in
// seconds.
const fragTimeout = 2

// fragTable remembers, per core, the backend each datagram's first fragment
// was sent to, so the later fragments (which carry no ports) follow it
// (Maglev paper §4.3). Fixed size, direct mapped: a newer datagram replaces
// an older one in its slot.
type fragTable struct {
	entries []fragEntry
	mask    uint32
}

const fragEntries = 4096

func newFragTable() fragTable {
	return fragTable{entries: make([]fragEntry, fragEntries), mask: fragEntries - 1}
}

func (t *fragTable) slot(h uint64) *fragEntry { return &t.entries[uint32(h>>32)&t.mask] }
