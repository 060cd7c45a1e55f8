package pcapng

import (
	"encoding/binary"
	"errors"
	"io"
	"time"
)

// Block types and option codes used here (the pcapng specification,
// draft-ietf-opsawg-pcapng).
const (
	blockSHB = 0x0A0D0D0A
	blockIDB = 0x00000001
	blockISB = 0x00000005
	blockEPB = 0x00000006

	byteOrderMagic = 0x1A2B3C4D

	optEnd     = 0
	optComment = 1

	shbUserAppl = 4

	idbName        = 2
	idbDescription = 3
	idbTsresol     = 9

	epbFlags = 2

	isbStartTime = 2
	isbEndTime   = 3
	isbIfRecv    = 4
	isbIfDrop    = 5
)

// maxOption is the longest option value written; longer ones (comments)
// are cut.
const maxOption = 0xfff0

// LinkTypeEthernet is the link type of Ethernet frames.
const LinkTypeEthernet = 1

// Direction is a packet's direction, recorded in its epb_flags option.
type Direction uint8

const (
	// Unknown leaves the direction out.
	Unknown Direction = iota
	// Inbound: the packet was received.
	Inbound
	// Outbound: the packet was transmitted.
	Outbound
)

// Interface describes one interface of a capture. Packets name their
// interface by the index AddInterface returned.
type Interface struct {
	Name        string
	Description string
	LinkType    uint16
	// SnapLen is the most bytes of a packet the capture keeps; 0: no limit.
	SnapLen uint32
}

// Packet is one captured packet.
type Packet struct {
	Interface int
	Time      time.Time
	// Data is the packet as captured (at most the interface's SnapLen);
	// Length is its length on the wire (Length ≥ len(Data); 0 means
	// len(Data)).
	Data      []byte
	Length    int
	Direction Direction
	Comment   string
}

// Stats are an interface's counters for an interface statistics block.
type Stats struct {
	Time       time.Time
	Start, End time.Time // the capture's first and last moments (zero: left out)
	Received   uint64    // packets the capture saw
	Dropped    uint64    // packets it lost (isb_ifdrop)
	Comment    string
}

// Writer writes one pcapng section to an io.Writer.
type Writer struct {
	w      io.Writer
	buf    []byte
	ifaces int
	opts   bool // the block being built has options
}

var order = binary.NativeEndian

// NewWriter writes a section header block naming app (shb_userappl) and
// returns a Writer for the section's interfaces and packets.
func NewWriter(w io.Writer, app string) (*Writer, error) {
	pw := &Writer{w: w}
	b := pw.begin(blockSHB)
	b = order.AppendUint32(b, byteOrderMagic)
	b = order.AppendUint16(b, 1) // major version
	b = order.AppendUint16(b, 0) // minor version
	b = order.AppendUint64(b, ^uint64(0))
	if app != "" {
		b = option(pw, b, shbUserAppl, app)
	}
	return pw, pw.end(b)
}

// AddInterface writes an interface description block and returns the
// interface's index for Packet.Interface.
func (pw *Writer) AddInterface(i Interface) (int, error) {
	b := pw.begin(blockIDB)
	b = order.AppendUint16(b, i.LinkType)
	b = order.AppendUint16(b, 0) // reserved
	b = order.AppendUint32(b, i.SnapLen)
	if i.Name != "" {
		b = option(pw, b, idbName, i.Name)
	}
	if i.Description != "" {
		b = option(pw, b, idbDescription, i.Description)
	}
	b = option(pw, b, idbTsresol, "\x09") // nanoseconds
	if err := pw.end(b); err != nil {
		return 0, err
	}
	pw.ifaces++
	return pw.ifaces - 1, nil
}

// ErrInterface is returned for a packet or statistics of an interface the
// section has not described.
var ErrInterface = errors.New("pcapng: no such interface")

// WritePacket writes an enhanced packet block.
func (pw *Writer) WritePacket(p *Packet) error {
	if p.Interface < 0 || p.Interface >= pw.ifaces {
		return ErrInterface
	}
	n := p.Length
	if n < len(p.Data) {
		n = len(p.Data)
	}
	b := pw.begin(blockEPB)
	b = order.AppendUint32(b, uint32(p.Interface))
	b = appendTime(b, p.Time)
	b = order.AppendUint32(b, uint32(len(p.Data)))
	b = order.AppendUint32(b, uint32(n))
	b = append(b, p.Data...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	if p.Comment != "" {
		b = option(pw, b, optComment, p.Comment)
	}
	if p.Direction != Unknown {
		var v [4]byte
		order.PutUint32(v[:], uint32(p.Direction)) // bits 0–1: 01 inbound, 10 outbound
		b = option(pw, b, epbFlags, v[:])
	}
	return pw.end(b)
}

// WriteStats writes an interface statistics block for interface iface.
func (pw *Writer) WriteStats(iface int, s Stats) error {
	if iface < 0 || iface >= pw.ifaces {
		return ErrInterface
	}
	b := pw.begin(blockISB)
	b = order.AppendUint32(b, uint32(iface))
	b = appendTime(b, s.Time)
	if s.Comment != "" {
		b = option(pw, b, optComment, s.Comment)
	}
	var v [8]byte
	if !s.Start.IsZero() {
		b = option(pw, b, isbStartTime, timeWords(v[:], s.Start))
	}
	if !s.End.IsZero() {
		b = option(pw, b, isbEndTime, timeWords(v[:], s.End))
	}
	order.PutUint64(v[:], s.Received)
	b = option(pw, b, isbIfRecv, v[:])
	order.PutUint64(v[:], s.Dropped)
	b = option(pw, b, isbIfDrop, v[:])
	return pw.end(b)
}

// begin starts a block in the reused buffer: its type and a placeholder
// for its length.
func (pw *Writer) begin(typ uint32) []byte {
	pw.opts = false
	b := order.AppendUint32(pw.buf[:0], typ)
	return order.AppendUint32(b, 0)
}

// end closes the options (when the block has any), fills in the block's
// total length at both ends and writes it.
func (pw *Writer) end(b []byte) error {
	if pw.opts {
		b = order.AppendUint32(b, optEnd) // opt_endofopt: code 0, length 0
	}
	n := uint32(len(b) + 4)
	order.PutUint32(b[4:], n)
	b = order.AppendUint32(b, n)
	pw.buf = b
	_, err := pw.w.Write(b)
	return err
}

// option appends one option to the block pw is building: code, length,
// the value padded to 32 bits.
func option[V string | []byte](pw *Writer, b []byte, code uint16, v V) []byte {
	pw.opts = true
	if len(v) > maxOption {
		v = v[:maxOption]
	}
	b = order.AppendUint16(b, code)
	b = order.AppendUint16(b, uint16(len(v)))
	b = append(b, v...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// appendTime appends a timestamp as two 32-bit words of nanoseconds since
// the epoch, high word first.
func appendTime(b []byte, t time.Time) []byte {
	ns := uint64(t.UnixNano())
	b = order.AppendUint32(b, uint32(ns>>32))
	return order.AppendUint32(b, uint32(ns))
}

func timeWords(v []byte, t time.Time) []byte {
	ns := uint64(t.UnixNano())
	order.PutUint32(v[0:], uint32(ns>>32))
	order.PutUint32(v[4:], uint32(ns))
	return v[:8]
}
