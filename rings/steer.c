//go:build ignore

// steer: the XDP half of Rail's "ours or not ours" decision.
//
// It implements docs/verdicts.md for the XDP program: every `pass` row is
// XDP_PASS (the kernel keeps the frame), every `tx` and `drop` row is a
// redirect to the AF_XDP socket of the receiving queue, where the Go
// pipeline decides the rest. The step numbers below are the document's.
//
// Map keys hold addresses and ports exactly as they appear on the wire
// (network byte order), so no byte swapping is needed on either side.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char __license[] SEC("license") = "Dual BSD/GPL";

struct service_key {
	__u32 vip;   // network byte order
	__u16 port;  // network byte order; 0 = any port
	__u8 proto;  // 0 = any protocol
	__u8 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 256);
	__type(key, __u32);
	__type(value, __u8);
} locals SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__type(key, __u32);
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
#define IPPROTO_GRE_ 47
#define IPPROTO_TCP_ 6
#define IPPROTO_UDP_ 17

static __always_inline __u16 be16(const __u8 *p) { return ((__u16)p[0] << 8) | p[1]; }

static __always_inline __u32 raw32(const __u8 *p)
{
	__u32 v;
	__builtin_memcpy(&v, p, 4);
	return v;
}

static __always_inline int is_vip(__u32 addr) { return bpf_map_lookup_elem(&vips, &addr) != 0; }

static __always_inline int has_service(__u32 dst, __u16 dport, __u8 proto)
{
	struct service_key k = {.vip = dst, .port = dport, .proto = proto, .pad = 0};
	if (bpf_map_lookup_elem(&services, &k))
		return 1;
	k.proto = 0;
	if (bpf_map_lookup_elem(&services, &k))
		return 1;
	k.port = 0;
	k.proto = proto;
	if (bpf_map_lookup_elem(&services, &k))
		return 1;
	k.proto = 0;
	return bpf_map_lookup_elem(&services, &k) != 0;
}

// Step 6: the inner packet occupies [in, in+region). gre says whether it
// came out of a GRE tunnel (then a non-VIP inner destination is not ours).
static __always_inline int inner(const __u8 *in, __u32 region, const __u8 *end, int gre)
{
	if (region < 20)
		return OURS; // malformed
	if (in + 20 > end)
		return OURS; // cannot happen: region lies inside the frame
	__u8 vihl = in[0];
	__u32 ihl = (__u32)(vihl & 0x0f) * 4;
	if ((vihl >> 4) != 4 || ihl < 20 || ihl > region)
		return OURS; // malformed
	__u32 tot = be16(in + 2);
	if (tot < ihl || tot > region)
		return OURS; // malformed
	__u32 dst = raw32(in + 16);
	if (gre && !is_vip(dst))
		return NO_SERVICE; // pass no_service
	if (be16(in + 6) & 0x3fff)
		return OURS; // fragment (MF or offset)
	__u8 proto = in[9];
	__u16 dport = 0;
	if (proto == IPPROTO_TCP_ || proto == IPPROTO_UDP_) {
		if (ihl + 4 > tot)
			return OURS; // malformed
		const __u8 *l4 = in + ihl;
		if (l4 + 4 > end)
			return OURS; // cannot happen: tot lies inside the frame
		__builtin_memcpy(&dport, l4 + 2, 2);
	}
	if (!has_service(dst, dport, proto))
		return NO_SERVICE; // pass no_service
	return OURS;         // tx, or drop no_backend
}

static __always_inline int decide(struct xdp_md *ctx)
{
	const __u8 *data = (const __u8 *)(long)ctx->data;
	const __u8 *end = (const __u8 *)(long)ctx->data_end;

	// Steps 1 and 2.
	if (data + ETH_LEN > end)
		return NOT_IP;
	if (data[12] != 0x08 || data[13] != 0x00)
		return NOT_IP;
	if (data + ETH_LEN + 20 > end)
		return NOT_OURS;
	__u32 len = end - data;
	const __u8 *ip = data + ETH_LEN;
	__u32 dst = raw32(ip + 16);
	__u8 proto = ip[9];

	// Step 4: GRE to one of our local addresses.
	if (proto == IPPROTO_GRE_ && bpf_map_lookup_elem(&locals, &dst)) {
		__u8 vihl = ip[0];
		__u32 ihl = (__u32)(vihl & 0x0f) * 4;
		if ((vihl >> 4) != 4 || ihl < 20 || ETH_LEN + ihl > len)
			return OURS; // malformed
		__u32 tot = be16(ip + 2);
		if (tot < ihl + 4 || ETH_LEN + tot > len)
			return OURS; // malformed
		if (be16(ip + 6) & 0x3fff)
			return OURS; // fragment
		const __u8 *gre = ip + ihl;
		if (gre + 4 > end)
			return OURS; // cannot happen: tot >= ihl+4 lies inside the frame
		__u16 flags = be16(gre);
		if (flags & ~(__u16)0xb000)
			return OURS; // unsupported: routing, strict, recursion, reserved, version
		__u32 glen = 4;
		if (flags & 0x8000)
			glen += 4;
		if (flags & 0x2000)
			glen += 4;
		if (flags & 0x1000)
			glen += 4;
		if (ihl + glen > tot)
			return OURS; // malformed
		if (be16(gre + 2) != 0x0800)
			return OURS; // unsupported
		return inner(gre + glen, tot - ihl - glen, end, 1);
	}

	// Step 5: plain packet to a VIP; the inner region runs to the frame's end.
	if (is_vip(dst))
		return inner(ip, len - ETH_LEN, end, 0);
	return NOT_OURS; // not_ours
}

// steer redirects our frames to the AF_XDP socket of the receiving queue;
// with no socket registered there, bpf_redirect_map falls back to XDP_PASS.
SEC("xdp")
int steer(struct xdp_md *ctx)
{
	int d = decide(ctx);
	if (d == OURS)
		return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
	__u32 k = (ctx->rx_queue_index % MAX_QUEUES) * PASS_REASONS + (__u32)d;
	__u64 *n = bpf_map_lookup_elem(&passes, &k);
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
	return decide(ctx);
}
