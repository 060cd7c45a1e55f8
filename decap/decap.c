//go:build ignore

// decap: the backend half of Rail's direct server return, as a tc ingress
// program. It removes the outer IPv4 or IPv6 header and the GRE header of
// a frame that a Rail node sent to this host and hands the inner packet to
// the stack as if it had arrived bare on the same interface: no ip_gre
// module, no gre0 device, and no reverse-path surprise (the packet is still
// seen on the interface the client's replies leave by).
//
// A frame is decapsulated when all of these hold; anything else is left to
// the kernel untouched (TC_ACT_OK) and counted as "passed":
//   - Ethernet type IPv4 or IPv6 (no VLAN tag: the NIC or a VLAN device
//     strips those before tc sees them);
//   - IPv4 without options or fragmentation, or IPv6 whose next header is
//     GRE directly (no extension headers), with protocol 47;
//   - the outer destination is in the addrs map (the backend's own
//     addresses, IPv4 stored IPv4-mapped, as Rail's steering program does);
//   - GRE version 0 without the routing bit; checksum, key and sequence
//     fields are skipped (Rail sends none; RFC 2890 allows them);
//   - GRE protocol 0x0800 with an IPv4 packet inside, or 0x86DD with IPv6.
// The inner packet is never looked into further: the stack checks it.
//
// The program loads with CAP_BPF and CAP_NET_ADMIN alone, the
// capabilities raild has under tools/raild.service, without CAP_PERFMON.
// Without CAP_PERFMON the verifier refuses a packet pointer plus a
// variable offset (Spectre v1 hardening), and the GRE header follows an
// outer header of either 20 or 40 bytes. So the Ethernet and outer IP headers are read
// through skb->data at constant offsets, and the GRE header and the inner
// version byte with bpf_skb_load_bytes at a scalar offset. That helper
// also reads past the linear part of the skb, where skb->data_end ends:
// a frame whose headers the driver left in page fragments is decapsulated
// too, where a direct read would have passed it untouched.

#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <bpf/bpf_helpers.h>

char __license[] SEC("license") = "Dual BSD/GPL";

// Not in older UAPI headers (Linux 6.3 added them): the decapsulated packet
// is of this family, so the kernel sets skb->protocol to match.
#ifndef BPF_F_ADJ_ROOM_DECAP_L3_IPV4
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV4 (1ULL << 7)
#define BPF_F_ADJ_ROOM_DECAP_L3_IPV6 (1ULL << 8)
#endif

struct addr {
	__u8 a[16];
};

// addrs: the outer destinations this host decapsulates for.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct addr);
	__type(value, __u8);
} addrs SEC(".maps");

// counts, per CPU: see the COUNT_ constants (decap.go mirrors them).
#define COUNT_DECAP 0   // decapsulated and passed up
#define COUNT_PASS 1    // not ours: left untouched
#define COUNT_ERROR 2   // ours, but the kernel refused to shrink the packet: dropped
#define COUNT_UNSUPPORTED 3 // GRE to us we cannot take apart (version, routing, inner type): left untouched
#define NUM_COUNTS 4

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NUM_COUNTS);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

#define ETH_LEN 14
#define IP4_LEN 20
#define IP6_LEN 40
#define PROTO_GRE 47
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86dd

#define GRE_C 0x80 // first flag byte
#define GRE_R 0x40
#define GRE_K 0x20
#define GRE_S 0x10
#define GRE_VER 0x07 // second flag byte

static __always_inline void count(__u32 i)
{
	__u64 *c = bpf_map_lookup_elem(&counts, &i);
	if (c)
		*c += 1;
}

static __always_inline int pass(void)
{
	count(COUNT_PASS);
	return TC_ACT_OK;
}

// The IPv4-mapped form of an IPv4 address, as the addrs map holds it.
static __always_inline void mapped4(struct addr *a, const __u8 *ip)
{
	__builtin_memset(a->a, 0, 10);
	a->a[10] = 0xff;
	a->a[11] = 0xff;
	__builtin_memcpy(&a->a[12], ip, 4);
}

