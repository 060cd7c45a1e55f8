package bench

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"time"

	"github.com/rail-lb/rail/pipeline"
)

// NICWorkload models what a NIC queue hands a worker: frames come from a
// pool the size of a UMEM, reused round-robin, and each flow's headers are
// written into the frame as it arrives (the NIC's DMA; untimed), with flows
// arriving in a random order (uniform or Zipf) rather than one after the
// other. Only the connection table and the Maglev tables grow with the
// number of flows, as in a real node — not the frames.
type NICWorkload struct {
	pool  []pipeline.Packet
	tmpl  []byte   // the frame of flow 0
	order []uint32 // the flow of each packet
	flows int
	local uint32
}

// NewNICWorkload builds packets frames over flows flows in a pool of pool
// frames. zipf ≤ 1 means uniform; above 1 it is the Zipf exponent s (a
// few flows get most packets).
func NewNICWorkload(flows, packets, pool, payload int, zipf float64, seed uint64) (*NICWorkload, error) {
	if flows <= 0 || packets <= 0 || pool <= 0 {
		return nil, fmt.Errorf("bench: flows, packets and pool must be positive (got %d, %d, %d)", flows, packets, pool)
	}
	cfg := BenchConfig(1)
	f, err := AppendGRE(nil, GRESpec{
		RouterMAC: [6]byte{2, 0, 0, 0, 0, 1}, NodeMAC: [6]byte{2, 0, 0, 0, 0, 2},
		Router: cfg.Local.Prev(), Local: cfg.Local, Flow: FlowN(0, cfg.Services[0].VIP, 80), Payload: payload,
	})
	if err != nil {
		return nil, err
	}
	w := &NICWorkload{tmpl: f, flows: flows, local: v4(cfg.Local)}
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
	fl := FlowN(int(w.order[i]), netip.Addr{}, 0)
	b := p.Buf[Headroom:]
	copy(b[:fastHeaders], w.tmpl[:fastHeaders]) // the headers the last rewrite changed
	src := fl.Src.As4()
	copy(b[50:54], src[:])
	binary.BigEndian.PutUint16(b[58:], fl.Sport)
	p.Off, p.Len = Headroom, len(w.tmpl)
	return p
}

// fastHeaders covers Ethernet, outer IPv4 and GRE: what forwarding rewrites.
const fastHeaders = 14 + 20 + 4

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
		fl := FlowN(f, netip.Addr{}, 0)
		b := p.Buf[Headroom:]
		copy(b[:fastHeaders], wl.tmpl[:fastHeaders])
		src := fl.Src.As4()
		copy(b[50:54], src[:])
		binary.BigEndian.PutUint16(b[58:], fl.Sport)
		p.Off, p.Len = Headroom, len(wl.tmpl)
		w.Process(p)
		if f%64 == 63 {
			w.Flush()
		}
	}
	w.Flush()
}
