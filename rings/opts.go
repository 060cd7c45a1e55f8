package rings

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/rail-lb/rail/internal/pow2"
)

// ZeroCopy selects how Open binds the socket to the NIC queue.
type ZeroCopy int

const (
	// ZeroCopyAuto tries XDP_ZEROCOPY and falls back to XDP_COPY.
	ZeroCopyAuto ZeroCopy = iota
	// ZeroCopyOn requires XDP_ZEROCOPY; Open fails if the driver can't.
	ZeroCopyOn
	// ZeroCopyOff always binds with XDP_COPY.
	ZeroCopyOff
)

func (z ZeroCopy) String() string {
	switch z {
	case ZeroCopyAuto:
		return "auto"
	case ZeroCopyOn:
		return "on"
	case ZeroCopyOff:
		return "off"
	}
	return fmt.Sprintf("ZeroCopy(%d)", int(z))
}

// ParseZeroCopy parses the configuration spelling "auto", "on" or "off".
func ParseZeroCopy(s string) (ZeroCopy, error) {
	switch s {
	case "auto":
		return ZeroCopyAuto, nil
	case "on":
		return ZeroCopyOn, nil
	case "off":
		return ZeroCopyOff, nil
	}
	return 0, fmt.Errorf("rings: zero_copy %q: want auto, on or off", s)
}

// XDPMode selects how Steer.Attach hooks the program into the NIC.
type XDPMode int

const (
	// XDPAuto tries native (driver) mode, then generic (SKB) mode.
	XDPAuto XDPMode = iota
	// XDPNative attaches in the driver's receive path (XDP_FLAGS_DRV_MODE).
	XDPNative
	// XDPGeneric attaches after SKB allocation (XDP_FLAGS_SKB_MODE); works on any NIC, slowly.
	XDPGeneric
)

func (m XDPMode) String() string {
	switch m {
	case XDPAuto:
		return "auto"
	case XDPNative:
		return "native"
	case XDPGeneric:
		return "generic"
	}
	return fmt.Sprintf("XDPMode(%d)", int(m))
}

// ParseXDPMode parses the configuration spelling "auto", "native" or "generic".
func ParseXDPMode(s string) (XDPMode, error) {
	switch s {
	case "auto":
		return XDPAuto, nil
	case "native":
		return XDPNative, nil
	case "generic":
		return XDPGeneric, nil
	}
	return 0, fmt.Errorf("rings: xdp_mode %q: want auto, native or generic", s)
}

// Opts configures a Socket. Start from DefaultOpts; Open validates every
// field and names the one to fix.
type Opts struct {
	// FrameSize is the size of one UMEM frame (chunk): 2048 or 4096.
	// Every frame is FrameSize-aligned inside the UMEM.
	FrameSize uint32
	// FrameCount is the number of frames in the UMEM (1 .. 1<<20).
	FrameCount uint32
	// Headroom is the XDP_UMEM_REG headroom: bytes the kernel leaves
	// unused at the start of every frame, in addition to the
	// XDP_PACKET_HEADROOM (256 bytes) it always leaves in front of
	// received data. With the default 0, received data starts 256 bytes
	// into its frame (measured in copy mode on Linux 6.18; see doc.go),
	// which is room for the 24-byte outer IPv4+GRE that the plain form
	// prepends.
	Headroom uint32
	// Ring sizes in descriptors; each a power of two (1 .. 1<<20).
	FillSize, CompletionSize, RxSize, TxSize uint32
	// ZeroCopy selects XDP_ZEROCOPY or XDP_COPY binding.
	ZeroCopy ZeroCopy

	// BusyPoll asks for preferred busy polling (Linux ≥ 5.11): Open sets
	// SO_PREFER_BUSY_POLL, SO_BUSY_POLL (BusyPollUsecs) and
	// SO_BUSY_POLL_BUDGET (BusyPollBudget) on the socket, and in copy
	// mode XDP_MAX_TX_SKB_BUDGET (BusyPollBudget, at least 32; Linux ≥
	// 6.17), so that the worker's own sendto/recvfrom run the queue's NAPI
	// — the driver's rx and tx work — in the worker's context, one batch
	// per call, instead of the kernel running it in a softirq or NAPI
	// thread. The kernel only lets it take effect when the device's
	// napi_defer_hard_irqs and gro_flush_timeout are set (raild does that)
	// and the socket knows its queue's NAPI (see BusyPollStatus). An
	// option the kernel refuses is not an Open error: the socket falls
	// back to need_wakeup kicks and Socket.BusyPoll says why.
	BusyPoll bool
	// BusyPollUsecs is SO_BUSY_POLL: how long a blocking busy poll may
	// spin. The worker only makes non-blocking calls, which poll the NAPI
	// once whatever the value; it must be > 0 for busy polling to be on.
	// 0 takes DefaultBusyPollUsecs.
	BusyPollUsecs int
	// BusyPollBudget is SO_BUSY_POLL_BUDGET: frames one busy poll may
	// process (1 .. 65535); 0 takes DefaultBusyPollBudget, the worker's
	// batch.
	BusyPollBudget int
}

