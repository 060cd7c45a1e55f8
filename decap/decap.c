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
//     fields are skipped (RFC 2890 allows them), but see "second chance";
//   - GRE protocol 0x0800 with an IPv4 packet inside, or 0x86DD with IPv6.
//
// Second chance. Over an IPv4 outer header, a GRE header whose only
// optional field is the key (flags exactly 0x2000) carries a second hop:
// the key is the IPv4 address of another backend, in network order. A Rail
// node sends one when the connection may live on that other backend (its
// table changed). The program then looks into the inner packet: a TCP
// segment without SYN for which this host has no socket (bpf_skc_lookup_tcp
// in this network namespace finds no established, request or time-wait
// socket, and it is not the ACK of a valid SYN cookie for a listener) is
// handed on — re-encapsulated to the second hop with this host's address
// as the outer source and a GRE header without key, and redirected out —
// instead of being reset by the stack here. The handed-on frame has no key,
// so the second hop delivers it whatever happens: one hand-on at most,
// never a loop. A second hop that is one of our own addresses (addrs), or
// is no unicast address (0/8, 127/8, 224/4 and above), is none. Everything
// else is decapsulated and delivered as above. docs/DSR.md ("Second chance")
// has the wire format, the decisions and their counters.
//
// The program loads with CAP_BPF and CAP_NET_ADMIN alone, the
// capabilities raild has under tools/raild.service, without CAP_PERFMON.
// Without CAP_PERFMON the verifier refuses a packet pointer plus a
// variable offset (Spectre v1 hardening), and the GRE header follows an
// outer header of either 20 or 40 bytes. So the Ethernet and outer IP headers are read
// through skb->data at constant offsets, and the GRE header, the key and
// the inner headers with bpf_skb_load_bytes at a scalar offset; the
// hand-on rewrites with bpf_skb_adjust_room and bpf_skb_store_bytes. That
// helper also reads past the linear part of the skb, where skb->data_end
// ends: a frame whose headers the driver left in page fragments is
// decapsulated too, where a direct read would have passed it untouched.
// The socket, FIB and redirect helpers need no capability beyond these two
// either (bpf_skc_to_tcp_sock would want CAP_PERFMON: it is not used; the
// socket's state is read from the bpf_sock the lookup returns).

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

// counts, per CPU: one per decision, every frame counted exactly once (see
// the COUNT_ constants; decap.go mirrors them).
#define COUNT_DELIVERED 0    // decapsulated and passed up
#define COUNT_PASS 1         // not ours: left untouched
#define COUNT_ERROR 2        // ours, but the kernel refused to shrink the packet: dropped
#define COUNT_UNSUPPORTED 3  // GRE to us we cannot take apart (version, routing, inner type): left untouched
#define COUNT_HANDED_ON 4    // no socket here, second hop given: re-encapsulated to it and redirected
#define COUNT_NO_SOCKET 5    // no socket here and no (usable) second hop: delivered anyway
#define COUNT_NO_ROUTE 6     // no socket here, second hop given, but no route to it: delivered anyway
#define COUNT_HANDON_ERROR 7 // the hand-on rewrite or redirect failed half-way: dropped
#define NUM_COUNTS 8

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NUM_COUNTS);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

// lookup_unkeyed, set at load time: look up the socket of an unkeyed TCP
// segment too (it is still delivered), so that COUNT_NO_SOCKET counts
// every segment this host will answer with a reset. Off by default: then
// only keyed segments cost a lookup.
volatile const __u32 lookup_unkeyed = 0;

#define ETH_LEN 14
#define IP4_LEN 20
#define IP6_LEN 40
#define PROTO_TCP 6
#define PROTO_GRE 47
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86dd
#define AF_INET 2

#define GRE_C 0x80 // first flag byte
#define GRE_R 0x40
#define GRE_K 0x20
#define GRE_S 0x10
#define GRE_VER 0x07 // second flag byte

#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

// The outer TTL of a handed-on frame: it is a new packet from this host.
#define HANDON_TTL 64

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

// usable_hop: a second hop must be a unicast address of someone else.
static __always_inline int usable_hop(const __u8 *hop)
{
	if (hop[0] == 0 || hop[0] == 127 || hop[0] >= 224)
		return 0;
	struct addr a;
	mapped4(&a, hop);
	return !bpf_map_lookup_elem(&addrs, &a);
}

