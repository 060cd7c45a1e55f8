// Package pipeline is Rail's per-packet path: parse → flow key and hash →
// connection table → Maglev pick → rewrite, and the worker loop that drives
// an AF_XDP socket with it.
//
// # One function
//
// Worker.Process is the only place a verdict is decided. The live worker
// (Run), `raild replay` and `railbench pipeline` all call it, and the XDP
// steering program in package rings mirrors its first steps (docs/verdicts.md)
// so that everything the kernel hands us is ours and everything else stays
// with the kernel.
//
// # State
//
// A Snapshot holds services, VIP lookup tables, Maglev tables and backend
// health. It is immutable: control builds a new one off the data path and
// publishes it through an atomic pointer; a worker loads it once per batch
// (Worker.Begin). A Worker owns a Conntrack — fixed size, allocated at start,
// pointer-free — and plain counters that it publishes with atomics once per
// batch (Worker.Flush), so scraping never slows the data path.
//
// # Rewrite
//
// A transmitted frame becomes Ethernet | IPv4(local → backend, GRE, TTL 64,
// DF copied from the inner packet) | GRE(no flags, 0x0800) | inner packet.
// The inner packet never moves: the new 38 bytes of headers are written in
// front of it, over the old outer headers for GRE input, or in the frame's
// headroom (24 bytes are needed) for plain input. Each backend carries a
// pre-built outer header and its partial checksum, so finishing the checksum
// costs three additions.
package pipeline
