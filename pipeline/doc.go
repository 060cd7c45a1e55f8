// Package pipeline is Rail's per-packet path: parse → flow key and hash →
// connection table → Maglev pick → rewrite, and the worker loop that drives
// an AF_XDP socket with it.
//
// # One function
//
// Worker.Process is the only place a verdict is decided. The live worker
// (Loop), `raild replay` and `railbench pipeline` all call it, and the XDP
// steering program in package rings mirrors its steps that end in pass
// (docs/verdicts.md), so that everything the kernel hands us is ours and
// everything else stays with the kernel. A test runs both over the same
// frames.
//
// Process has two paths that decide alike. processFast takes the frame
// every router sends — GRE over IPv4 to an option-less IPv4 TCP or UDP
// packet of an established connection, to an IPv4 backend — with fixed
// offsets and its state in registers; it declines anything else before
// changing anything, and processGeneral does every case: IPv6 inside or
// outside, extension headers, GRE options (a checksum is verified), plain
// packets to a VIP (encapsulated in the frame's headroom), fragments, ICMP,
// the MTU. TestFastPathMatchesGeneral and FuzzFastPathMatchesGeneral hold
// the two to the same results and bytes.
//
// # State
//
// A Snapshot holds services, VIP lookup tables, Maglev tables and backend
// health. It is immutable: control builds a new one off the data path
// (NewSnapshotFrom rebuilds only the Maglev tables whose inputs changed)
// and publishes it through an atomic pointer; a worker loads it once per
// batch (Worker.Begin). A Worker owns a Conntrack, whose one memory (a
// memfd, on huge pages where the host has them; a takeover passes it on)
// holds the connection tables and the fragment table — fixed size,
// allocated at start, pointer-free — and plain counters that it publishes
// with atomics once per batch (Worker.Flush), so scraping never slows the
// data path. Once the table outgrows the caches, a batch is processed in
// stages so that its lookups miss the caches together (batch.go: every
// frame's bucket found first, then fetched ahead of the processing).
//
// The connection table is 4-way set associative, IPv4 entries 32 bytes and
// IPv6 entries 64 (a separate table a quarter the size). Entries age by
// state: a new flow (a SYN, a first datagram) after 10 s, an established
// one after tcp_timeout or udp_timeout, a closing one (FIN, RST) 10 s after.
// A full bucket gives up its new entries first; a new flow never pushes out
// an established one, so a SYN flood churns only itself
// (TestConntrackFlood). A hit whose backend left the list or went down is
// a miss; one whose backend moved in the list follows it by address. A SYN
// never rides an entry: it opens a new connection and goes by Maglev, so a
// client reusing a port while its old entry ages does not land on a
// drained backend.
//
// Fragments: the first fragment of a datagram goes by its 5-tuple and is
// remembered in the per-core fragment table by (source, destination,
// protocol, identification) for 2 s; later fragments follow it. A later
// fragment that comes first goes by (source, destination, protocol) —
// `railbench fragments` measures how often that splits a datagram (about
// 1 − 1/N for N backends). ICMP errors about a flow (destination
// unreachable, fragmentation needed, packet too big, time exceeded) go to
// the backend of the flow they quote, reversed, so path-MTU discovery works
// through the load balancer; echo requests go by the 3-tuple.
//
// # Rewrite
//
// A transmitted frame becomes Ethernet | IPv4 (local_address → backend) or
// IPv6 (local_address6 → backend) | GRE (the inner family) | the inner
// packet, byte for byte. The inner packet never moves: the new headers are
// written in front of it, over the old outer headers for GRE input, or in
// the frame's headroom for plain input (MaxHeadroom bytes at most). Each
// backend carries a pre-built outer header and, for IPv4, its partial
// checksum, so finishing the checksum costs three additions; an IPv6 outer
// header's flow label carries the flow hash for ECMP. A packet that would
// exceed the interface MTU once encapsulated is answered in place with ICMP
// fragmentation-needed (IPv4 with DF) or ICMPv6 packet-too-big (verdict tx,
// reason icmp_too_big), or dropped (too_big).
//
// # Capture
//
// Live capture (capture.go, GET /v1/capture) hooks the worker loop once
// per batch: Loop.Poll asks its CaptureTap (an inlined atomic load) and
// keeps its plain loop unless a capture runs; then captureBatch gives the
// tap each frame before and after Process, and the tap copies what the
// captures' filters keep into per-worker rings of preallocated slots that
// the API's goroutine drains. A full ring drops the copy and counts it;
// forwarding never waits, and nothing is allocated per packet.
package pipeline
