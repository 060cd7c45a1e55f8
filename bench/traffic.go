package bench

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/rail-lb/rail/pipeline/header"
)

// StampLen is the size of the stamp the generator writes at the start of
// the inner TCP payload: a magic word, the low 32 bits of the sequence
// number and the CLOCK_MONOTONIC transmit time in nanoseconds, in the
// host's byte order (generator and sink run on the same machine).
const StampLen = 16

// StampMagic is the stamp's first word.
const StampMagic = 0x52424c31 // "RBL1"

// Frame forms the generator sends.
const (
	// MinGRESize is the smallest GRE-in frame that carries a stamp:
	// Ethernet, outer IPv4, GRE, inner IPv4, TCP and the stamp.
	MinGRESize = header.EthernetLen + 2*header.IPv4MinLen + header.GREMinLen + 20 + StampLen
	// MinPlainSize is the same for the plain form (no outer IPv4 + GRE).
	MinPlainSize = header.EthernetLen + header.IPv4MinLen + 20 + StampLen
	// MaxSize is the largest frame: a 1500-byte MTU IPv4 packet and its Ethernet header.
	MaxSize = 1514
)

// PlainSpec describes a plain-form frame: an inner packet straight to a VIP.
type PlainSpec struct {
	SrcMAC, DstMAC header.MAC
	Flow           Flow
	Payload        int
}

// AppendPlain appends Ethernet | IPv4 | TCP | payload to b with a valid
// IPv4 checksum.
func AppendPlain(b []byte, s PlainSpec) ([]byte, error) {
	if !s.Flow.Src.Is4() || !s.Flow.Dst.Is4() {
		return b, fmt.Errorf("bench: IPv4 addresses only")
	}
	n := header.EthernetLen + header.IPv4MinLen + 20 + s.Payload
	start := len(b)
	b = append(b, make([]byte, n)...)
	f := b[start:]
	eth := header.Ethernet(f)
	eth.SetDst(s.DstMAC)
	eth.SetSrc(s.SrcMAC)
	eth.SetType(header.EtherTypeIPv4)
	header.IPv4(f[14:]).Encode(header.IPv4Fields{
		TotalLen: uint16(header.IPv4MinLen + 20 + s.Payload), ID: 1, FlagsFrag: header.IPv4FlagDF,
		TTL: 64, Protocol: header.ProtoTCP,
		Src: v4(s.Flow.Src), Dst: v4(s.Flow.Dst),
	})
	tcp := f[34:]
	binary.BigEndian.PutUint16(tcp[0:], s.Flow.Sport)
	binary.BigEndian.PutUint16(tcp[2:], s.Flow.Dport)
	binary.BigEndian.PutUint32(tcp[4:], 1)
	tcp[12] = 5 << 4
	tcp[13] = 0x10
	binary.BigEndian.PutUint16(tcp[14:], 65535)
	return b, nil
}

// Template is the frame the generator starts every packet from, and
// where its stamp goes. The generator varies the inner source address and
// port per flow (see loadgen.c) and writes the stamp.
type Template struct {
	Frame    []byte
	StampOff int
	GRE      bool
}

// TemplateOpts says what traffic to generate.
type TemplateOpts struct {
	Size               int  // Ethernet frame length without FCS; raised to the form's minimum
	Plain              bool // plain form instead of GRE-in
	SrcMAC, DstMAC     header.MAC
	Router, Local, VIP netip.Addr
	Port               uint16
}

// NewTemplate builds the template frame for o.
func NewTemplate(o TemplateOpts) (Template, error) {
	fl := Flow{Src: netip.AddrFrom4([4]byte{198, 18, 0, 0}), Dst: o.VIP, Sport: 1024, Dport: o.Port}
	if o.Plain {
		size := max(o.Size, MinPlainSize)
		f, err := AppendPlain(nil, PlainSpec{SrcMAC: o.SrcMAC, DstMAC: o.DstMAC, Flow: fl, Payload: size - (MinPlainSize - StampLen)})
		return Template{Frame: f, StampOff: MinPlainSize - StampLen}, err
	}
	size := max(o.Size, MinGRESize)
	f, err := AppendGRE(nil, GRESpec{RouterMAC: o.SrcMAC, NodeMAC: o.DstMAC, Router: o.Router, Local: o.Local,
		Flow: fl, Payload: size - (MinGRESize - StampLen)})
	return Template{Frame: f, StampOff: MinGRESize - StampLen, GRE: true}, err
}

// Histogram counts latencies in log-linear buckets: 32 per power of two,
// so a percentile is exact to about 3 %.
type Histogram struct {
	Buckets [64 * subBuckets]uint64
	N       uint64
	Max     uint64
}

const (
	subBits    = 5
	subBuckets = 1 << subBits
)

func bucketOf(v uint64) int {
	if v < subBuckets {
		return int(v)
	}
	e := bits.Len64(v) - 1 - subBits // v >> e is in [32, 64)
	return (e+1)*subBuckets + int(v>>uint(e)) - subBuckets
}

// bucketMid is a representative value of bucket i (its lower bound plus half its width).
func bucketMid(i int) uint64 {
	if i < subBuckets {
		return uint64(i)
	}
	e := i/subBuckets - 1
	m := uint64(i%subBuckets + subBuckets)
	return m<<uint(e) + (uint64(1)<<uint(e))/2
}