// Busy-poll defaults: the budget is pipeline.Batch, the frames one worker
// iteration takes.
const (
	DefaultBusyPollUsecs  = 20
	DefaultBusyPollBudget = 64
)

// DefaultOpts returns 4096 frames of 4096 bytes, no extra headroom,
// 2048-entry rings and ZeroCopyAuto.
func DefaultOpts() Opts {
	return Opts{
		FrameSize:  4096,
		FrameCount: 4096,
		Headroom:   0,
		// The fill ring holds every frame, so that at rest all of them
		// wait for the kernel instead of half on the free stack.
		FillSize:       4096,
		CompletionSize: 2048,
		RxSize:         2048,
		TxSize:         2048,
		ZeroCopy:       ZeroCopyAuto,
	}
}

const (
	// packetHeadroom is XDP_PACKET_HEADROOM: the kernel puts received
	// data this far past the UMEM headroom in every frame.
	packetHeadroom = 256
	// minFrameRoom is what a frame must still hold after all headroom:
	// a 1500-byte MTU Ethernet frame with a VLAN tag.
	minFrameRoom = 1518
	// maxFrameCount bounds FrameCount so that the published frame
	// counts fit 21 bits each in one atomic word.
	maxFrameCount = 1 << 20
	maxRingSize   = 1 << 20
	// maxBusyPollUsecs is one second; maxBusyPollBudget is the kernel's
	// limit for SO_BUSY_POLL_BUDGET (U16_MAX).
	maxBusyPollUsecs  = 1_000_000
	maxBusyPollBudget = 1<<16 - 1
)

// ErrInvalidOpts is wrapped by every validation error from Open.
var ErrInvalidOpts = errors.New("invalid rings options")

