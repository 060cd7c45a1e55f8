package rings

// What the steering program is told (ServiceKey) and what it answers
// (PassReason, PassCount), on every OS; the program itself is steer.c,
// loaded by steer_linux.go.

import (
	"fmt"
	"net/netip"
)

// ServiceKey is one entry of the steering program's service set.
// Port 0 matches every port, Proto 0 every protocol.
type ServiceKey struct {
	VIP   netip.Addr
	Port  uint16
	Proto uint8
}

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
