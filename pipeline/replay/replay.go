package replay

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"strconv"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/rail-lb/rail/pipeline"
)

// Headroom is left in front of every packet, as a UMEM frame leaves it, so
// that plain packets can be encapsulated in place.
const Headroom = 256

// Summary counts what a replay did.
type Summary struct {
	Packets int
	Reasons [pipeline.NumReasons]int
}

// ErrInput marks a problem with the input file (exit status 1 in raild).
var ErrInput = errors.New("bad input")

// Run replays in through w with snapshot snap. Forwarded frames go to out as
// an Ethernet pcap; when verdicts is not nil, one CSV row per input packet
// goes there (index,verdict,reason,service,backend,second_hop;
// docs/reference.md, raild replay). second_hop is the backend a
// second-chance service named in the GRE key, else empty.
func Run(w *pipeline.Worker, snap *pipeline.Snapshot, in io.Reader, out io.Writer, verdicts io.Writer) (Summary, error) {
	var sum Summary
	src, snaplen, err := openReader(in)
	if err != nil {
		return sum, err
	}
	pw := pcapgo.NewWriter(out)
	if err := pw.WriteFileHeader(uint32(max(snaplen, 65535)), layers.LinkTypeEthernet); err != nil {
		return sum, err
	}
	var cw *csv.Writer
	if verdicts != nil {
		cw = csv.NewWriter(verdicts)
		cw.Write([]string{"index", "verdict", "reason", "service", "backend", "second_hop"})
	}
	buf := make([]byte, Headroom+65536)
	for i := 0; ; i++ {
		data, ci, err := src.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			return sum, fmt.Errorf("%w: packet %d: %v", ErrInput, i, err)
		}
		if len(data) > len(buf)-Headroom {
			return sum, fmt.Errorf("%w: packet %d: %d bytes is larger than any frame", ErrInput, i, len(data))
		}
		copy(buf[Headroom:], data)
		p := pipeline.Packet{Buf: buf, Off: Headroom, Len: len(data)}
		w.Begin(snap, ci.Timestamp)
		r := w.Process(&p)
		w.Flush()
		sum.Packets++
		sum.Reasons[r.Reason]++
		var svc, be, second string
		if r.Verdict == pipeline.Tx {
			frame := p.Buf[p.Off : p.Off+p.Len]
			if err := pw.WritePacket(gopacket.CaptureInfo{Timestamp: ci.Timestamp, CaptureLength: len(frame), Length: len(frame)}, frame); err != nil {
				return sum, err
			}
			svc = snap.ServiceName(r.Service)
			if r.Reason == pipeline.ReasonNone { // else an ICMP reply to the client, not to a backend
				be = snap.BackendAddr(r.Service, r.Backend).String()
				second = secondHop(frame)
			}
		}
		if cw != nil {
			cw.Write([]string{strconv.Itoa(i), r.Verdict.String(), r.Reason.String(), svc, be, second})
		}
	}
	if cw != nil {
		cw.Flush()
		if err := cw.Error(); err != nil {
			return sum, err
		}
	}
	return sum, nil
}

// secondHop reads the second hop from an egress frame's GRE key (outer
// IPv4 only), or "".
func secondHop(frame []byte) string {
	const gre = 14 + 20
	if len(frame) < gre+8 || frame[12] != 0x08 || frame[13] != 0x00 || frame[gre] != 0x20 || frame[gre+1] != 0 {
		return ""
	}
	return netip.AddrFrom4([4]byte(frame[gre+4 : gre+8])).String()
}

type packetSource interface {
	ReadPacketData() ([]byte, gopacket.CaptureInfo, error)
}

// openReader accepts classic pcap and pcapng with an Ethernet link type.
func openReader(in io.Reader) (packetSource, int, error) {
	br := bufio.NewReader(in)
	magic, err := br.Peek(4)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: not a pcap file (too short)", ErrInput)
	}
	if bytes.Equal(magic, []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
		r, err := pcapgo.NewNgReader(br, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			return nil, 0, fmt.Errorf("%w: pcapng: %v", ErrInput, err)
		}
		if r.LinkType() != layers.LinkTypeEthernet {
			return nil, 0, fmt.Errorf("%w: link type %v, want Ethernet", ErrInput, r.LinkType())
		}
		return r, 65535, nil
	}
	r, err := pcapgo.NewReader(br)
	if err != nil {
		return nil, 0, fmt.Errorf("%w: not a pcap or pcapng file: %v", ErrInput, err)
	}
	if r.LinkType() != layers.LinkTypeEthernet {
		return nil, 0, fmt.Errorf("%w: link type %v, want Ethernet", ErrInput, r.LinkType())
	}
	return r, int(r.Snaplen()), nil
}
