//go:build ignore

// steer: the XDP half of Rail's "ours or not ours" decision.
//
// It implements docs/verdicts.md for the XDP program: every `pass` row is
// XDP_PASS (the kernel keeps the frame), every `tx` and `drop` row is a
// redirect to the AF_XDP socket of the receiving queue, where the Go
// pipeline decides the rest. A drop that comes before a possible pass in
// the document (a bad outer header, a bad GRE header or checksum, a bad
// inner header, a TCP header without ports, a bad ICMP error) must be
// checked here too, in the same order, or the frame would be passed; only
// what follows the last possible pass (backend choice, egress) is left
// out. The section numbers below (§1.2 …) are the document's.
//
// Addresses in map keys are 16 bytes as on the wire; an IPv4 address is
// stored IPv4-mapped (::ffff:a.b.c.d), and an IPv6 destination that is
// itself IPv4-mapped never matches (it is not an IPv6 VIP or local address
// of anyone). Ports are in network byte order as well, so no byte swapping
// is needed on either side.
//
// Packet memory is read in two ways only, so that the program loads with
// CAP_BPF (and CAP_NET_ADMIN to attach it) and without CAP_PERFMON, which
// raild does not have under tools/raild.service: through data + a constant
// (the Ethernet header and the fixed outer IPv4 or IPv6 header), and with
// bpf_xdp_load_bytes at a scalar offset (everything past a header of
// variable length). Without CAP_PERFMON the verifier refuses a packet
// pointer plus a variable and the difference of two packet pointers
// (Spectre v1 hardening), so lengths come from bpf_xdp_get_buff_len. The
// program is not frags-aware (SEC("xdp")), so every frame is one linear
// buffer [data, data_end): bpf_xdp_get_buff_len is data_end - data, and a
// load succeeds exactly when a direct read would have passed its check
// against data_end. Both helpers need Linux 5.18. Where a header usually
// is at a constant offset (no IPv4 options, no IPv6 extension headers) it
// is still read straight from the packet, which saves a helper call.
//
// The same hardening has the verifier follow mispredicted branches, where
// a counted loop need not end: the checksum's blocks go through bpf_loop
// and its short loop is unrolled. And it puts a speculation barrier
// (Spectre v4) after a store to the stack unless the store overwrites
// plain data: a map key built on the stack costs one per word, a spilled
// register one each. So map keys and copied headers live in a per-CPU map
// value (struct work), where stores need none; the spills remain.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char __license[] SEC("license") = "Dual BSD/GPL";

struct addr {
	__u8 a[16]; // IPv6, or IPv4-mapped IPv6 for IPv4
};

struct service_key {
	__u8 vip[16]; // as struct addr
	__u16 port;   // network byte order; 0 = any port
	__u8 proto;   // 0 = any protocol
	__u8 pad;
};

// locals: the local addresses of both families (destinations of GRE from
// the router: local_address, local_address6).
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, struct addr);
	__type(value, __u8);
} locals SEC(".maps");

// vips: every service's VIP, both families.
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct addr);
	__type(value, __u8);
} vips SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, struct service_key);
	__type(value, __u8);
} services SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

// decide() answers OURS or the pass reason. The pass codes are the same
// numbers as pipeline.Reason's NotIP, NotOurs and NoService.
#define OURS 0
#define NOT_IP 1
#define NOT_OURS 2
#define NO_SERVICE 3
#define PASS_REASONS 4

#define MAX_QUEUES 1024

// passes counts the frames left to the kernel, per CPU, at index
// queue * PASS_REASONS + reason: the pipeline never sees them, so this is
// where rail_pass_packets_total gets them from.
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, MAX_QUEUES * PASS_REASONS);
	__type(key, __u32);
	__type(value, __u64);
} passes SEC(".maps");

#define ETH_LEN 14
#define IP6_LEN 40
#define PROTO_ICMP 1
#define PROTO_TCP 6
#define PROTO_UDP 17
#define PROTO_GRE 47
#define PROTO_ICMP6 58
#define EXT_HOP 0
#define EXT_ROUTING 43
#define EXT_FRAGMENT 44
#define EXT_AUTH 51
#define EXT_DSTOPTS 60
#define MAX_EXT 8 // an extension-header walk follows at most 8 headers

