package bench

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"time"

	"github.com/rail-lb/rail/pipeline"
)

// PipelineResult is what RunPipeline measured.
type PipelineResult struct {
	Packets, Flows int
	Elapsed        time.Duration
	Tx             uint64
}

// PacketsPerSecond is the packet rate of the run.
func (r PipelineResult) PacketsPerSecond() float64 {
	return float64(r.Packets) / r.Elapsed.Seconds()
}

// NsPerPacket is the time per packet of the run.
func (r PipelineResult) NsPerPacket() float64 {
	return float64(r.Elapsed.Nanoseconds()) / float64(r.Packets)
}

// BenchConfig is the service the in-memory benchmark forwards to: one TCP
// VIP with backends backends.
func BenchConfig(backends int) pipeline.Config {
	var bs []pipeline.BackendConfig
	for i := range backends {
		bs = append(bs, pipeline.BackendConfig{
			Address: netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i + 1)}),
			Weight:  1, Healthy: true, ID: uint32(i),
		})
	}
	return pipeline.Config{
		Local: netip.MustParseAddr("10.0.0.2"),
		Services: []pipeline.ServiceConfig{{
			Name: "web", VIP: netip.MustParseAddr("192.0.2.10"), Port: 80, Proto: 6,
			TableSize: 65537, Backends: bs,
		}},
	}
}

// Headroom is the space left in front of each synthetic frame, as a UMEM frame has.
const Headroom = 256

// Workload is a set of synthetic GRE-in frames, one per flow, laid out in
// frame-sized buffers with headroom.
type Workload struct {
	frames  [][]byte // pristine copies
	packets []pipeline.Packet
}

// NewWorkload builds flows frames with payload bytes of TCP payload.
func NewWorkload(flows, payload int) (*Workload, error) {
	if flows <= 0 {
		return nil, fmt.Errorf("bench: --flows must be positive, got %d", flows)
	}
	cfg := BenchConfig(1)
	vip := cfg.Services[0].VIP
	w := &Workload{}
	for i := range flows {
		f, err := AppendGRE(nil, GRESpec{
			RouterMAC: [6]byte{2, 0, 0, 0, 0, 1}, NodeMAC: [6]byte{2, 0, 0, 0, 0, 2},
			Router: netip.MustParseAddr("10.0.0.1"), Local: cfg.Local,
			Flow: FlowN(i, vip, 80), Payload: payload,
		})
		if err != nil {
			return nil, err
		}
		buf := make([]byte, Headroom+len(f))
		copy(buf[Headroom:], f)
		w.frames = append(w.frames, f)
		w.packets = append(w.packets, pipeline.Packet{Buf: buf, Off: Headroom, Len: len(f)})
	}
	return w, nil
}

// RunPipeline runs packets packets round-robin over the workload's flows
// through w.Process, flushing counters every batch packets as the live
// worker does. Process rewrites a GRE frame in place; before the frame's
// next turn the loop puts the outer destination back to the node's
// address (one 4-byte store, part of the timed loop), which makes it a GRE
// frame to this node again: the MACs swap back and forth and the outer
// source, TTL and checksum stay as Process wrote them, none of which
// changes the work Process does.
func RunPipeline(w *pipeline.Worker, s *pipeline.Snapshot, wl *Workload, packets, batch int) PipelineResult {
	start := time.Now()
	return runPipeline(w, s, wl, packets, batch, start)
}

// WarmUp sends every flow of the workload through w once, untimed, so that
// a following RunPipeline measures the steady state: connection entries
// exist and the pages of the connection table they live in are mapped.
func WarmUp(w *pipeline.Worker, s *pipeline.Snapshot, wl *Workload) {
	runPipeline(w, s, wl, len(wl.packets), 64, time.Now())
}

func runPipeline(w *pipeline.Worker, s *pipeline.Snapshot, wl *Workload, packets, batch int, start time.Time) PipelineResult {
	w.Begin(s, start)
	var tx uint64
	n := len(wl.packets)
	local := v4(s.Config().Local)
	j := 0
	for i := 0; i < packets; i++ {
		p := &wl.packets[j]
		binary.BigEndian.PutUint32(p.Buf[Headroom+30:], local)
		p.Off, p.Len = Headroom, len(wl.frames[j])
		if w.Process(p).Verdict == pipeline.Tx {
			tx++
		}
		if j++; j == n {
			j = 0
		}
		if i%batch == batch-1 {
			w.Flush()
		}
	}
	w.Flush()
	return PipelineResult{Packets: packets, Flows: n, Elapsed: time.Since(start), Tx: tx}
}