// Validate reports the first problem with o, naming the field and the fix.
func (o Opts) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("rings: %w: "+format, append([]any{ErrInvalidOpts}, a...)...)
	}
	if o.FrameSize != 2048 && o.FrameSize != 4096 {
		return bad("FrameSize %d: must be 2048 or 4096", o.FrameSize)
	}
	if o.FrameCount == 0 || o.FrameCount > maxFrameCount {
		return bad("FrameCount %d: must be between 1 and %d", o.FrameCount, maxFrameCount)
	}
	if room := int64(o.FrameSize) - packetHeadroom - int64(o.Headroom); room < minFrameRoom {
		return bad("Headroom %d: leaves %d bytes of a %d-byte frame after the kernel's %d-byte XDP headroom, need %d (use at most %d, or FrameSize 4096)",
			o.Headroom, room, o.FrameSize, packetHeadroom, minFrameRoom, int64(o.FrameSize)-packetHeadroom-minFrameRoom)
	}
	for _, r := range []struct {
		name string
		v    uint32
	}{{"FillSize", o.FillSize}, {"CompletionSize", o.CompletionSize}, {"RxSize", o.RxSize}, {"TxSize", o.TxSize}} {
		if !pow2.Is(r.v) || r.v > maxRingSize {
			return bad("%s %d: must be a power of two between 1 and %d (try %d)", r.name, r.v, maxRingSize, suggestRingSize(r.v))
		}
	}
	if o.ZeroCopy < ZeroCopyAuto || o.ZeroCopy > ZeroCopyOff {
		return bad("ZeroCopy %d: must be ZeroCopyAuto, ZeroCopyOn or ZeroCopyOff", int(o.ZeroCopy))
	}
	if o.BusyPollUsecs < 0 || o.BusyPollUsecs > maxBusyPollUsecs {
		return bad("BusyPollUsecs %d: must be between 0 (default %d) and %d", o.BusyPollUsecs, DefaultBusyPollUsecs, maxBusyPollUsecs)
	}
	if o.BusyPollBudget < 0 || o.BusyPollBudget > maxBusyPollBudget {
		return bad("BusyPollBudget %d: must be between 0 (default %d) and %d", o.BusyPollBudget, DefaultBusyPollBudget, maxBusyPollBudget)
	}
	return nil
}

// suggestRingSize is the ring size Validate suggests instead of v.
func suggestRingSize(v uint32) uint32 {
	if v <= 1 {
		return 2048
	}
	if v > maxRingSize {
		return maxRingSize
	}
	return pow2.Ceil(v)
}

// Desc is one rx or tx ring entry, laid out exactly like struct xdp_desc.
// Addr is a UMEM offset: the frame's base plus the data's offset in it.
type Desc struct {
	Addr    uint64
	Len     uint32
	Options uint32
}

// FrameCounts says where every UMEM frame is. The fields always sum to
// the socket's FrameCount.
type FrameCounts struct {
	// Free frames sit on the socket's free stack.
	Free uint32
	// Fill frames were given to the kernel on the fill ring and have not
	// yet come back on the rx ring; this includes frames the kernel has
	// already taken off the fill ring but not yet written to rx.
	Fill uint32
	// Rx frames hold received packets on the rx ring, not yet Received.
	Rx uint32
	// Held frames were returned by Receive and not yet Transmitted or
	// Recycled: the caller owns them.
	Held uint32
	// Tx frames were put on the tx ring and have not yet come back on
	// the completion ring; this includes frames the kernel has taken off
	// the tx ring and is still sending.
	Tx uint32
	// Completion frames are on the completion ring, not yet reaped by Service.
	Completion uint32
}

// Sum is the total number of frames counted.
func (c FrameCounts) Sum() uint32 {
	return c.Free + c.Fill + c.Rx + c.Held + c.Tx + c.Completion
}

// Stats are the kernel's XDP_STATISTICS for the socket plus the
// socket's own counters of kicks and refused calls.
type Stats struct {
	// From getsockopt(XDP_STATISTICS).
	RxDropped            uint64 // frames dropped on rx (e.g. no room in the frame)
	RxInvalidDescs       uint64 // invalid descriptors on the fill ring
	TxInvalidDescs       uint64 // invalid descriptors on the tx ring
	RxRingFull           uint64 // frames dropped because the rx ring was full
	RxFillRingEmptyDescs uint64 // times the kernel found the fill ring empty
	TxRingEmptyDescs     uint64 // times the kernel found the tx ring empty

	// Counted by the socket. TxKicks + FillKicks + BusyPolls + Waits is
	// every system call the worker made on the socket.
	TxKicks      uint64 // sendto wakeups issued because the tx ring asked (busy polling: because descriptors waited on it)
	FillKicks    uint64 // recvfrom wakeups issued because the fill ring asked
	BusyPolls    uint64 // recvfrom issued to run the queue's NAPI (busy polling, rx ring empty)
	Waits        uint64 // poll(2) calls of Wait (an idle worker parking)
	KickErrors   uint64 // wakeups that failed with something other than EAGAIN/EBUSY/ENOBUFS
	BadRecycles  uint64 // Recycle calls for frames the caller did not hold (ignored)
	BadTransmits uint64 // descriptors Transmit refused (not held, out of the frame, Options≠0)
	RingErrors   uint64 // rx/completion addresses that were not ours (kernel bug; skipped)
}