// Header offsets (from the start of the frame) never exceed MAX_OFF, so
// that offset arithmetic cannot overflow the 32-bit offset of
// bpf_xdp_load_bytes. The largest offset a real frame can reach is far
// below it (two walks of 8 headers of at most 2 KiB each); beyond it the
// frame is redirected and the pipeline decides.
#define MAX_OFF 0xbfff

// work is the per-CPU working memory of one decision (see the top): map
// keys and what is copied out of the frame. The program runs with bottom
// halves disabled, so nothing else on the CPU uses it meanwhile. A map
// value is never uninitialized to the verifier: every path here writes a
// field before it reads it, as it would a stack variable.
struct work {
	__u8 block[512];        // gre_csum_ok: a piece of the GRE region for bpf_csum_diff
	__u8 hdr[IP6_LEN + 4];  // an IP header, and the 4 bytes after it
	__u8 ext[8];            // an IPv6 extension header; a GRE header; transport ports
	struct addr dst;        // the destination, as the maps key it
	struct service_key key; // has_service
	__u32 pass;             // steer: the passes index
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct work);
} work SEC(".maps");

static __always_inline struct work *get_work(void)
{
	__u32 zero = 0;
	return bpf_map_lookup_elem(&work, &zero);
}

static __always_inline __u32 be16(const __u8 *p) { return ((__u32)p[0] << 8) | p[1]; }

static __always_inline __u32 raw32(const __u8 *p)
{
	__u32 v;
	__builtin_memcpy(&v, p, 4);
	return v;
}

static __always_inline __u16 raw16(const __u8 *p)
{
	__u16 v;
	__builtin_memcpy(&v, p, 2);
	return v;
}

// IPv4-mapped prefix ::ffff:0:0/96, its third 32-bit word as loaded from
// memory on this little-endian target (bytes 00 00 ff ff).
#define MAPPED_WORD 0xffff0000u

static __always_inline void addr4(struct addr *a, __u32 wire)
{
	__u32 *w = (__u32 *)a->a;
	w[0] = 0;
	w[1] = 0;
	w[2] = MAPPED_WORD;
	w[3] = wire;
}

// addr6 copies an IPv6 address; it returns 0 for an IPv4-mapped one,
// which must not be confused with the IPv4 address in the maps.
static __always_inline int addr6(struct addr *a, const __u8 *p)
{
	__u32 *w = (__u32 *)a->a;
	w[0] = raw32(p);
	w[1] = raw32(p + 4);
	w[2] = raw32(p + 8);
	w[3] = raw32(p + 12);
	return !(w[0] == 0 && w[1] == 0 && w[2] == MAPPED_WORD);
}

static __always_inline int has_service(struct work *s, __u16 dport, __u8 proto)
{
	struct service_key *k = &s->key;
	__builtin_memcpy(k->vip, s->dst.a, 16);
	k->port = dport;
	k->proto = proto;
	k->pad = 0;
	if (bpf_map_lookup_elem(&services, k))
		return 1;
	k->proto = 0;
	if (bpf_map_lookup_elem(&services, k))
		return 1;
	k->port = 0;
	k->proto = proto;
	if (bpf_map_lookup_elem(&services, k))
		return 1;
	k->proto = 0;
	return bpf_map_lookup_elem(&services, k) != 0;
}

static __always_inline int is_ext(__u32 nh)
{
	return nh == EXT_HOP || nh == EXT_ROUTING || nh == EXT_DSTOPTS || nh == EXT_AUTH ||
	       nh == EXT_FRAGMENT;
}

// An IPv6 extension-header walk (the document's preamble): from next
// header nh at offset off, inside [off, lim), lim ≤ frame length.
struct walk {
	__u64 off;   // in: the first header; out: the transport header
	__u32 nh;    // in: the fixed header's next header; out: the protocol
	__u32 frag;  // out: a fragment header was seen
	__u32 later; // out: ... with offset ≠ 0 (the walk ends after it)
};

#define WALK_OK 0
#define WALK_PAST 1 // a header runs past lim
#define WALK_MANY 2 // more than MAX_EXT headers