// Add counts one latency in nanoseconds.
func (h *Histogram) Add(ns uint64) {
	h.Buckets[bucketOf(ns)]++
	h.N++
	if ns > h.Max {
		h.Max = ns
	}
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.Buckets {
		h.Buckets[i] += c
	}
	h.N += o.N
	h.Max = max(h.Max, o.Max)
}

// Quantile returns the q-quantile (0 < q ≤ 1) in nanoseconds; 0 when empty.
func (h *Histogram) Quantile(q float64) uint64 {
	if h.N == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.N)))
	var seen uint64
	for i, c := range h.Buckets {
		seen += c
		if seen >= rank && c > 0 {
			return min(bucketMid(i), h.Max)
		}
	}
	return h.Max
}

// Latency is a set of percentiles in microseconds.
type Latency struct {
	P50, P90, P99, P999, Max float64
}

// Latency summarises h.
func (h *Histogram) Latency() Latency {
	us := func(v uint64) float64 { return float64(v) / 1e3 }
	return Latency{P50: us(h.Quantile(0.5)), P90: us(h.Quantile(0.9)), P99: us(h.Quantile(0.99)),
		P999: us(h.Quantile(0.999)), Max: us(h.Max)}
}

// BackendCount is how many frames the sink received for one outer
// destination (a backend; the VIP itself for plain frames routed back).
type BackendCount struct {
	Addr    netip.Addr `json:"addr"`
	Packets uint64     `json:"packets"`
}

// Report is the outcome of a generator/sink run.
type Report struct {
	Form      string         `json:"form"` // "gre" or "plain"
	Size      int            `json:"size"`
	Flows     int            `json:"flows"`
	RatePPS   float64        `json:"rate_pps"` // requested; 0 = flat out
	Elapsed   time.Duration  `json:"elapsed_ns"`
	Sent      uint64         `json:"sent"`
	Received  uint64         `json:"received"`   // stamped frames the sink counted
	Foreign   uint64         `json:"foreign"`    // frames without a stamp
	Reordered uint64         `json:"reordered"`  // arrived after a higher sequence number
	SinkDrops uint64         `json:"sink_drops"` // lost at the sink's own socket (rx ring full, fill ring empty)
	Backends  []BackendCount `json:"backends"`
	Latency   Latency        `json:"latency_us"`
	// MaxGap is the longest time between two received batches while
	// frames were arriving: a stall of the forwarder (or of the lab) shows
	// here even when no frame is lost.
	MaxGap time.Duration `json:"max_gap_ns"`
	// PerSecond is, for each second since the start, what the sink saw in
	// it: to line stalls up with what happened on the forwarder then.
	PerSecond []SecondStats `json:"per_second,omitempty"`
}

// SecondStats is one second of a sink's run.
type SecondStats struct {
	Received   uint64        `json:"received"`
	MaxGap     time.Duration `json:"max_gap_ns"`     // longest time between two batches that ended in this second
	MaxLatency time.Duration `json:"max_latency_ns"` // of a frame received in this second
}

// Lost is sent minus received (never negative).
func (r Report) Lost() uint64 {
	if r.Received >= r.Sent {
		return 0
	}
	return r.Sent - r.Received
}

// LossRatio is Lost/Sent.
func (r Report) LossRatio() float64 {
	if r.Sent == 0 {
		return 0
	}
	return float64(r.Lost()) / float64(r.Sent)
}

// SentPPS and ReceivedPPS are the rates over the run.
func (r Report) SentPPS() float64     { return rate(r.Sent, r.Elapsed) }
func (r Report) ReceivedPPS() float64 { return rate(r.Received, r.Elapsed) }

func rate(n uint64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(n) / d.Seconds()
}

// Table is the human-readable final table of a run.
func (r Report) Table() string {
	var b strings.Builder
	rateS := "flat out"
	if r.RatePPS > 0 {
		rateS = fmt.Sprintf("%.0f pps", r.RatePPS)
	}
	fmt.Fprintf(&b, "traffic     %s frames of %d bytes over %d flows, %s, %.2fs\n", r.Form, r.Size, r.Flows, rateS, r.Elapsed.Seconds())
	fmt.Fprintf(&b, "sent        %12d  %12.0f pps\n", r.Sent, r.SentPPS())
	fmt.Fprintf(&b, "received    %12d  %12.0f pps\n", r.Received, r.ReceivedPPS())
	fmt.Fprintf(&b, "lost        %12d  %11.3f %%  (at the sink's socket: %d)\n", r.Lost(), 100*r.LossRatio(), r.SinkDrops)
	fmt.Fprintf(&b, "reordered   %12d\n", r.Reordered)
	if r.Foreign > 0 {
		fmt.Fprintf(&b, "unstamped   %12d  (not from this generator)\n", r.Foreign)
	}
	l := r.Latency
	fmt.Fprintf(&b, "latency µs  p50 %.1f  p90 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n", l.P50, l.P90, l.P99, l.P999, l.Max)
	if r.MaxGap > 0 {
		fmt.Fprintf(&b, "longest gap %12.1f µs  between two received batches\n", float64(r.MaxGap)/1e3)
	}
	bs := append([]BackendCount(nil), r.Backends...)
	sort.Slice(bs, func(i, j int) bool { return bs[i].Addr.Less(bs[j].Addr) })
	for _, c := range bs {
		share := 0.0
		if r.Received > 0 {
			share = 100 * float64(c.Packets) / float64(r.Received)
		}
		fmt.Fprintf(&b, "  -> %-15s %12d  %5.1f %%\n", c.Addr, c.Packets, share)
	}
	return b.String()
}