SEC("tc")
int decap(struct __sk_buff *skb)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	__u8 *eth = data;

	// Outer IPv6 (40) + GRE with every optional field (16) + inner version
	// byte: everything decided below lies within the first 14+40+16+1 bytes,
	// but a short IPv4 frame may hold less; check each piece as it comes.
	if ((void *)(eth + ETH_LEN) > data_end)
		return pass();
	__u16 etype = ((__u16)eth[12] << 8) | eth[13];
	__u8 *ip = eth + ETH_LEN;
	struct addr dst;
	__u32 outer;
	if (etype == ETH_P_IP) {
		if ((void *)(ip + IP4_LEN) > data_end)
			return pass();
		if (ip[0] != 0x45 || ip[9] != PROTO_GRE)
			return pass(); // not IPv4 without options, or not GRE
		mapped4(&dst, ip + 16);
		if (!bpf_map_lookup_elem(&addrs, &dst))
			return pass();
		// More fragments, or a fragment offset: the stack reassembles (and
		// then has no GRE handler); a Rail node never fragments.
		if ((ip[6] & 0x3f) || ip[7])
			return pass();
		outer = IP4_LEN;
	} else if (etype == ETH_P_IPV6) {
		if ((void *)(ip + IP6_LEN) > data_end)
			return pass();
		if ((ip[0] >> 4) != 6 || ip[6] != PROTO_GRE)
			return pass();
		__builtin_memcpy(dst.a, ip + 24, 16);
		if (!bpf_map_lookup_elem(&addrs, &dst))
			return pass();
		outer = IP6_LEN;
	} else {
		return pass();
	}

	__u32 goff = ETH_LEN + outer;
	__u8 gre[4];
	if (bpf_skb_load_bytes(skb, goff, gre, 4))
		return pass();
	if ((gre[0] & GRE_R) || (gre[1] & GRE_VER)) {
		count(COUNT_UNSUPPORTED);
		return TC_ACT_OK;
	}
	__u32 glen = 4;
	if (gre[0] & GRE_C)
		glen += 4; // checksum + reserved
	if (gre[0] & GRE_K)
		glen += 4;
	if (gre[0] & GRE_S)
		glen += 4;
	__u16 inner_type = ((__u16)gre[2] << 8) | gre[3];
	__u8 inner;
	if (bpf_skb_load_bytes(skb, goff + glen, &inner, 1))
		return pass();
	__u8 version = inner >> 4;
	__u64 flags;
	__u16 new_etype;
	if (inner_type == ETH_P_IP && version == 4) {
		flags = BPF_F_ADJ_ROOM_DECAP_L3_IPV4;
		new_etype = ETH_P_IP;
	} else if (inner_type == ETH_P_IPV6 && version == 6) {
		flags = BPF_F_ADJ_ROOM_DECAP_L3_IPV6;
		new_etype = ETH_P_IPV6;
	} else {
		count(COUNT_UNSUPPORTED);
		return TC_ACT_OK;
	}
	// The decap flags exist since Linux 6.3; they are needed only when the
	// family changes (IPv6 in IPv4 or the reverse), so a same-family packet
	// goes without them and works on older kernels too.
	if (new_etype == etype)
		flags = 0;

	// Remove the outer L3 header and GRE: the bytes right after the
	// Ethernet header. The kernel moves the MAC header and fixes a
	// CHECKSUM_COMPLETE sum for what it pulled.
	__s32 shrink = -(__s32)(outer + glen);
	if (bpf_skb_adjust_room(skb, shrink, BPF_ADJ_ROOM_MAC, flags)) {
		count(COUNT_ERROR);
		return TC_ACT_SHOT;
	}
	if (new_etype != etype) {
		__u16 be = __builtin_bswap16(new_etype);
		if (bpf_skb_store_bytes(skb, 12, &be, 2, 0)) {
			count(COUNT_ERROR);
			return TC_ACT_SHOT;
		}
	}
	count(COUNT_DECAP);
	return TC_ACT_OK;
}