static __always_inline int walk6(struct xdp_md *ctx, struct work *s, __u64 lim, struct walk *w)
{
	__u64 off = w->off;
	__u32 nh = w->nh;
	for (int i = 0; i <= MAX_EXT; i++) {
		if (!is_ext(nh))
			break;
		if (i == MAX_EXT)
			return WALK_MANY;
		// Every extension header is at least 8 bytes long.
		if (off > MAX_OFF || off + 8 > lim)
			return WALK_PAST;
		const __u8 *h = s->ext;
		if (bpf_xdp_load_bytes(ctx, off, s->ext, 8))
			return WALK_PAST; // cannot happen: lim lies inside the frame
		__u64 hl;
		if (nh == EXT_FRAGMENT) {
			w->frag = 1;
			if (be16(h + 2) >> 3) {
				// A later fragment: what follows is payload, not
				// headers; its next header is the protocol.
				w->later = 1;
				nh = h[0];
				off += 8;
				break;
			}
			hl = 8;
		} else if (nh == EXT_AUTH) {
			hl = ((__u64)h[1] + 2) * 4;
		} else {
			hl = ((__u64)h[1] + 1) * 8;
		}
		if (off + hl > lim)
			return WALK_PAST;
		nh = h[0];
		off += hl;
	}
	w->off = off;
	w->nh = nh;
	return WALK_OK;
}

// csum_blocks is the state of gre_csum_ok's bpf_loop over the whole
// 512-byte blocks (bpf_loop wants it on the stack).
struct csum_blocks {
	struct xdp_md *ctx;
	struct work *s;
	__u64 off;
	__u64 sum;
	__u32 bad;
};

// csum_block adds one 512-byte block (bpf_csum_diff's limit) at c->off.
static long csum_block(__u64 i, void *data)
{
	struct csum_blocks *c = data;
	if (c->off > MAX_OFF || bpf_xdp_load_bytes(c->ctx, c->off, c->s->block, 512)) {
		c->bad = 1;
		return 1;
	}
	__s64 sum = bpf_csum_diff(0, 0, (__be32 *)c->s->block, 512, 0);
	if (sum < 0) {
		c->bad = 1;
		return 1;
	}
	c->sum += (__u32)sum;
	c->off += 512;
	return 0;
}

// gre_csum_ok verifies the GRE checksum over frame[off:rend) (§2): the
// ones' complement sum of the region, checksum field included, is 0xffff.
// It is a global function so that the verifier checks it once, not once
// per path that reaches it.
__attribute__((noinline)) int gre_csum_ok(struct xdp_md *ctx, __u64 off, __u64 rend)
{
	if (off > MAX_OFF || rend > 0xffff || off > rend)
		return 0;
	struct work *s = get_work();
	if (!s)
		return 0; // cannot happen: the map has its one entry on every CPU
	__u64 n = rend - off;
	// Whole 512-byte blocks: at most 127, as n ≤ 0xffff …
	__u32 blocks = n >> 9;
	struct csum_blocks c = {.ctx = ctx, .s = s, .off = off};
	if (bpf_loop(blocks, csum_block, &c, 0) != blocks || c.bad)
		return 0;
	off = c.off;
	__u64 sum = c.sum;
	n &= 511;
	// … then the rest in 256, 128, …, 4 bytes (every piece starts at an
	// even distance from the GRE header, so the 16-bit words line up;
	// unrolled, see the top) …
#pragma clang loop unroll(full)
	for (__u64 size = 256; size >= 4; size >>= 1) {
		if (!(n & size))
			continue;
		if (off > MAX_OFF)
			return 0;
		if (bpf_xdp_load_bytes(ctx, off, s->block, size))
			return 0;
		__s64 part = bpf_csum_diff(0, 0, (__be32 *)s->block, size, 0);
		if (part < 0)
			return 0;
		sum += (__u32)part;
		off += size;
	}
	// … and the last 1–3 bytes, an odd one padded with a zero byte. The
	// sums are of little-endian words; 0xffff reads the same both ways.
	if (off > MAX_OFF)
		return 0;
	if (n & 2) {
		if (bpf_xdp_load_bytes(ctx, off, s->ext, 2))
			return 0;
		sum += (__u32)s->ext[0] | ((__u32)s->ext[1] << 8);
		off += 2;
	}
	if (n & 1) {
		if (bpf_xdp_load_bytes(ctx, off, s->ext, 1))
			return 0;
		sum += s->ext[0];
	}
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffffffff) + (sum >> 32);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return sum == 0xffff;
}

