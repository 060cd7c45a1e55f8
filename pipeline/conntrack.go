package pipeline

import (
	"fmt"
	"time"
)

// flowKey is an IPv4 5-tuple packed in two words: addrs = src << 32 | dst,
// rest = (source port << 16 | destination port) << 8 | protocol. Two words
// compare in two instructions and are exactly what flowHash mixes.
type flowKey struct {
	addrs uint64
	rest  uint64
}

func makeFlowKey(src, dst, ports uint32, proto uint8) flowKey {
	return flowKey{addrs: uint64(src)<<32 | uint64(dst), rest: uint64(ports)<<8 | uint64(proto)}
}

func (k flowKey) proto() uint8 { return uint8(k.rest) }

// ctEntry is one connection: the flow and the backend it was given. It holds
// no pointers, so the collector never scans the table.
type ctEntry struct {
	key     flowKey
	addr    uint32 // the backend's address: a hit is honoured only if it still matches
	last    uint32 // seconds since the worker's epoch when last seen; 0 = empty
	backend uint16 // index in the service's backends when recorded
}

// ctWays is the associativity: a flow lives in one of ctWays slots of its
// bucket, so a lookup touches at most ctWays consecutive entries (two cache
// lines).
const ctWays = 4

type ctBucket [ctWays]ctEntry

// Conntrack is a per-core, fixed-size, set-associative connection table.
// It is written only by its worker; nothing else touches it. When a bucket
// is full, the least recently seen entry is replaced.
type Conntrack struct {
	buckets    []ctBucket
	bucketMask uint32
	tcpTimeout uint32 // seconds
	udpTimeout uint32

	hits, misses uint64
	live         uint64 // entries in use (approximate: expired ones count until reused)
}

// NewConntrack allocates a table of at least entries slots (rounded up to a
// power of two, minimum ctWays).
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

func (c *Conntrack) timeout(proto uint8) uint32 {
	if proto == 6 {
		return c.tcpTimeout
	}
	return c.udpTimeout
}

// lookup returns the bucket's entries and the index of key in it, or -1.
// now is in seconds since the epoch of this table and is never 0.
func (c *Conntrack) lookup(h uint64, k flowKey, now uint32) (*ctBucket, int) {
	b := &c.buckets[uint32(h)&c.bucketMask]
	for i := range b {
		e := &b[i]
		if e.key == k && e.last != 0 {
			if now-e.last > c.timeout(k.proto()) {
				break
			}
			return b, i
		}
	}
	return b, -1
}

// insert records key → backend in the bucket, reusing an empty or expired
// slot, else the least recently seen one.
func (c *Conntrack) insert(b *ctBucket, k flowKey, backend uint16, addr, now uint32) {
	victim := 0
	oldest := ^uint32(0)
	to := c.timeout(k.proto())
	for i := range b {
		e := &b[i]
		if e.last == 0 {
			victim = i
			c.live++
			break
		}
		if e.key == k || now-e.last > to {
			victim = i
			break
		}
		if e.last < oldest {
			oldest, victim = e.last, i
		}
	}
	b[victim] = ctEntry{key: k, backend: backend, addr: addr, last: now}
}

// Len returns the number of slots.
func (c *Conntrack) Len() int { return len(c.buckets) * ctWays }
