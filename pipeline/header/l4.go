package header

import "encoding/binary"

// Ports are the first four bytes of a TCP or UDP header: source port then
// destination port. Both transports start the same way, which is all the
// load balancer needs.
type Ports []byte

// PortsLen is how many bytes of the transport header Rail reads.
const PortsLen = 4

// Src returns the source port.
func (p Ports) Src() uint16 { return binary.BigEndian.Uint16(p[0:]) }

// Dst returns the destination port.
func (p Ports) Dst() uint16 { return binary.BigEndian.Uint16(p[2:]) }