#define INNER_V6 1  // the inner packet is IPv6
#define INNER_GRE 2 // it came out of a GRE tunnel (GRE form)

// inner_decide is §3 for the inner packet in frame[off:rend), rend ≤ the
// frame's length (every caller has checked it). It is a global function
// (verified once, on its own) because four paths lead to it: plain IPv4,
// plain IPv6, GRE over IPv4 and GRE over IPv6.
__attribute__((noinline)) int inner_decide(struct xdp_md *ctx, __u64 off, __u64 rend, __u32 how)
{
	if (off > MAX_OFF || off > rend)
		return OURS; // cannot happen: the caller's region lies inside the frame
	struct work *s = get_work();
	if (!s)
		return OURS; // cannot happen
	__u64 region = rend - off;
	// The fixed inner IP header goes to s->hdr, with the 4 bytes after it
	// when the region has them ("more"): without IPv4 options or IPv6
	// extension headers those are the ports (or the ICMP type), read with
	// the header in one helper call.
	const __u8 *p = s->hdr;
	__u64 fixed; // where the fixed header ends
	int more;
	__u16 next_port = 0; // the destination port, if the ports follow at fixed
	__u32 next_type = 0; // the ICMP type, if the ICMP header follows at fixed
	int v6 = how & INNER_V6;
	__u32 proto;
	__u64 l4, pend;

	if (!v6) {
		// §3.1 IPv4.
		if (region < 20)
			return OURS; // malformed
		more = region >= 24;
		if (more ? bpf_xdp_load_bytes(ctx, off, s->hdr, 24)
			 : bpf_xdp_load_bytes(ctx, off, s->hdr, 20))
			return OURS; // cannot happen: the region lies inside the frame
		if (more) {
			next_port = raw16(p + 22);
			next_type = p[20];
		}
		fixed = off + 20;
		__u32 vihl = p[0];
		__u64 ihl = (vihl & 0x0f) * 4;
		if ((vihl >> 4) != 4 || ihl < 20)
			return OURS; // malformed
		__u64 tot = be16(p + 2);
		if (ihl > tot || tot > region)
			return OURS; // malformed
		// §3.2.
		addr4(&s->dst, raw32(p + 16));
		if ((how & INNER_GRE) && !bpf_map_lookup_elem(&vips, &s->dst))
			return NO_SERVICE;
		// §3.3, §3.4: a later fragment goes to the VIP's default
		// service (§3.6), which every VIP has.
		if (be16(p + 6) & 0x1fff)
			return OURS;
		proto = p[9];
		l4 = off + ihl;
		pend = off + tot;
	} else {
		// §3.1 IPv6.
		if (region < IP6_LEN)
			return OURS; // malformed
		more = region >= IP6_LEN + 4;
		if (more ? bpf_xdp_load_bytes(ctx, off, s->hdr, IP6_LEN + 4)
			 : bpf_xdp_load_bytes(ctx, off, s->hdr, IP6_LEN))
			return OURS; // cannot happen: the region lies inside the frame
		if (more) {
			next_port = raw16(p + IP6_LEN + 2);
			next_type = p[IP6_LEN];
		}
		fixed = off + IP6_LEN;
		if ((p[0] >> 4) != 6)
			return OURS; // malformed
		__u64 plen = be16(p + 4);
		if (IP6_LEN + plen > region)
			return OURS; // malformed
		// §3.2.
		int ok6 = addr6(&s->dst, p + 24);
		if ((how & INNER_GRE) && (!ok6 || !bpf_map_lookup_elem(&vips, &s->dst)))
			return NO_SERVICE;
		// §3.3: the walk's failures are drops (malformed, unsupported).
		pend = off + IP6_LEN + plen;
		struct walk w = {.off = off + IP6_LEN, .nh = p[6]};
		if (walk6(ctx, s, pend, &w) != WALK_OK)
			return OURS;
		if (w.later)
			return OURS; // §3.4 → §3.6, as for IPv4
		proto = w.nh;
		l4 = w.off;
	}

	// §3.4 ports (dport stays in wire order: it is a map key).
	__u16 dport = 0;
	if (l4 > MAX_OFF)
		return OURS; // cannot happen (see MAX_OFF)
	more = more && l4 == fixed; // next_port and next_type are this header's
	if (proto == PROTO_TCP || proto == PROTO_UDP) {
		if (l4 + 4 > pend)
			return OURS; // malformed
		if (more)
			dport = next_port;
		else if (bpf_xdp_load_bytes(ctx, l4, s->ext, 4))
			return OURS; // cannot happen: pend lies inside the frame
		else
			dport = raw16(s->ext + 2);
	} else if (proto == (v6 ? PROTO_ICMP6 : PROTO_ICMP) && l4 + 1 <= pend) {
		__u32 type = next_type;
		if (!more) {
			if (bpf_xdp_load_bytes(ctx, l4, s->ext, 1))
				return OURS; // cannot happen
			type = s->ext[0];
		}
		if (type == (v6 ? 128 : 8))
			return OURS; // echo request: a match or the default service
		int err = v6 ? (type >= 1 && type <= 3) : (type == 3 || type == 11);
		if (err) {
			// The embedded packet (the backend's, from the VIP):
			// the flow is its reverse, so the destination port is
			// its source port and the protocol is its protocol. Its
			// header goes to s->hdr: the inner one is not needed any
			// more.
			__u64 e = l4 + 8, et;
			if (e > pend || e > MAX_OFF)
				return OURS; // malformed
			const __u8 *q = s->hdr;
			if (!v6) {
				if (pend - e < 20 || bpf_xdp_load_bytes(ctx, e, s->hdr, 20))
					return OURS; // malformed
				__u32 vihl = q[0];
				__u64 ihl = (vihl & 0x0f) * 4;
				if ((vihl >> 4) != 4 || ihl < 20 || ihl > be16(q + 2))
					return OURS; // malformed
				proto = q[9];
				et = e + ihl;
			} else {
				if (pend - e < IP6_LEN || bpf_xdp_load_bytes(ctx, e, s->hdr, IP6_LEN))
					return OURS; // malformed
				if ((q[0] >> 4) != 6)
					return OURS; // malformed
				// Its extension headers, inside what was quoted.
				struct walk ew = {.off = e + IP6_LEN, .nh = q[6]};
				if (walk6(ctx, s, pend, &ew) != WALK_OK)
					return OURS; // malformed
				proto = ew.nh;
				et = ew.off;
			}
			if (et + 4 > pend || et > MAX_OFF)
				return OURS; // malformed: no 4 bytes of transport header
			if (bpf_xdp_load_bytes(ctx, et, s->ext, 4))
				return OURS; // cannot happen
			if (proto == PROTO_TCP || proto == PROTO_UDP)
				dport = raw16(s->ext);
		}
	}

	// §3.5.
	return has_service(s, dport, proto) ? OURS : NO_SERVICE;
}