// orphan: 1 when the inner packet at off (IPv4, or IPv6 if v6) is a TCP
// segment without SYN for which this host has no socket; 0 when it has one
// or the packet is no such segment (not TCP, a fragment, an IPv6 extension
// header, truncated). A listener alone is no socket for the segment, but
// the ACK of a SYN cookie that listener sent is: the stack makes the
// connection from it.
static __always_inline int orphan(struct __sk_buff *skb, __u32 off, int v6)
{
	__u8 ip[IP6_LEN];
	__u8 th[20];
	struct bpf_sock_tuple t = {};
	__u32 tlen, iplen;

	if (v6) {
		if (bpf_skb_load_bytes(skb, off, ip, IP6_LEN))
			return 0;
		if (ip[6] != PROTO_TCP)
			return 0;
		if (bpf_skb_load_bytes(skb, off + IP6_LEN, th, sizeof(th)))
			return 0;
		__builtin_memcpy(t.ipv6.saddr, ip + 8, 16);
		__builtin_memcpy(t.ipv6.daddr, ip + 24, 16);
		__builtin_memcpy(&t.ipv6.sport, th, 2);
		__builtin_memcpy(&t.ipv6.dport, th + 2, 2);
		tlen = sizeof(t.ipv6);
		iplen = IP6_LEN;
	} else {
		if (bpf_skb_load_bytes(skb, off, ip, IP4_LEN))
			return 0;
		if (ip[9] != PROTO_TCP || (ip[6] & 0x3f) || ip[7])
			return 0;
		__u32 ihl = (ip[0] & 0x0f) << 2;
		if (ihl < IP4_LEN)
			return 0;
		if (bpf_skb_load_bytes(skb, off + ihl, th, sizeof(th)))
			return 0;
		__builtin_memcpy(&t.ipv4.saddr, ip + 12, 4);
		__builtin_memcpy(&t.ipv4.daddr, ip + 16, 4);
		__builtin_memcpy(&t.ipv4.sport, th, 2);
		__builtin_memcpy(&t.ipv4.dport, th + 2, 2);
		tlen = sizeof(t.ipv4);
		iplen = IP4_LEN;
	}
	if (th[13] & TCP_SYN)
		return 0;

	struct bpf_sock *sk = bpf_skc_lookup_tcp(skb, &t, tlen, BPF_F_CURRENT_NETNS, 0);
	if (!sk)
		return 1;
	int none = 0;
	if (sk->state == BPF_TCP_LISTEN) {
		none = 1;
		if ((th[13] & (TCP_ACK | TCP_RST)) == TCP_ACK &&
		    bpf_tcp_check_syncookie(sk, ip, iplen, (void *)th, sizeof(th)) == 0)
			none = 0;
	}
	bpf_sk_release(sk);
	return none;
}

// ip4_csum: the header checksum of the 20-byte IPv4 header h (whose
// checksum field is zero).
static __always_inline __u16 ip4_csum(const __u8 *h)
{
	__u32 s = 0;
#pragma unroll
	for (int i = 0; i < IP4_LEN; i += 2)
		s += ((__u32)h[i] << 8) | h[i + 1];
	s = (s & 0xffff) + (s >> 16);
	s = (s & 0xffff) + (s >> 16);
	return ~s & 0xffff;
}

#define HANDON_NO_ROUTE (-1)

