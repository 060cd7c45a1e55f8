//go:build ignore

// xdptx: the in-kernel rows of `railbench compare` (see doc.go).
//
// retarget is the ceiling for Rail's path on a machine: every GRE frame to
// the node's local address gets the outer header Rail would write — source
// the local address, destination one fixed backend, TTL 64, a fresh
// checksum, the Ethernet addresses swapped (next_hop ingress) — and leaves
// with XDP_TX. No parsing of the inner packet, no hashing, no table: only
// what any forwarder of this path must do per frame. Everything else
// passes to the kernel.
//
// pass is an XDP program that does nothing. On a veth, an attached program
// is what makes the receiving side use NAPI (which can then run threaded,
// on a chosen CPU, with its own thread times); the kernel-forwarding row
// attaches it so that its cost is measured the same way as the others.

#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char __license[] SEC("license") = "Dual BSD/GPL";

volatile const __u32 local_addr = 0; // wire byte order
volatile const __u32 backend_addr = 0;

SEC("xdp")
int retarget(struct xdp_md *ctx)
{
	__u8 *data = (__u8 *)(long)ctx->data;
	__u8 *end = (__u8 *)(long)ctx->data_end;
	if (data + 14 + 20 + 4 > end)
		return XDP_PASS;
	if (data[12] != 0x08 || data[13] != 0x00)
		return XDP_PASS;
	__u8 *ip = data + 14;
	if (ip[0] != 0x45 || ip[9] != 47)
		return XDP_PASS;
	__u32 dst;
	__builtin_memcpy(&dst, ip + 16, 4);
	if (dst != local_addr)
		return XDP_PASS;

	__u8 mac[6];
	__builtin_memcpy(mac, data, 6);
	__builtin_memcpy(data, data + 6, 6);
	__builtin_memcpy(data + 6, mac, 6);

	__u32 src = local_addr, bk = backend_addr;
	__builtin_memcpy(ip + 12, &src, 4);
	__builtin_memcpy(ip + 16, &bk, 4);
	ip[8] = 64;
	ip[10] = 0;
	ip[11] = 0;
	__u32 sum = 0;
#pragma unroll
	for (int i = 0; i < 20; i += 2)
		sum += ((__u32)ip[i] << 8) | ip[i + 1];
	sum = (sum & 0xffff) + (sum >> 16);
	sum = (sum & 0xffff) + (sum >> 16);
	__u16 c = ~sum;
	ip[10] = c >> 8;
	ip[11] = c & 0xff;
	return XDP_TX;
}

// bounce is the lab's ceiling (the loopback row): every IPv4 frame goes
// straight back with XDP_TX, Ethernet addresses swapped, nothing else.
SEC("xdp")
int bounce(struct xdp_md *ctx)
{
	__u8 *data = (__u8 *)(long)ctx->data;
	__u8 *end = (__u8 *)(long)ctx->data_end;
	if (data + 14 > end)
		return XDP_PASS;
	if (data[12] != 0x08 || data[13] != 0x00)
		return XDP_PASS;
	__u8 mac[6];
	__builtin_memcpy(mac, data, 6);
	__builtin_memcpy(data, data + 6, 6);
	__builtin_memcpy(data + 6, mac, 6);
	return XDP_TX;
}

SEC("xdp")
int pass(struct xdp_md *ctx)
{
	return XDP_PASS;
}