// gre is §2 for a GRE header at frame[off:rend), then §3 (GRE form).
static __always_inline int gre(struct xdp_md *ctx, struct work *s, const __u8 *data,
			       const __u8 *end, __u64 off, __u64 rend)
{
	if (off > MAX_OFF || off + 4 > rend)
		return OURS; // malformed: no GRE header
	const __u8 *g = s->ext;
	// Where it usually is (after an IPv4 header without options, or an
	// IPv6 one without extension headers) the offset is a constant: read
	// it from the packet.
	if (off == ETH_LEN + 20 && data + ETH_LEN + 20 + 4 <= end)
		g = data + ETH_LEN + 20;
	else if (off == ETH_LEN + IP6_LEN && data + ETH_LEN + IP6_LEN + 4 <= end)
		g = data + ETH_LEN + IP6_LEN;
	else if (bpf_xdp_load_bytes(ctx, off, s->ext, 4))
		return OURS; // cannot happen: rend lies inside the frame
	__u32 flags = be16(g);
	__u32 gp = be16(g + 2);
	if (flags & ~(__u32)0xb000)
		return OURS; // unsupported: routing, strict, recursion, reserved, version
	__u64 glen = 4;
	if (flags & 0x8000)
		glen += 4;
	if (flags & 0x2000)
		glen += 4;
	if (flags & 0x1000)
		glen += 4;
	if (off + glen > rend)
		return OURS; // malformed
	__u32 how = INNER_GRE;
	if (gp == 0x86dd)
		how |= INNER_V6;
	else if (gp != 0x0800)
		return OURS; // unsupported
	if ((flags & 0x8000) && !gre_csum_ok(ctx, off, rend))
		return OURS; // malformed: bad checksum
	return inner_decide(ctx, off + glen, rend, how);
}