// hand_on sends the frame (outer IPv4 + 8-byte GRE with the key) on to the
// second hop hop: outer source = our address (the outer destination it
// came to), destination = hop, the GRE header without its key (protocol
// proto), the inner packet unchanged. It returns the verdict, or
// HANDON_NO_ROUTE, with the frame untouched, when the FIB has no route to
// hop (the caller delivers it here then).
//
// The FIB lookup takes the ingress interface as the one the packet came in
// by (bpf_fib_lookup checks forwarding there): where forwarding is on, a
// found neighbour gives the MAC addresses and bpf_redirect sends the frame
// out; a neighbour not yet resolved is left to bpf_redirect_neigh. Where
// forwarding is off (a backend's default), the lookup answers
// FWD_DISABLED before looking: bpf_redirect_neigh on the ingress interface
// then routes the frame itself (an output route lookup, our address as
// source, restricted to that interface) and resolves the neighbour; if it
// finds no route, the kernel drops the frame and counts a tx error on the
// interface.
static __always_inline int hand_on(struct __sk_buff *skb, const __u8 *hop, const __u8 *proto)
{
	void *data = (void *)(long)skb->data;
	void *data_end = (void *)(long)skb->data_end;
	if (data + ETH_LEN + IP4_LEN > data_end)
		return HANDON_NO_ROUTE; // cannot be: the caller read it
	struct {
		__u8 ip[IP4_LEN];
		__u8 gre[4];
	} h;
	__builtin_memcpy(h.ip, data + ETH_LEN, IP4_LEN);

	struct bpf_fib_lookup fib = {};
	fib.family = AF_INET;
	fib.l4_protocol = PROTO_GRE;
	fib.tos = h.ip[1];
	fib.ifindex = skb->ifindex;
	__builtin_memcpy(&fib.ipv4_src, h.ip + 16, 4);
	__builtin_memcpy(&fib.ipv4_dst, hop, 4);
	long rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
	__u32 out;
	if (rc == BPF_FIB_LKUP_RET_SUCCESS || rc == BPF_FIB_LKUP_RET_NO_NEIGH)
		out = fib.ifindex;
	else if (rc == BPF_FIB_LKUP_RET_FWD_DISABLED)
		out = skb->ifindex;
	else
		return HANDON_NO_ROUTE;

	// The new outer header: 4 bytes shorter (no key), from us to hop.
	__u32 tot = (((__u32)h.ip[2] << 8) | h.ip[3]) - 4;
	h.ip[2] = tot >> 8;
	h.ip[3] = tot;
	h.ip[8] = HANDON_TTL;
	h.ip[10] = 0;
	h.ip[11] = 0;
	__builtin_memcpy(h.ip + 12, h.ip + 16, 4);
	__builtin_memcpy(h.ip + 16, hop, 4);
	__u16 sum = ip4_csum(h.ip);
	h.ip[10] = sum >> 8;
	h.ip[11] = sum;
	h.gre[0] = 0;
	h.gre[1] = 0;
	h.gre[2] = proto[0];
	h.gre[3] = proto[1];

	// Take 4 bytes out right after the Ethernet header and write the new
	// IPv4 + GRE header over the 24 bytes that follow it: the key is gone.
	// The checksum-complete sum follows both (the MAC header is outside
	// it). FIXED_GSO: the inner segments keep their size.
	if (bpf_skb_adjust_room(skb, -4, BPF_ADJ_ROOM_MAC, BPF_F_ADJ_ROOM_FIXED_GSO) ||
	    bpf_skb_store_bytes(skb, ETH_LEN, &h, sizeof(h), BPF_F_RECOMPUTE_CSUM)) {
		count(COUNT_HANDON_ERROR);
		return TC_ACT_SHOT;
	}
	long r;
	if (rc == BPF_FIB_LKUP_RET_SUCCESS) {
		__u8 mac[12];
		__builtin_memcpy(mac, fib.dmac, 6);
		__builtin_memcpy(mac + 6, fib.smac, 6);
		if (bpf_skb_store_bytes(skb, 0, mac, sizeof(mac), 0)) {
			count(COUNT_HANDON_ERROR);
			return TC_ACT_SHOT;
		}
		r = bpf_redirect(out, 0);
	} else {
		r = bpf_redirect_neigh(out, NULL, 0, 0);
	}
	if (r != TC_ACT_REDIRECT) {
		count(COUNT_HANDON_ERROR);
		return TC_ACT_SHOT;
	}
	count(COUNT_HANDED_ON);
	return TC_ACT_REDIRECT;
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

	// Second chance: a key alone over IPv4 is a second hop (the GRE header
	// is then 8 bytes at offset 34); it matters only for a TCP segment
	// without SYN that has no socket here.
	__u32 decision = COUNT_DELIVERED;
	int keyed = etype == ETH_P_IP && (gre[0] & (GRE_C | GRE_K | GRE_S)) == GRE_K;
	if (keyed || lookup_unkeyed) {
		__u8 hop[4] = {};
		if (keyed && bpf_skb_load_bytes(skb, goff + 4, hop, 4))
			return pass(); // cannot be: the inner byte after it was there
		if (orphan(skb, goff + glen, version == 6)) {
			if (!keyed || !usable_hop(hop)) {
				decision = COUNT_NO_SOCKET;
			} else {
				int v = hand_on(skb, hop, &gre[2]);
				if (v != HANDON_NO_ROUTE)
					return v;
				decision = COUNT_NO_ROUTE;
			}
		}
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
	count(decision);
	return TC_ACT_OK;
}
