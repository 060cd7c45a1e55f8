// Package rings is Rail's AF_XDP layer: one Socket per NIC queue with its
// own UMEM and four rings, and the XDP steering program that decides which
// frames are ours. It is the only package that touches mmap'd memory or
// unsafe; callers see frames as []byte and descriptors as Desc values.
//
// # Memory
//
// The UMEM is FrameCount frames of FrameSize bytes (aligned chunk mode).
// A frame is named by its UMEM offset ("address"); the frame holding an
// address a starts at FrameBase(a) = a &^ (FrameSize-1). Frame(a) returns
// that whole frame and a's offset in it, so a worker can move the start of
// a packet (prepend an outer header into the headroom) and still name it:
// Desc{Addr: FrameBase(a) + newOff, Len: n}.
//
// # The life of a frame: fill → rx → tx → completion
//
// Every frame starts on the socket's free stack (a fixed []uint64, O(1)
// push/pop). Open and then every Service call move free frames to the
// fill ring: the kernel may write a received packet into them.
//
//  1. fill: we produce addresses, the kernel consumes them when packets
//     arrive. If the fill ring's need_wakeup flag is set (zero-copy
//     drivers set it when they ran dry), Service kicks with
//     recvfrom(MSG_DONTWAIT).
//  2. rx: the kernel produces a Desc for each received packet — the
//     address of the data inside a frame it took from fill, and the
//     length. Receive consumes up to len(descs) of them; the caller now
//     holds those frames.
//  3. tx: Transmit produces descriptors of held frames (same frame, data
//     possibly moved inside it). The kernel consumes them and sends. If
//     the tx ring's need_wakeup flag is set — always so in copy mode —
//     Transmit kicks once with sendto(MSG_DONTWAIT). In copy mode the
//     kernel sends a bounded batch per kick, so Service kicks again while
//     descriptors remain on the tx ring and the flag is set.
//     A held frame that is not transmitted (dropped, or refused because
//     the tx ring was full) goes back with Recycle. A transmit-only user
//     (a generator) gets held frames without receiving them from Take,
//     which pops free frames: those the fill ring has no room for, so
//     such a socket is opened with FillSize below FrameCount.
//  4. completion: the kernel produces the address of each frame it has
//     finished sending; Service reaps them onto the free stack, and the
//     next refill hands them to the fill ring again.
//
// Each ring is single-producer/single-consumer with free-running uint32
// indices and a power-of-two mask. Producer and consumer indices are read
// with atomic loads (acquire) and written with atomic stores (release) —
// the kernel on another CPU must never see an index before the entries it
// covers, nor overwrite entries we are still reading — and each side keeps
// cached copies so that the shared cache lines are touched only when the
// cached view runs out or when it publishes.
//
// # Frame accounting
//
// Every frame is in exactly one place, and Frames reports
// {Free, Fill, Rx, Held, Tx, Completion} summing to FrameCount:
//
//   - Free: on the free stack.
//   - Fill: on the fill ring, or taken from it by the kernel and not yet
//     written to rx (the kernel's private caches count here: a frame is
//     counted on the side it came from until it appears on the next ring).
//   - Rx: on the rx ring, not yet Received.
//   - Held: returned by Receive, not yet Transmitted or Recycled.
//   - Tx: on the tx ring, or taken from it and still being sent.
//   - Completion: on the completion ring, not yet reaped by Service.
//
// The worker keeps free, held and "out on tx" counts and publishes them as
// one atomic word after every call; Frames (safe from any goroutine, e.g.
// a metrics scrape) derives "out on fill" as the remainder and splits the
// two outstanding counts with the rings' shared indices, so the sum is
// always exact even while the worker runs. A per-frame state byte makes
// the socket refuse — and count in Stats — a Recycle of a frame the caller
// doesn't hold, a Transmit of such a frame or of a descriptor reaching
// past its frame, and addresses from the kernel it never handed out.
// Without that check a caller's double recycle would corrupt the free
// stack, and an invalid tx descriptor would be swallowed by the kernel
// (counted in tx_invalid_descs, never completed) and leak its frame.
//
// Receive, Transmit, Recycle and Service allocate nothing and make at most
// one system call each, only when a need_wakeup flag asks for it.
//
// # Busy polling
//
// With Opts.BusyPoll, Open sets SO_PREFER_BUSY_POLL, SO_BUSY_POLL and
// SO_BUSY_POLL_BUDGET (the batch, 64) on the socket, and in copy mode
// XDP_MAX_TX_SKB_BUDGET (64, Linux ≥ 6.17), so that the worker's own
// non-blocking sendto/recvfrom run the queue's NAPI — the driver's rx
// and tx work — in the worker's thread, a budget at a time, while the
// kernel defers its own run of that NAPI (the device's
// napi_defer_hard_irqs and gro_flush_timeout, which raild sets per NAPI
// with NAPI_SET). Transmit then never kicks, and Service makes the one
// system call of a worker iteration: sendto while descriptors wait on the
// tx ring (it busy polls rx first), else recvfrom when the rx ring is
// empty or the fill ring asks, else none — at most one per batch.
//
// The kernel busy polls the NAPI whose id the socket took from its queue
// when it was bound (Linux ≥ 6.13: xsk_bind reads the rx queue's NAPI,
// which the driver set with netif_queue_set_napi). A socket whose id is 0
// cannot be busy polled — every call would return at once while the
// kernel's softirq or NAPI thread does the work — so Open falls back to
// need_wakeup kicks and BusyPoll() says why (ErrNoNAPI). That is the case
// on veth (Linux 6.18, measured by TestVethBusyPoll): its NAPI exists
// while an XDP program is attached and NAPI_SET configures it, but the
// veth links none of its queues to it (NETDEV_CMD_QUEUE_GET shows no
// napi-id), so SO_INCOMING_NAPI_ID stays 0; forced to busy poll anyway,
// 2000 frames took 179 to 4754 calls (two runs) with BusyPollRxPackets
// unchanged and the veth's NAPI thread doing the receive work. NAPIs,
// GetNAPI, SetNAPI and QueueNAPI speak the netdev netlink family for this.
//
// # Headroom (measured)
//
// The kernel writes received data XDP_PACKET_HEADROOM (256) bytes past
// the UMEM headroom (Opts.Headroom) into the frame. Measured in copy mode
// on veth, Linux 6.18 (TestVethTraffic): with DefaultOpts (Headroom 0)
// every rx Desc pointed 256 bytes into its frame; with FrameSize 2048 and
// Headroom 128, 384 bytes. So the default leaves 256 bytes in front of
// every packet — four times the 64 bytes the pipeline needs to prepend an
// outer Ethernet+IPv4+GRE header — and 3840 bytes (4096-byte frames) for
// the packet itself. Zero-copy drivers use the same xsk_buff layout; not
// measured here (no such NIC on the test machine).
//
// # Zero copy
//
// Open with ZeroCopyAuto binds with XDP_ZEROCOPY and falls back to
// XDP_COPY (a fresh socket and UMEM) if the driver refuses; ZeroCopy()
// reports what the kernel granted (XDP_OPTIONS). veth only does copy mode.
//
// # Steering: steer.c
//
// The XDP program implements the "ours or not ours" half of
// docs/verdicts.md: every pass row is XDP_PASS (the kernel keeps ARP, SSH,
// BGP, health checks, and VIP traffic that matches no service); every tx
// and drop row is bpf_redirect_map(&xsks, rx_queue_index, XDP_PASS) — the
// Go pipeline makes the rest of the decision, so the kernel never sees a
// malformed or fragmented frame to a VIP. Its maps are filled from Go:
// locals (GRE destinations), vips (derived from the services), services
// ({vip, port, proto}, port 0 and proto 0 = any, looked up in the
// document's order) and xsks (queue → socket). Addresses are 16-byte keys
// of either family (IPv4 as ::ffff:a.b.c.d); keys hold addresses and ports
// in wire byte order. Frames it passes are counted per queue, CPU and
// reason in the passes map (PassCounts), since the pipeline never sees them.
//
// Attach uses a bpf_link: when the last file descriptor of the link goes
// away — Close, or the daemon dying, even by SIGKILL — the kernel detaches
// the program and the NIC is the kernel's again (TestLinkDiesWithProcess).
//
// Run and Classify test a frame with BPF_PROG_TEST_RUN. They run
// steer_probe, which shares steer's decide() function but returns its
// answer (ours, or the pass reason) as the return code, because
// steer's bpf_redirect_map answers XDP_PASS whenever no socket is
// registered for the queue, which would hide the decision.
// TestVethTraffic shows that steer itself, with a socket registered,
// redirects exactly the frames steer_probe calls ours.
//
// # Without a kernel
//
// OpenMemory makes a Socket over ordinary memory (rings.Memory), with no
// file descriptor; package ringstest plays the kernel's side of its rings,
// a step at a time. The accounting above and the loop that drives a socket
// (pipeline.Loop: batch boundaries, a full tx ring) are tested that way
// without privileges, and again on a veth by the privileged tests.
//
// # Privileges
//
// Open needs CAP_NET_RAW and, for the UMEM, CAP_IPC_LOCK or enough
// RLIMIT_MEMLOCK; LoadSteer and Attach need CAP_BPF and CAP_NET_ADMIN. The
// tests that need them skip without root unless CI is set, in which case
// they fail instead of skipping.
package rings
