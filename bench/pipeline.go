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
	// full: the egress headers do not overlay the ingress ones exactly (an
	// IPv6 backend's outer header is 20 bytes longer), so each turn copies
	// the 38 bytes of ingress headers back instead of one address.
	full bool
	// freshPorts: each turn of a frame comes from the next source port, a
	// tuple the connection table does not have (NewQUICWorkload).
	freshPorts bool
}

// BenchConfig6 is BenchConfig with an IPv6 VIP and IPv6 backends.
func BenchConfig6(backends int) pipeline.Config {
	c := BenchConfig(backends)
	c.Local6 = netip.MustParseAddr("2001:db8::2")
	s := &c.Services[0]
	s.VIP = netip.MustParseAddr("2001:db8:100::10")
	for i := range s.Backends {
		s.Backends[i].Address = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 1, 14: byte(i >> 8), 15: byte(i + 1)})
	}
	return c
}

// FlowN6 is FlowN for an IPv6 VIP: the client address and port vary.
func FlowN6(i int, vip netip.Addr, port uint16) Flow {
	f := FlowN(i, netip.MustParseAddr("192.0.2.1"), port)
	src := [16]byte{0x20, 0x01, 0x0d, 0xb8, 0xc0, 0x0c}
	a := f.Src.As4()
	copy(src[12:], a[:])
	return Flow{Src: netip.AddrFrom16(src), Dst: vip, Sport: f.Sport, Dport: port}
}

// NewWorkload builds flows frames with payload bytes of TCP payload.
func NewWorkload(flows, payload int) (*Workload, error) { return newWorkload(flows, payload, false) }

// NewWorkload6 builds flows IPv6-in-GRE frames (AppendGRE6) for BenchConfig6.
func NewWorkload6(flows, payload int) (*Workload, error) { return newWorkload(flows, payload, true) }

func newWorkload(flows, payload int, v6 bool) (*Workload, error) {
	if flows <= 0 {
		return nil, fmt.Errorf("bench: --flows must be positive, got %d", flows)
	}
	cfg := BenchConfig(1)
	if v6 {
		cfg = BenchConfig6(1)
	}
	vip := cfg.Services[0].VIP
	w := &Workload{full: v6}
	for i := range flows {
		spec := GRESpec{
			RouterMAC: [6]byte{2, 0, 0, 0, 0, 1}, NodeMAC: [6]byte{2, 0, 0, 0, 0, 2},
			Router: netip.MustParseAddr("10.0.0.1"), Local: cfg.Local,
			Flow: FlowN(i, vip, 80), Payload: payload,
		}
		appendFrame := AppendGRE
		if v6 {
			spec.Flow, appendFrame = FlowN6(i, vip, 80), AppendGRE6
		}
		f, err := appendFrame(nil, spec)
		if err != nil {
			return nil, err
		}
		w.add(f)
	}
	return w, nil
}

// add puts frame f in the workload, in a buffer of its own with headroom.
func (w *Workload) add(f []byte) {
	buf := make([]byte, Headroom+len(f))
	copy(buf[Headroom:], f)
	w.frames = append(w.frames, f)
	w.packets = append(w.packets, pipeline.Packet{Buf: buf, Off: Headroom, Len: len(f)})
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
	return RunPipelineTap(w, s, wl, packets, batch, nil)
}

// RunPipelineTap is RunPipeline with the live worker loop's capture hook
// (pipeline.CaptureTap) called as Loop.Poll calls it: once per batch, and
// per packet while a capture runs. A nil tap leaves the hook out.
func RunPipelineTap(w *pipeline.Worker, s *pipeline.Snapshot, wl *Workload, packets, batch int, tap *pipeline.CaptureTap) PipelineResult {
	start := time.Now()
	return runPipeline(w, s, wl, packets, batch, start, tap)
}

// WarmUp sends every flow of the workload through w once, untimed, so that
// a following RunPipeline measures the steady state: connection entries
// exist and the pages of the connection table they live in are mapped.
func WarmUp(w *pipeline.Worker, s *pipeline.Snapshot, wl *Workload) {
	runPipeline(w, s, wl, len(wl.packets), 64, time.Now(), nil)
}

func runPipeline(w *pipeline.Worker, s *pipeline.Snapshot, wl *Workload, packets, batch int, start time.Time, tap *pipeline.CaptureTap) PipelineResult {
	w.Begin(s, start)
	var tx uint64
	n := len(wl.packets)
	local := v4(s.Config().Local)
	j := 0
	for i := 0; i < packets; i += batch {
		m := min(batch, packets-i)
		// As the live loop: one check per batch, the plain loop unless a
		// capture runs.
		if c := tap.Begin(w); c != nil {
			tx += wl.captureBatch(w, c, &j, m, local)
		} else {
			for range m {
				p := wl.next(j, local)
				if w.Process(p).Verdict == pipeline.Tx {
					tx++
				}
				if j++; j == n {
					j = 0
				}
			}
		}
		w.Flush()
	}
	return PipelineResult{Packets: packets, Flows: n, Elapsed: time.Since(start), Tx: tx}
}

// next restores packet j's ingress headers (Process rewrote them the last
// time round) and returns it.
func (wl *Workload) next(j int, local uint32) *pipeline.Packet {
	p := &wl.packets[j]
	if wl.full {
		copy(p.Buf[Headroom:Headroom+38], wl.frames[j])
	} else {
		binary.BigEndian.PutUint32(p.Buf[Headroom+30:], local)
	}
	if wl.freshPorts {
		sp := p.Buf[Headroom+58:]
		binary.BigEndian.PutUint16(sp, binary.BigEndian.Uint16(sp)+1)
	}
	p.Off, p.Len = Headroom, len(wl.frames[j])
	return p
}

// captureBatch is runPipeline's batch of m packets while a capture runs,
// as pipeline.Loop's: the tap sees each packet before and after Process,
// and the whole batch is transmitted.
func (wl *Workload) captureBatch(w *pipeline.Worker, c *pipeline.CaptureTap, j *int, m int, local uint32) uint64 {
	var tx uint64
	for range m {
		p := wl.next(*j, local)
		c.Received(p)
		r := w.Process(p)
		c.Processed(p, r)
		if r.Verdict == pipeline.Tx {
			tx++
		}
		if *j++; *j == len(wl.packets) {
			*j = 0
		}
	}
	c.Commit(int(tx))
	return tx
}