static __always_inline int decide(struct xdp_md *ctx, struct work *s)
{
	const __u8 *data = (const __u8 *)(long)ctx->data;
	const __u8 *end = (const __u8 *)(long)ctx->data_end;

	// §1.1.
	if (data + ETH_LEN > end)
		return NOT_IP;
	__u32 etype = be16(data + 12);
	__u64 len; // data_end - data (see the top), once a frame may be ours

	if (etype == 0x0800) {
		// §1.2.
		if (data + ETH_LEN + 20 > end)
			return NOT_OURS;
		const __u8 *ip = data + ETH_LEN;
		addr4(&s->dst, raw32(ip + 16));
		if (ip[9] == PROTO_GRE && bpf_map_lookup_elem(&locals, &s->dst)) {
			len = bpf_xdp_get_buff_len(ctx);
			__u32 vihl = ip[0];
			__u64 ihl = (vihl & 0x0f) * 4;
			if ((vihl >> 4) != 4 || ihl < 20 || ETH_LEN + ihl > len)
				return OURS; // malformed
			__u64 tot = be16(ip + 2);
			if (tot < ihl + 4 || ETH_LEN + tot > len)
				return OURS; // malformed
			if (be16(ip + 6) & 0x3fff)
				return OURS; // fragment
			return gre(ctx, s, data, end, ETH_LEN + ihl, ETH_LEN + tot);
		}
		if (bpf_map_lookup_elem(&vips, &s->dst))
			return inner_decide(ctx, ETH_LEN, bpf_xdp_get_buff_len(ctx), 0); // plain form
		return NOT_OURS;
	}

	if (etype == 0x86dd) {
		// §1.3.
		if (data + ETH_LEN + IP6_LEN > end)
			return NOT_OURS;
		const __u8 *ip6 = data + ETH_LEN;
		if (!addr6(&s->dst, ip6 + 24))
			return NOT_OURS; // IPv4-mapped: nobody's IPv6 address
		if (bpf_map_lookup_elem(&locals, &s->dst)) {
			len = bpf_xdp_get_buff_len(ctx);
			__u64 plen = be16(ip6 + 4);
			if ((ip6[0] >> 4) != 6 || ETH_LEN + IP6_LEN + plen > len)
				return NOT_OURS;
			__u64 rend = ETH_LEN + IP6_LEN + plen;
			struct walk w = {.off = ETH_LEN + IP6_LEN, .nh = ip6[6]};
			if (walk6(ctx, s, rend, &w) != WALK_OK)
				return NOT_OURS;
			if (w.nh != PROTO_GRE)
				return NOT_OURS; // SSH, BGP, … over IPv6
			if (w.frag)
				return OURS; // fragment
			return gre(ctx, s, data, end, w.off, rend);
		}
		if (bpf_map_lookup_elem(&vips, &s->dst))
			return inner_decide(ctx, ETH_LEN, bpf_xdp_get_buff_len(ctx), INNER_V6); // plain form
		return NOT_OURS;
	}

	return NOT_IP; // §1.4
}

// steer redirects our frames to the AF_XDP socket of the receiving queue;
// with no socket registered there, bpf_redirect_map falls back to XDP_PASS.
SEC("xdp")
int steer(struct xdp_md *ctx)
{
	struct work *s = get_work();
	if (!s)
		return XDP_PASS; // cannot happen: the map has its one entry on every CPU
	__u32 d = decide(ctx, s);
	if (d == OURS)
		return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
	if (d >= PASS_REASONS)
		return XDP_PASS; // cannot happen
	s->pass = (ctx->rx_queue_index % MAX_QUEUES) * PASS_REASONS + d;
	__u64 *n = bpf_map_lookup_elem(&passes, &s->pass);
	if (n)
		*n += 1;
	return XDP_PASS;
}

// steer_probe is the same decision, answered as its code (OURS or the
// pass reason) so that BPF_PROG_TEST_RUN can observe it without a socket in
// the XSKMAP and without counting. Never attached.
SEC("xdp")
int steer_probe(struct xdp_md *ctx)
{
	struct work *s = get_work();
	if (!s)
		return OURS; // cannot happen
	return decide(ctx, s);
}
