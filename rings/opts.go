package rings

import (
	"errors"
	"fmt"

	"github.com/rail-lb/rail/internal/pow2"
)

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
