// Package decap is the backend half of Rail's direct server return: a tc
// ingress BPF program (decap.c) that takes the GRE a Rail node sends to a
// backend apart and hands the client's packet to the backend's stack, with
// no ip_gre module and no gre0 device. `raild decap --interface IF` loads
// it; docs/DSR.md is the operator's guide (the kernel-GRE alternative, the
// VIP on loopback, rp_filter).
//
// What the program does to a frame arriving on the interface:
//
//	Ethernet | IPv4 or IPv6 (dst ∈ addrs, proto 47) | GRE | inner packet
//	        ↓ bpf_skb_adjust_room(-(outer + GRE), BPF_ADJ_ROOM_MAC)
//	Ethernet (type = inner family)               | inner packet
//
// The inner packet is byte for byte what the client sent (Rail never
// changes it), so the stack sees the client's packet to the VIP as if the
// client were on the backend's segment: it arrives on the same interface
// the replies leave by, so strict reverse-path filtering has nothing to
// object to, and the socket answers from the VIP straight to the client.
// Everything that is not GRE to one of the addresses is left untouched.
//
// Attaching: through a tcx link on Linux 6.6 and later (the kernel removes
// it when the last reference goes, so a crashed `raild decap` leaves
// nothing behind; Pin keeps it after the process exits), else as a
// direct-action cls_bpf filter on a clsact qdisc, which Close deletes
// again. Program.Run feeds one frame through the program with
// BPF_PROG_TEST_RUN, which is how the tests check it without a network
// (the second-chance tests in a network namespace of their own, whose
// sockets and routes the program then sees).
//
// Second chance: over an IPv4 outer header a GRE key alone (flags
// 0x2000) is a second hop, the IPv4 address of another backend. A TCP
// segment without SYN that has no socket here (bpf_skc_lookup_tcp; a
// listener only for a valid SYN-cookie ACK) is handed on to it — outer
// source our address, destination the second hop, GRE without key, the
// inner packet unchanged — and redirected (bpf_fib_lookup, bpf_redirect or
// bpf_redirect_neigh) instead of being reset here. The handed-on frame has
// no key, so the second hop delivers it: one hand-on at most, no loops.
// docs/DSR.md, "Second chance", has the format, the decisions, the attach
// modes and the costs.
//
// Counters (per CPU, summed by Counts): one per decision, every frame
// counted once — delivered, handed_on, no_socket_no_second_hop and
// no_route (both delivered anyway), hand_on_failed and decap_failed
// (dropped), unsupported (GRE to us the program does not take apart: left
// to the kernel, which has no GRE handler and drops it) and passed (not
// ours). Pin leaves them at path + CountsPin for ReadPinnedCounts;
// ReadAttachedCounts finds the program on an interface.
package decap
