//go:build ignore

// probe: health checks through the tunnel. raild's health checker sends a
// check of a `via: gre` service to the VIP itself, from a socket marked
// with MARK_BASE | the backend's probe id (SO_MARK). Policy routing sends
// marked packets to a dummy interface (no ARP); this program, on the dummy's
// tc egress, wraps each one exactly as the data path wraps client traffic —
// outer IPv4 from local_address to the backend, a 4-byte GRE header, the
// probe byte for byte — and redirects it out of the data-path interface,
// with the next hop's MAC from the kernel's routes and neighbours. The
// backend decapsulates it, its stack answers from the VIP straight to
// local_address, and the checker's socket gets the answer: a backend whose
// decapsulation, VIP on loopback or rp_filter is broken fails the check,
// as it fails clients.
//
// Packets without the mark, or with an id the targets map does not know,
// are dropped: nothing else is routed to the dummy.
//
// Like steer and decap it reads and writes the packet only through
// helpers (no packet-pointer arithmetic), so it loads with CAP_BPF and
// CAP_NET_ADMIN alone.

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

#define MARK_BASE 0x52430000 /* "RC" */
#define MARK_MASK 0xffff0000
#define ETH_LEN 14
#define IP4_LEN 20
#define GRE_LEN 4

struct target {
	__u32 backend; /* network order */
	__u32 local;   /* network order: the outer source */
	__u32 ifindex; /* where the wrapped probe leaves */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32); /* the probe id: the mark's low 16 bits */
	__type(value, struct target);
} targets SEC(".maps");

/* counters: 0 wrapped and sent, 1 no target (dropped), 2 not IPv4
 * (dropped), 3 a helper failed (dropped) */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

static __always_inline int count(__u32 what, int verdict)
{
	__u64 *n = bpf_map_lookup_elem(&counts, &what);
	if (n)
		*n += 1;
	return verdict;
}

static __always_inline __u16 fold(__u32 sum)
{
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

SEC("tc")
int probe_encap(struct __sk_buff *skb)
{
	if ((skb->mark & MARK_MASK) != MARK_BASE)
		return count(1, TC_ACT_SHOT);
	__u32 id = skb->mark & 0xffff;
	struct target *t = bpf_map_lookup_elem(&targets, &id);
	if (!t)
		return count(1, TC_ACT_SHOT);
	if (skb->protocol != 0x0008) /* htons(ETH_P_IP) on a little-endian host: bpfel only */
		return count(2, TC_ACT_SHOT);
	__u32 backend = t->backend, local = t->local, ifindex = t->ifindex;
	__u8 tos = 0;
	if (bpf_skb_load_bytes(skb, ETH_LEN + 1, &tos, 1))
		return count(3, TC_ACT_SHOT);

	/* Room for the outer IPv4 and GRE headers between Ethernet and the
	 * probe. */
	if (bpf_skb_adjust_room(skb, IP4_LEN + GRE_LEN, BPF_ADJ_ROOM_MAC,
				BPF_F_ADJ_ROOM_ENCAP_L3_IPV4 | BPF_F_ADJ_ROOM_ENCAP_L4_GRE))
		return count(3, TC_ACT_SHOT);
	__u32 total = skb->len - ETH_LEN;
	__u8 hdr[IP4_LEN + GRE_LEN] = {
		0x45, tos, (__u8)(total >> 8), (__u8)total, 0, 0, 0x40, 0, /* DF */
		64, 47, 0, 0,
	};
	__builtin_memcpy(&hdr[12], &local, 4);
	__builtin_memcpy(&hdr[16], &backend, 4);
	hdr[22] = 0x08; /* GRE: no flags, version 0, protocol IPv4 */
	__u32 sum = 0;
#pragma unroll
	for (int i = 0; i < IP4_LEN; i += 2)
		sum += (__u32)hdr[i] << 8 | hdr[i + 1];
	__u16 csum = fold(sum);
	hdr[10] = csum >> 8;
	hdr[11] = csum & 0xff;
	if (bpf_skb_store_bytes(skb, ETH_LEN, hdr, sizeof(hdr), 0))
		return count(3, TC_ACT_SHOT);

	/* Out of the data-path interface, with the next hop and its MAC from
	 * the kernel's routes to the backend and its neighbours (resolved, and
	 * the probe queued, if need be). */
	count(0, 0);
	return bpf_redirect_neigh(ifindex, 0, 0, 0);
}

char _license[] SEC("license") = "GPL";
