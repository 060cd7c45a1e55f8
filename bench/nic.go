package bench

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/rail-lb/rail/pipeline"
	"github.com/rail-lb/rail/pipeline/header"
)

// NICForm is the shape of the frames a NIC workload carries.
type NICForm uint8

const (
	// FormGRE is GRE-in IPv4 around an IPv4 client flow (AppendGRE), for BenchConfig.
	FormGRE NICForm = iota
	// FormGRE6 is GRE-in IPv4 around an IPv6 client flow (AppendGRE6), for BenchConfig6.
	FormGRE6
	// FormPlain is an IPv4 client packet straight to the VIP (AppendPlain), for BenchConfig.
	FormPlain
)

func (f NICForm) String() string {
	switch f {
	case FormGRE6:
		return "GRE-in IPv6"
	case FormPlain:
		return "plain IPv4"
	}
	return "GRE-in IPv4"
}

// Config is the pipeline configuration the form's frames are addressed to.
func (f NICForm) Config(backends int) pipeline.Config {
	if f == FormGRE6 {
		return BenchConfig6(backends)
	}
	return BenchConfig(backends)
}

// nicLayout is where a form's frame keeps what varies per flow, and how
// much of its front a rewrite can change.
type nicLayout struct {
	headers int // Ethernet and, for GRE, the outer IPv4 and GRE: what forwarding rewrites
	src     int // the client address (4 or 16 bytes)
	sport   int // the client port
}

var nicLayouts = [...]nicLayout{
	FormGRE:   {headers: 14 + 20 + 4, src: 38 + 12, sport: 38 + 20},
	FormGRE6:  {headers: 14 + 20 + 4, src: 38 + 8, sport: 38 + 40},
	FormPlain: {headers: 14, src: 14 + 12, sport: 14 + 20},
}

// NICWorkload models what a NIC queue hands a worker: frames come from a
// pool the size of a UMEM, reused round-robin, and each flow's headers are
// written into the frame as it arrives (the NIC's DMA; untimed), with flows
// arriving in a random order (uniform or Zipf) rather than one after the
// other. Only the connection table and the Maglev tables grow with the
// number of flows, as in a real node — not the frames.
type NICWorkload struct {
	pool   []pipeline.Packet
	tmpl   []byte   // the frame of flow 0
	order  []uint32 // the flow of each packet
	flows  int
	form   NICForm
	layout nicLayout
}

// NewNICWorkload builds packets frames of form over flows flows in a pool
// of pool frames. zipf ≤ 1 means uniform; above 1 it is the Zipf exponent
// s (a few flows get most packets).
func NewNICWorkload(form NICForm, flows, packets, pool, payload int, zipf float64, seed uint64) (*NICWorkload, error) {
	if flows <= 0 || packets <= 0 || pool <= 0 {
		return nil, fmt.Errorf("bench: flows, packets and pool must be positive (got %d, %d, %d)", flows, packets, pool)
	}
	if int(form) >= len(nicLayouts) {
		return nil, fmt.Errorf("bench: unknown frame form %d", form)
	}
	cfg := form.Config(1)
	vip := cfg.Services[0].VIP
	router, node := header.MAC{2, 0, 0, 0, 0, 1}, header.MAC{2, 0, 0, 0, 0, 2}
	var f []byte
	var err error
	switch form {
	case FormGRE:
		f, err = AppendGRE(nil, GRESpec{RouterMAC: router, NodeMAC: node, Router: cfg.Local.Prev(), Local: cfg.Local, Flow: FlowN(0, vip, 80), Payload: payload})
	case FormGRE6:
		f, err = AppendGRE6(nil, GRESpec{RouterMAC: router, NodeMAC: node, Router: cfg.Local.Prev(), Local: cfg.Local, Flow: FlowN6(0, vip, 80), Payload: payload})
	case FormPlain:
		f, err = AppendPlain(nil, PlainSpec{SrcMAC: router, DstMAC: node, Flow: FlowN(0, vip, 80), Payload: payload})
	}
	if err != nil {
		return nil, err
	}
	w := &NICWorkload{tmpl: f, flows: flows, form: form, layout: nicLayouts[form]}
	for range pool {
		buf := make([]byte, 2048) // a UMEM frame
		copy(buf[Headroom:], f)
		w.pool = append(w.pool, pipeline.Packet{Buf: buf, Off: Headroom, Len: len(f)})
	}
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var z *rand.Zipf
	if zipf > 1 {
		z = rand.NewZipf(r, zipf, 1, uint64(flows-1))
	}
	w.order = make([]uint32, packets)
	for i := range w.order {
		if z != nil {
			w.order[i] = uint32(z.Uint64())
		} else {
			w.order[i] = uint32(r.IntN(flows))
		}
	}
	return w, nil
}

// arrive writes packet i's flow into its pool frame, as a NIC would.
func (w *NICWorkload) arrive(i int) *pipeline.Packet {
	p := &w.pool[i%len(w.pool)]
	w.write(p, int(w.order[i]))
	return p
}

// write puts flow f's headers into p: the front a rewrite changed, back
// from the template, and the flow's client address and port.
func (w *NICWorkload) write(p *pipeline.Packet, f int) {
	l := w.layout
	b := p.Buf[Headroom:]
	copy(b[:l.headers], w.tmpl[:l.headers])
	fl := FlowN(f, netip.Addr{}, 0)
	src := fl.Src.As4()
	if w.form == FormGRE6 {
		copy(b[l.src+12:l.src+16], src[:]) // FlowN6: the IPv4 client address in the last 4 bytes
	} else {
		copy(b[l.src:l.src+4], src[:])
	}
	binary.BigEndian.PutUint16(b[l.sport:], fl.Sport)
	p.Off, p.Len = Headroom, len(w.tmpl)
}

// RunNIC runs every packet of wl through w in batches of batch, staged
// (ProcessBatch: the batch's connection-table buckets touched first) or
// one by one (Process). Only the processing is timed, not the arrivals.
func RunNIC(w *pipeline.Worker, s *pipeline.Snapshot, wl *NICWorkload, batch int, staged bool) PipelineResult {
	w.Begin(s, time.Now())
	ps := make([]pipeline.Packet, batch)
	rs := make([]pipeline.Result, batch)
	var elapsed time.Duration
	var tx uint64
	n := len(wl.order)
	for i := 0; i < n; i += batch {
		m := min(batch, n-i)
		for k := range m {
			ps[k] = *wl.arrive(i + k)
		}
		start := time.Now()
		if staged {
			w.ProcessBatch(ps[:m], rs)
		} else {
			for k := range m {
				rs[k] = w.Process(&ps[k])
			}
		}
		w.Flush()
		elapsed += time.Since(start)
		for k := range m {
			if rs[k].Verdict == pipeline.Tx {
				tx++
			}
		}
	}
	return PipelineResult{Packets: n, Flows: wl.flows, Elapsed: elapsed, Tx: tx}
}

// WarmUpNIC sends every flow once, untimed, so that connection entries
// exist (the steady state of a node that has seen its flows).
func WarmUpNIC(w *pipeline.Worker, s *pipeline.Snapshot, wl *NICWorkload) {
	w.Begin(s, time.Now())
	for f := 0; f < wl.flows; f++ {
		p := &wl.pool[0]
		wl.write(p, f)
		w.Process(p)
		if f%64 == 63 {
			w.Flush()
		}
	}
	w.Flush()
}
