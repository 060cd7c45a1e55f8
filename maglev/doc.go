// Package maglev builds Maglev consistent-hashing lookup tables (Eisenbud et
// al., "Maglev: A Fast and Reliable Software Network Load Balancer", NSDI
// 2016, §3.4) and answers per-packet lookups from them.
//
// # Lookup
//
// A Table is M slots (M prime), each holding the uint16 index of a backend in
// the slice given to New. A flow's backend is slots[h mod M], where h is the
// flow's 5-tuple hash; Table.Lookup is that one load, inlined, without
// allocation or bounds check, and returns NoBackend when no backend has a
// positive weight. Tables are immutable: the control plane builds a new one
// off the data path and publishes it with the rest of a snapshot.
//
// # Population (paper, Pseudocode 1)
//
// Every backend i has a preference list over the slots, a permutation of
// 0..M−1:
//
//	offset_i = h1(key_i) mod M
//	skip_i   = h2(key_i) mod (M−1) + 1
//	permutation_i[j] = (offset_i + j·skip_i) mod M
//
// M is prime and 1 ≤ skip < M, so every list visits every slot once. The
// table is filled in rounds; in each round the backends take turns, and a
// turn claims the backend's most preferred slot that is still empty. The
// build stops when all M slots are full. The permutations are never stored:
// each backend keeps only its position in its list (offset + next·skip,
// advanced by skip), so a build allocates O(N + M) once and costs about
// M·ln M probes whatever N is — about 1.6 ms for N = 1000, M = 65537.
//
// Because each turn takes exactly one slot, equal-weight backends end up
// with ⌊M/N⌋ or ⌈M/N⌉ slots each. When a backend is removed, its slots go
// to the others and only a small fraction of other slots moves (measured in
// TestDisruption: 0.2–0.6 % of M for N = 10…1000).
//
// # Hashes
//
// h1 and h2 are SipHash-2-4 of the key's bytes with the 128-bit keys
// (k0 = seed, k1 = 0x6d61676c65763a31) and (k0 = seed, k1 =
// 0x6d61676c65763a32) — the ASCII words "maglev:1" and "maglev:2". The
// seed is the fleet's hash_seed. The key is the backend's configured name,
// else its address string, so a backend keeps its preference list when
// others come and go, and every node with the same configuration builds the
// same table.
//
// # Determinism
//
// New sorts the backends by key and runs the rounds in that order, so the
// table depends on the set of (key, weight) pairs, M and the seed only —
// not on the order of the input slice or on the machine. Slots still hold
// indices into the caller's slice. Duplicate or empty keys are errors.
//
// # Weights
//
// Weight 0 keeps a backend out of the table (drain); such backends do not
// count toward the "M ≥ backends" requirement. Positive weights work by
// credit: in every round each backend adds its weight to its credit, and
// a backend whose credit reaches W = max weight spends W on one turn.
// The heaviest backends therefore take a turn every round and a backend
// of weight w takes w/W of the turns, so its share of the table is
// w / Σweights (within a slot or so per round of rounding). Only turns are
// weighted: the preference lists are the unweighted ones, so a weight
// change moves slots the same consistent way an addition or removal does.
// When all weights are equal every backend takes a turn every round, which
// is exactly the paper's algorithm; scaling all weights by a common factor
// builds the same table.
//
// Accuracy: a backend of weight w gets M·w/Σw slots give or take a round's
// rounding — between −(1 + w/W) and N·w/Σw + w/W slots off, which
// TestPropertyRandomSets checks over random pools; with equal weights
// shares differ by at most one slot. railbench maglev measures the
// achieved shares (docs/maglev.md): for 100 backends with weights 1…10 the
// worst backend is within 0.3 % of its configured share at M = 65537.
//
// Skewed weights would make the rounds slow (N steps per round, about
// M·W/Σw rounds), so when the heaviest weight is more than 4× the mean New
// runs the same schedule from a heap instead: the t-th turn of a backend
// of weight w falls in round ⌈t·W/w⌉, and turns are taken in (round, key)
// order — the same turns in the same order, so the same table
// (TestHeapMatchesRounds), in O(M log N).
//
// # Memory
//
// A table is one []uint16 of M slots — 2·M bytes, pointer-free, so the
// garbage collector never scans it: 131 074 bytes for M = 65537 and
// 1 310 746 bytes for M = 655373. A build also allocates 32 bytes of
// scratch per backend with weight > 0 and the index order, both freed.
//
// # Build time
//
// About M·ln M probes in total whatever N is: median 1.5 ms for N = 1000,
// M = 65537 and 18 ms for M = 655373 on the project's 2-core machine
// (the paper reports 1.8 ms and 22.9 ms); see BenchmarkNew and
// docs/maglev.md.
//
// # Sizes
//
// M must be prime, at least the number of backends with weight > 0, and at
// most MaxSize; errors name the problem and suggest a size ("table size
// 65536 is not prime (try 65537)"). The paper recommends M ≥ 100·N to keep
// the imbalance between backends small; 65537 and 655373 are the usual
// choices.
package maglev
