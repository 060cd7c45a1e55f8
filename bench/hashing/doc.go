// Package hashing holds the consistent-hashing algorithms Rail's Maglev
// tables are measured against, and the measurements themselves (railbench
// maglev draws the plots from them).
//
// Three algorithms get the same backends (the same keys and weights) and
// the same flows:
//
//   - Maglev: maglev.New's table of M slots; a flow goes to slot h mod M.
//   - Rendezvous (highest random weight, Thaler & Ravishankar 1998): a flow
//     goes to the backend with the highest score(key, h). Weights use the
//     logarithmic method (Schindelhauer & Schomaker 2005): the score is
//     −w / ln(u) with u uniform in (0, 1), which gives backend i exactly
//     w_i / Σw of the flows in expectation.
//   - Ring (Karger et al. 1997): every backend puts V virtual nodes at
//     hashed points of a 64-bit circle; a flow goes to the first point at
//     or after h. Weights scale the number of virtual nodes.
//
// Every algorithm answers two questions: who owns each of the M slots of a
// lookup table (slot i is the point SlotPoint(i), so ring and rendezvous
// can be compared with Maglev "slots per backend", as in the paper's Fig.
// 11), and who owns a flow hash h (traffic). The measurements are:
//
//   - Evenness: max/mean and coefficient of variation (standard deviation /
//     mean) of slots per backend and of flows per backend, for a sweep of
//     N and M.
//   - Disruption: the fraction of flows whose backend changes when k
//     random backends are removed, or k new ones added, against the ideal
//     k/N (removal) and k/(N+k) (addition) — the paper's Fig. 12.
//   - Weights: each backend's achieved share of slots and of flows against
//     its configured share w / Σw.
//
// Flows are random 5-tuples (random client address and port towards one
// VIP and port) hashed with a keyed 64-bit mixer; every result is a
// function of the configuration and the seed, so a run can be repeated
// exactly.
package hashing
