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
// BPF_PROG_TEST_RUN, which is how the tests check it without a network.
//
// Counters (per CPU, summed by Counts): decapsulated, passed (not ours),
// unsupported (GRE to us with a version, routing bit or inner type the
// program does not take apart: left to the kernel, which has no GRE
// handler and drops it) and errors (the kernel refused to shrink the
// packet: dropped).
package decap
