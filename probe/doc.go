// Package probe sends a node's health checks through the data path, so a
// check sees a backend as clients do: in GRE, addressed to the VIP.
//
// A check of a service with `health: {via: gre}` is a socket connected to
// the VIP and marked (SO_MARK) with MarkBase | the backend's probe id.
// A policy routing rule sends marked packets to a link of its own
// (DummyName, one end of a veth pair with ARP off; nothing else is routed there), and a tc program on
// its egress (probe.c) wraps each probe exactly as the pipeline wraps
// client traffic — outer IPv4 from local_address to the backend, a 4-byte
// GRE header — and redirects it out of the data-path interface with the
// next hop's MAC from the kernel's FIB and neighbours. The backend's
// `raild decap` strips it, the stack answers from the VIP straight to
// local_address (direct server return), and the answer reaches the
// checker's socket through the kernel (it is not ours to the steering
// program). A backend whose decapsulation, VIP on loopback or rp_filter is
// broken fails such a check; a plain check to its own address would pass.
package probe
