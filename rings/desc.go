package rings

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
