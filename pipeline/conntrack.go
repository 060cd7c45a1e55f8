package pipeline

import (
	"fmt"
	"runtime"
	"time"
	"unsafe"

	"github.com/rail-lb/rail/internal/pow2"
	"github.com/rail-lb/rail/pipeline/header"
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

// ctMeta is what a connection entry records besides its key: the backend
// it was given and its state. It holds no pointers, so the collector never
// scans the tables.
type ctMeta struct {
	tag      uint32 // the backend's address tag: a hit is honoured only if it still matches
	deadline uint32 // seconds since the worker's epoch when it expires; 0 = empty
	backend  uint16 // index in the service's backends when recorded
	state    uint8
}

// flowKey4 is an IPv4 5-tuple in two words: source << 32 | destination,
// and the same rest as flowKey.
type flowKey4 struct{ addrs, rest uint64 }

// is4 reports whether both addresses are IPv4 (mapped).
func (k *flowKey) is4() bool { return k.src.isMapped() && k.dst.isMapped() }

func (k *flowKey) to4() flowKey4 {
	return flowKey4{addrs: k.src.lo<<32 | k.dst.lo&0xffffffff, rest: k.rest}
}

// IPv4 connections live in 32-byte entries (two to a cache line), IPv6
// ones in 64-byte entries (one to a line): most traffic is IPv4, and its
// table's footprint is what the cache sees.
type ctEntry4 struct {
	key flowKey4
	ctMeta
}

type ctEntry6 struct {
	key flowKey
	ctMeta
	_ [12]byte // to 64 bytes (large slices are page aligned)
}

// ctWays is the associativity: a flow lives in one of ctWays slots of its
// bucket — bounded probing: a lookup touches at most ctWays entries.
const ctWays = 4

type (
	ctBucket4 [ctWays]ctEntry4
	ctBucket6 [ctWays]ctEntry6
)

// Timeouts for states the configuration does not set.
const (
	ctNewTimeout     = 10 // seconds: a SYN or first datagram not yet answered
	ctClosingTimeout = 10 // seconds: after FIN or RST
)

// Conntrack is a per-core, fixed-size, set-associative connection table —
// two, one per family. It is written only by its worker; nothing else
// touches it.
type Conntrack struct {
	buckets    []ctBucket4
	bucketMask uint32
	buckets6   []ctBucket6
	mask6      uint32
	// frags is the worker's fragment table (Maglev §4.3), in mem after
	// the IPv6 buckets, so that a takeover carries it too.
	frags fragTable
	// bases are where the IPv4 and the IPv6 table start, for the
	// prefetches (prefetch_amd64.s: an IPv4 bucket is 128 bytes, an IPv6
	// one 256).
	bases      [2]unsafe.Pointer
	tcpTimeout uint32 // seconds, established TCP
	udpTimeout uint32 // seconds, established UDP and other protocols

	// mem holds both tables (a memfd mapping on Linux; fd is its file),
	// on pages.
	mem   []byte
	fd    int
	pages Pages
	unmap runtime.Cleanup // Linux: unmaps mem and closes fd once the table is unreachable

	live    uint64 // entries in use (expired ones count until reused)
	evicted uint64 // live entries replaced to make room
	refused uint64 // new flows not recorded because their bucket was full of established ones
}

// NewConntrack allocates tables of at least entries IPv4 slots and a
// quarter as many IPv6 slots (each rounded up to a power of two, at least
// 64). Memory is fixed from here on: 32 bytes an IPv4 slot, 64 an IPv6 one.
// On Linux the tables live in one memfd (File), so that a process taking
// over from this one can map the very entries (AdoptConntrack).
func NewConntrack(entries uint32, tcpTimeout, udpTimeout time.Duration) (*Conntrack, error) {
	return newConntrack(entries, tcpTimeout, udpTimeout, -1)
}

func newConntrack(entries uint32, tcpTimeout, udpTimeout time.Duration, fd int) (*Conntrack, error) {
	if entries == 0 || entries > 1<<28 {
		if fd >= 0 {
			closeTableFile(fd) // an adopted table owns fd, on error too
		}
		return nil, fmt.Errorf("conntrack: %d entries per core is out of range (1…%d)", entries, 1<<28)
	}
	n, n6 := ctSlots(entries)
	c := &Conntrack{
		bucketMask: n/ctWays - 1,
		mask6:      n6/ctWays - 1,
		tcpTimeout: secs(tcpTimeout),
		udpTimeout: secs(udpTimeout),
	}
	if err := c.alloc(n/ctWays, n6/ctWays, fd); err != nil {
		return nil, err
	}
	return c, nil
}

// ctSlots are the IPv4 and IPv6 slots of a table of at least entries.
func ctSlots(entries uint32) (n4, n6 uint32) {
	return pow2.Ceil(max(entries, 64)), pow2.Ceil(max(entries/4, 64))
}

// ConntrackBytes is the memory of one worker's connection tables for
// entries (conntrack.entries_per_core), its fragment table included:
// fixed from the start, never grown.
func ConntrackBytes(entries uint32) int64 {
	n4, n6 := ctSlots(entries)
	return int64(tablesBytes(n4/ctWays, n6/ctWays))
}

// tablesBytes is the size of the memory of a table of n4 IPv4 and n6
// IPv6 buckets: the connection tables, then the fragment table.
func tablesBytes(n4, n6 uint32) int { return ctBytes(n4, n6) + fragBytes }

// HugePagesFor is how many 2 MiB pages a worker's tables of entries take
// (their file is rounded up to them).
func HugePagesFor(entries uint32) int64 {
	return (ConntrackBytes(entries) + hugePage - 1) / hugePage
}

// ctBytes is the size of the tables of n4 IPv4 and n6 IPv6 buckets, the
// fragment table not included: what the file of a table made before the
// fragment table joined it holds (adoptTableFile).
func ctBytes(n4, n6 uint32) int {
	return int(n4)*int(unsafe.Sizeof(ctBucket4{})) + int(n6)*int(unsafe.Sizeof(ctBucket6{}))
}

// hugePage is the size of the huge pages a table is laid out for: on
// Linux its file and its mapping are multiples of it, and the mapping
// starts on one.
const hugePage = 2 << 20

// fragBytes is the size of the fragment table.
const fragBytes = fragEntries * int(unsafe.Sizeof(fragEntry{}))

// tables lays the tables over mem: the IPv4 buckets, the IPv6 ones, and
// the fragment table when mem has room for it — else (a table adopted
// from a process that kept its fragments elsewhere) the fragment table
// starts empty on the heap.
func (c *Conntrack) tables(mem []byte, n4, n6 uint32) {
	c.buckets = unsafe.Slice((*ctBucket4)(unsafe.Pointer(&mem[0])), n4)
	off := int(n4) * int(unsafe.Sizeof(ctBucket4{}))
	c.buckets6 = unsafe.Slice((*ctBucket6)(unsafe.Pointer(&mem[off])), n6)
	c.bases = [2]unsafe.Pointer{unsafe.Pointer(&c.buckets[0]), unsafe.Pointer(&c.buckets6[0])}
	c.frags = fragTable{mask: fragEntries - 1}
	if at := ctBytes(n4, n6); len(mem) >= at+fragBytes {
		c.frags.entries = unsafe.Slice((*fragEntry)(unsafe.Pointer(&mem[at])), fragEntries)
	} else {
		c.frags.entries = make([]fragEntry, fragEntries)
	}
}

// Pages is what backs a connection table's memory.
type Pages uint8

const (
	// PagesSmall: the system's base pages (4 KiB): a lookup in a table
	// larger than the TLB's reach walks the page tables.
	PagesSmall Pages = iota
	// PagesTHP: shared memory advised as huge, which the kernel backs
	// with transparent 2 MiB pages (shmem_enabled allows it).
	PagesTHP
	// PagesHugeTLB: 2 MiB pages from the kernel's reserved pool
	// (vm.nr_hugepages).
	PagesHugeTLB
)

func (p Pages) String() string {
	switch p {
	case PagesTHP:
		return "transparent huge pages"
	case PagesHugeTLB:
		return "hugetlb 2MiB pages"
	}
	return "base pages"
}

// Pages is what backs the table's memory.
func (c *Conntrack) Pages() Pages { return c.pages }

// CtState is what a connection table records outside its entries, for the
// process that adopts them: its clock's epoch, its counters, and the size
// of the tables in its file (the file itself is rounded up to huge pages).
type CtState struct {
	Epoch                  time.Time
	Now                    uint32
	Live, Evicted, Refused uint64
	Bytes                  int64
}

// secs is a timeout in whole seconds, at least 1 and at most 2^30 (34
// years), so that now + timeout never wraps.
func secs(d time.Duration) uint32 {
	s := d / time.Second
	if s < 1 {
		return 1
	}
	return uint32(min(s, 1<<30))
}

// timeout is how long an entry in state may stay idle, in seconds.
func (c *Conntrack) timeout(state, proto uint8) uint32 {
	switch {
	case state == ctEstablished && proto == header.ProtoTCP:
		return c.tcpTimeout
	case state == ctEstablished:
		return c.udpTimeout
	case state == ctClosing:
		return ctClosingTimeout
	}
	return ctNewTimeout
}

// ctSlot says where a flow's entry is or would go: its table and bucket.
type ctSlot struct {
	b4 *ctBucket4
	b6 *ctBucket6
}

// lookup returns the flow's entry, or nil, and its bucket. now is in
// seconds since the epoch of this table and is never 0; an empty entry's
// deadline is 0, so it never matches.
func (c *Conntrack) lookup(h uint64, k *flowKey, now uint32) (*ctMeta, ctSlot) {
	if k.is4() {
		return c.probe4(h, k.to4(), now), ctSlot{b4: &c.buckets[uint32(h)&c.bucketMask]}
	}
	b := &c.buckets6[uint32(h)&c.mask6]
	for i := range b {
		if e := &b[i]; e.deadline >= now && e.key.same(*k) {
			return &e.ctMeta, ctSlot{b6: b}
		}
	}
	return nil, ctSlot{b6: b}
}

// probe4 is the live entry of IPv4 key k with hash h, or nil.
func (c *Conntrack) probe4(h uint64, k flowKey4, now uint32) *ctMeta {
	b := &c.buckets[uint32(h)&c.bucketMask]
	for i := range b {
		if e := &b[i]; e.key == k && e.deadline >= now {
			return &e.ctMeta
		}
	}
	return nil
}

// same compares keys word by word (a struct comparison of five words
// would be a call to memequal).
func (k *flowKey) same(o flowKey) bool {
	return k.rest == o.rest && k.src.lo == o.src.lo && k.dst.lo == o.dst.lo && k.src.hi == o.src.hi && k.dst.hi == o.dst.hi
}

// seen updates an entry for a packet with TCP flags (0 for other
// protocols): its state and its deadline. The deadline is rewritten only
// when it moves, to keep the cache line clean on most hits.
func (c *Conntrack) seen(e *ctMeta, proto, flags uint8, now uint32) {
	state := e.state
	switch {
	case flags&(tcpFIN|tcpRST) != 0:
		state = ctClosing
	case state == ctNew && (proto != 6 || flags&(tcpACK|tcpSYN) == tcpACK):
		state = ctEstablished
	}
	if d := now + c.timeout(state, proto); d != e.deadline || state != e.state {
		e.deadline, e.state = d, state
	}
}

// insert records key → backend in its bucket. It takes an empty or expired
// slot, else the one closest to its deadline among the new ones; only a
// packet that proves an established connection (a TCP ACK without SYN,
// picked up mid-stream after a restart or a table loss) may replace an
// established entry. A new flow that finds the bucket full of established
// ones is forwarded but not recorded.
func (c *Conntrack) insert(at ctSlot, key *flowKey, flags uint8, backend uint16, tag, now uint32) {
	state := ctNew
	if key.proto() == header.ProtoTCP && flags&(tcpACK|tcpSYN) == tcpACK {
		state = ctEstablished
	}
	var metas [ctWays]*ctMeta
	var same [ctWays]bool
	if at.b4 != nil {
		k4 := key.to4()
		for i := range at.b4 {
			metas[i], same[i] = &at.b4[i].ctMeta, at.b4[i].key == k4
		}
	} else {
		for i := range at.b6 {
			metas[i], same[i] = &at.b6[i].ctMeta, at.b6[i].key.same(*key)
		}
	}
	v := c.victim(&metas, &same, state, now)
	if v < 0 {
		return
	}
	m := ctMeta{tag: tag, deadline: now + c.timeout(state, key.proto()), backend: backend, state: state}
	if at.b4 != nil {
		at.b4[v] = ctEntry4{key: key.to4(), ctMeta: m}
	} else {
		at.b6[v] = ctEntry6{key: *key, ctMeta: m}
	}
}

// victim chooses the way a new entry in state goes to, or -1.
func (c *Conntrack) victim(m *[ctWays]*ctMeta, same *[ctWays]bool, state uint8, now uint32) int {
	// The flow's own entry first, wherever it is: never two entries for
	// one flow (a stale one would come back when the other ages out).
	for i, e := range m {
		if same[i] && e.deadline != 0 {
			return i
		}
	}
	oldNew, oldEst := -1, -1
	for i, e := range m {
		if e.deadline == 0 {
			c.live++
			return i
		}
		if same[i] || now > e.deadline {
			return i
		}
		if e.state == ctEstablished {
			if oldEst < 0 || e.deadline < m[oldEst].deadline {
				oldEst = i
			}
		} else if oldNew < 0 || e.deadline < m[oldNew].deadline {
			oldNew = i
		}
	}
	switch {
	case oldNew >= 0:
		c.evicted++
		return oldNew
	case state == ctEstablished:
		c.evicted++
		return oldEst
	}
	c.refused++
	return -1
}

// Len returns the number of slots, both families.
func (c *Conntrack) Len() int { return (len(c.buckets) + len(c.buckets6)) * ctWays }

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

func (t *fragTable) slot(h uint64) *fragEntry { return &t.entries[uint32(h>>32)&t.mask] }