// BusyPollStatus says what Open made of Opts.BusyPoll.
type BusyPollStatus struct {
	// Requested is Opts.BusyPoll.
	Requested bool
	// Enabled: SO_PREFER_BUSY_POLL, SO_BUSY_POLL and SO_BUSY_POLL_BUDGET
	// are set, the socket knows the NAPI instance it busy polls (NAPIID),
	// and the worker drives that NAPI with its own system calls (Service).
	Enabled bool
	// NAPIID is the socket's SO_INCOMING_NAPI_ID after bind: the NAPI
	// instance its busy polls run. 0 means the kernel linked no NAPI to
	// the socket's queue (the driver does not call netif_queue_set_napi —
	// veth, Linux 6.18 — or the NAPI did not exist at bind): a busy poll
	// would return at once, so the socket falls back (Err wraps ErrNoNAPI).
	NAPIID uint32
	// Err is why Enabled is false although Requested: the option the
	// kernel refused and its errno (EPERM without CAP_NET_ADMIN, ENOPROTOOPT
	// on a kernel without CONFIG_NET_RX_BUSY_POLL or before 5.11), or
	// ErrNoNAPI. The socket then works as without BusyPoll.
	Err error
	// Usecs and Budget are the SO_BUSY_POLL and SO_BUSY_POLL_BUDGET values set.
	Usecs, Budget int
	// TxBudget is the copy-mode XDP_MAX_TX_SKB_BUDGET set (frames one
	// sendto transmits); 0: the kernel's default (32), because the socket
	// is zero-copy, busy polling is off, or the kernel has no such option
	// (before 6.17: TxBudgetErr).
	TxBudget    int
	TxBudgetErr error
}

// ServiceKey is one entry of the steering program's service set.
// Port 0 matches every port, Proto 0 every protocol.
type ServiceKey struct {
	VIP   netip.Addr
	Port  uint16
	Proto uint8
}

// ErrNoNAPI is wrapped by BusyPollStatus.Err when the kernel gave the
// socket no NAPI id to busy poll.
var ErrNoNAPI = errors.New("the kernel links no NAPI instance to this queue (SO_INCOMING_NAPI_ID 0: the driver does not call netif_queue_set_napi, as veth does not, or the NAPI did not exist when the socket was bound); busy polling cannot run it, so the socket uses need_wakeup kicks")

// ErrClosed is returned by calls on a closed Socket or Steer.
var ErrClosed = errors.New("rings: closed")

// ErrNotSupported is returned by Open and LoadSteer where AF_XDP and XDP
// don't exist (any OS but Linux).
var ErrNotSupported = errors.New("rings: AF_XDP and XDP need Linux")

// PassReason is the steering program's answer for a frame: Ours (redirect
// to the AF_XDP socket) or why the frame is left to the kernel. The pass
// values are the same numbers as pipeline.Reason's NotIP, NotOurs and
// NoService.
type PassReason uint8

const (
	Ours PassReason = iota
	PassNotIP
	PassNotOurs
	PassNoService
	numPassReasons
)

// maxQueues is the number of queue slots of the program's pass counters.
const maxQueues = 1024

func (r PassReason) String() string {
	switch r {
	case Ours:
		return "ours"
	case PassNotIP:
		return "not_ip"
	case PassNotOurs:
		return "not_ours"
	case PassNoService:
		return "no_service"
	}
	return fmt.Sprintf("PassReason(%d)", uint8(r))
}

// PassCount is how many frames the steering program left to the kernel on
// one queue, on one CPU, for one reason.
type PassCount struct {
	Queue, CPU int
	Reason     PassReason
	Packets    uint64
}
