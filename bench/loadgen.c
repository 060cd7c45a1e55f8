//go:build ignore

// loadgen: the XDP half of railbench's generator and sink (see doc.go).
//
// gen is never attached: railbench runs it with BPF_PROG_TEST_RUN in live
// frame mode (BPF_F_TEST_XDP_LIVE_FRAMES), so every run turns the template
// frame into one real frame that XDP_TX sends out of the interface named in
// the run's context. Per frame it picks the flow (sequence number modulo
// flows), writes the inner source address and port of that flow, fixes the
// inner IPv4 checksum and stamps the payload with a magic word, the
// sequence number and the CLOCK_MONOTONIC transmit time.
//
// sink is attached to the generator's interface: every IPv4 frame that is
// not addressed to the generator itself (forwarded GRE to a backend, or a
// plain packet the kernel routed back) goes to the AF_XDP socket of the
// receiving queue; the rest (ARP, ICMP to us) stays with the kernel.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char __license[] SEC("license") = "Dual BSD/GPL";

// Set by railbench before loading (wire byte order where an address).
volatile const __u32 gen_flows = 1;      // flows to cycle through (>= 1)
volatile const __u32 gen_gre = 1;        // 1: GRE-in template, 0: plain
volatile const __u32 gen_stamp_off = 78; // payload offset of the stamp
volatile const __u32 sink_local = 0;     // the generator's own IPv4 address
// The template's headers (Ethernet through TCP: 78 bytes GRE, 54 plain),
// written into every frame before it is stamped. Live-frame test runs
// reuse their pages without copying the template in again, and a page
// comes back to the generator after whoever received the frame changed
// it in place (XDP_TX re-targets the outer header, kernel forwarding
// decrements the TTL): without this the generator would send those
// changed headers again. Copied in 8-byte words: 80 bytes for GRE (78
// of headers), 56 plain (54); the stamp written afterwards covers the
// overlap. In .data, not .rodata: a constant would be folded.
__u64 gen_hdr[10] = {1};

#define STAMP_MAGIC 0x52424c31 // "RBL1"

// gen_state is shared by every generator thread (railbench runs two flat
// out, so that one sends while the other's test run is torn down). seq
// counts the frames sent. With gap != 0 frames leave gap nanoseconds apart:
// a run before the next departure time sends nothing (XDP_DROP, a few ns:
// the test run loops on, and stays preemptible, instead of spinning inside
// the program); a run that finds the departure time slack nanoseconds past
// moves the schedule to now instead of sending a catch-up burst (a burst
// would be loss the generator caused). limit != 0 stops at limit frames.
struct gen_state {
	__u64 seq;
	__u64 next;
	__u64 gap;
	__u64 slack;
	__u64 limit;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct gen_state);
} state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

static __always_inline __u16 csum20(const __u8 *ip)
{
	__u32 sum = 0;
#pragma unroll
	for (int i = 0; i < 20; i += 2) {
		if (i == 10)
			continue; // the checksum field itself
		sum += ((__u32)ip[i] << 8) | ip[i + 1];
	}
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	return (__u16)~sum;
}

SEC("xdp")
int gen(struct xdp_md *ctx)
{
	__u8 *data = (__u8 *)(long)ctx->data;
	__u8 *end = (__u8 *)(long)ctx->data_end;
	__u32 k = 0;
	struct gen_state *st = bpf_map_lookup_elem(&state, &k);
	if (!st)
		return XDP_ABORTED;
	if (st->limit && st->seq >= st->limit)
		return XDP_DROP;
	__u64 gap = st->gap;
	if (gap) {
		__u64 now = bpf_ktime_get_ns();
		__u64 t = st->next;
		if (now < t)
			return XDP_DROP;
		__u64 n = (t + st->slack < now ? now : t) + gap;
		if (__sync_val_compare_and_swap(&st->next, t, n) != t)
			return XDP_DROP; // the other thread took this departure

	}
	__u64 seq = __sync_fetch_and_add(&st->seq, 1);
	__u32 flows = gen_flows ? gen_flows : 1;
	__u32 f = (__u32)(seq % flows);

	__u8 *ip = data + 14;
	if (data + 56 > end)
		return XDP_ABORTED;
	__u64 *w = (__u64 *)data;
#pragma unroll
	for (int i = 0; i < 7; i++)
		w[i] = gen_hdr[i];
	if (gen_gre) {
		if (data + 80 > end)
			return XDP_ABORTED;
		w[7] = gen_hdr[7];
		w[8] = gen_hdr[8];
		w[9] = gen_hdr[9];
		ip = data + 14 + 20 + 4;
	}
	if (ip + 24 > end)
		return XDP_ABORTED;
	// Flow f: source 198.18.0.0 + (f mod 2^17) inside 198.18.0.0/15, source
	// port 1024 + f>>17.
	ip[12] = 198;
	ip[13] = 18 + ((f >> 16) & 1);
	ip[14] = (__u8)(f >> 8);
	ip[15] = (__u8)f;
	__u16 c = csum20(ip);
	ip[10] = c >> 8;
	ip[11] = c & 0xff;
	__u16 sport = 1024 + (__u16)(f >> 17);
	ip[20] = sport >> 8;
	ip[21] = sport & 0xff;

	__u32 off = gen_stamp_off;
	if (off > 1600)
		return XDP_ABORTED;
	__u8 *s = data + off;
	if (s + 16 > end)
		return XDP_ABORTED;
	__u32 magic = STAMP_MAGIC;
	__u32 seq32 = (__u32)seq;
	__u64 now = bpf_ktime_get_ns();
	__builtin_memcpy(s, &magic, 4);
	__builtin_memcpy(s + 4, &seq32, 4);
	__builtin_memcpy(s + 8, &now, 8);
	return XDP_TX;
}

SEC("xdp")
int sink(struct xdp_md *ctx)
{
	const __u8 *data = (const __u8 *)(long)ctx->data;
	const __u8 *end = (const __u8 *)(long)ctx->data_end;
	if (data + 34 > end)
		return XDP_PASS;
	if (data[12] != 0x08 || data[13] != 0x00)
		return XDP_PASS;
	__u32 dst;
	__builtin_memcpy(&dst, data + 30, 4);
	if (dst == sink_local)
		return XDP_PASS;
	return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
}
