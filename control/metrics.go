package control

import (
	"bytes"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	rtmetrics "runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"

	"github.com/rail-lb/rail/pipeline"
	"github.com/rail-lb/rail/rings"
)

// QueueStats is what the metrics endpoint reads for one worker: its
// pipeline counters and, when it drives a live socket, the socket's frame
// accounting and kernel statistics.
type QueueStats struct {
	Queue, CPU int
	Pipeline   *pipeline.Stats
	Sock       *rings.Socket // nil when there is no socket (replay)
	// Worker, when set, is the worker itself: GET /v1/trace peeks at its
	// connection table (read-only, without stopping it).
	Worker *pipeline.Worker
}

// Metrics renders the metrics of docs/reference.md. Counters are per core in the data path
// and summed only here, when scraped.
type Metrics struct {
	Queues []QueueStats
	Snap   *atomic.Pointer[pipeline.Snapshot]
	// Steer, when set, adds the frames the XDP program left to the kernel
	// to rail_pass_packets_total (the pipeline never sees those).
	Steer *rings.Steer
	// State, when set, adds the control plane's metrics (health, weights,
	// snapshot generation, rebuilds, reloads) and names backends by its
	// stable IDs; API adds the admin API's request counts.
	State *State
	API   *APIServer
	// Checker, when set, adds the health checks that could not run on this
	// node (rail_health_local_errors_total).
	Checker *Checker
	// BGP, when set, adds the speaker's sessions and announcements.
	BGP *Speaker
	// Capture, when set, adds the live-capture counters.
	Capture *pipeline.Capture
}

type passKey struct {
	queue, cpu int
	reason     pipeline.Reason
}

// WritePrometheus writes every metric in the Prometheus text format.
func (m *Metrics) WritePrometheus(w io.Writer) {
	// Pass counts come from the workers (frames redirected to them that
	// they passed) and from the XDP program (the usual case); both are
	// per queue and CPU, and are summed per label set.
	passes := map[passKey]uint64{}
	var order []passKey
	addPass := func(k passKey, n uint64) {
		if _, ok := passes[k]; !ok {
			order = append(order, k)
		}
		passes[k] += n
	}
	for _, q := range m.Queues {
		for r := pipeline.Reason(1); r < pipeline.NumReasons; r++ {
			if r.Verdict() == pipeline.Pass {
				addPass(passKey{q.Queue, q.CPU, r}, q.Pipeline.Reasons[r].Load())
			}
		}
	}
	if m.Steer != nil {
		qs := make([]int, len(m.Queues))
		for i, q := range m.Queues {
			qs[i] = q.Queue
		}
		if pcs, err := m.Steer.PassCounts(qs); err == nil {
			for _, pc := range pcs {
				addPass(passKey{pc.Queue, pc.CPU, pipeline.Reason(pc.Reason)}, pc.Packets)
			}
		}
	}
	if m.BGP != nil {
		m.BGP.WritePrometheus(w)
	}
	writeCaptureMetrics(w, m.Capture)
	if m.Checker != nil {
		for i, n := range m.Checker.LocalErrors() {
			metrics.WriteCounterUint64(w, `rail_health_local_errors_total{cause="`+LocalCauses[i]+`"}`, n)
		}
	}
	for _, k := range order {
		metrics.WriteCounterUint64(w, fmt.Sprintf(`rail_pass_packets_total{queue="%d",cpu="%d",reason="%v"}`, k.queue, k.cpu, k.reason), passes[k])
	}
	for _, q := range m.Queues {
		lq := `queue="` + strconv.Itoa(q.Queue) + `",cpu="` + strconv.Itoa(q.CPU) + `"`
		st := q.Pipeline
		// rx counts what reached the worker; frames the XDP program passed
		// are in rail_pass_packets_total only.
		metrics.WriteCounterUint64(w, "rail_rx_packets_total{"+lq+"}", st.Packets())
		metrics.WriteCounterUint64(w, "rail_tx_packets_total{"+lq+"}", st.Transmitted())
		for r := pipeline.Reason(1); r < pipeline.NumReasons; r++ {
			if r.Verdict() == pipeline.Drop {
				metrics.WriteCounterUint64(w, "rail_drop_packets_total{"+lq+`,reason="`+r.String()+`"}`, st.Reasons[r].Load())
			}
		}
		// Packets answered with ICMP fragmentation-needed / packet-too-big
		// instead of being forwarded (they are in rail_tx_packets_total).
		metrics.WriteCounterUint64(w, "rail_icmp_too_big_sent_total{"+lq+"}", st.Reasons[pipeline.ICMPTooBig].Load())
		metrics.WriteCounterUint64(w, "rail_fragment_lookups_total{"+lq+`,result="hit"}`, st.FragHits.Load())
		metrics.WriteCounterUint64(w, "rail_fragment_lookups_total{"+lq+`,result="miss"}`, st.FragMisses.Load())
		// Per worker: by queue and cpu (two queues' workers may share a
		// cpu, and each series needs a label set of its own).
		lc := lq
		metrics.WriteGaugeUint64(w, "rail_conntrack_entries{"+lc+"}", st.ConntrackLive.Load())
		metrics.WriteGaugeUint64(w, "rail_conntrack_slots{"+lc+"}", st.ConntrackSlots.Load())
		metrics.WriteCounterUint64(w, "rail_conntrack_lookups_total{"+lc+`,result="hit"}`, st.ConntrackHits.Load())
		metrics.WriteCounterUint64(w, "rail_conntrack_lookups_total{"+lc+`,result="miss"}`, st.ConntrackMiss.Load())
		metrics.WriteCounterUint64(w, "rail_conntrack_evicted_total{"+lc+"}", st.ConntrackEvicted.Load())
		metrics.WriteCounterUint64(w, "rail_conntrack_refused_total{"+lc+"}", st.ConntrackRefused.Load())
		metrics.WriteCounterUint64(w, "rail_quic_packets_total{"+lq+`,result="routed"}`, st.QUICRouted.Load())
		metrics.WriteCounterUint64(w, "rail_quic_packets_total{"+lq+`,result="fallback"}`, st.QUICFallback.Load())
		metrics.WriteCounterUint64(w, "rail_fast_path_packets_total{"+lq+"}", st.FastPath.Load())
		metrics.WriteCounterUint64(w, "rail_batches_total{"+lq+"}", st.Batches.Load())
		if q.Sock == nil {
			continue
		}
		lx := `queue="` + strconv.Itoa(q.Queue) + `"`
		fc := q.Sock.Frames()
		for _, f := range []struct {
			state string
			n     uint32
		}{{"free", fc.Free}, {"fill", fc.Fill}, {"rx", fc.Rx}, {"held", fc.Held}, {"tx", fc.Tx}, {"completion", fc.Completion}} {
			metrics.WriteGaugeUint64(w, "rail_umem_frames{"+lx+`,state="`+f.state+`"}`, uint64(f.n))
		}
		if xs, err := q.Sock.Stats(); err == nil {
			writeXSKStats(w, lx, xs)
		}
		// 1 while the socket busy polls its queue's NAPI; 0 when it was not
		// asked to or fell back (the log says why).
		metrics.WriteGaugeUint64(w, "rail_xsk_busy_poll{"+lx+"}", b2u(q.Sock.BusyPoll().Enabled))
	}
	// The collector (memory: in the configuration, docs/DEPLOY.md): its
	// cycles and GOGC, -1 when off (memory.policy limit or off; the soft
	// limit is go_memlimit_bytes). Heap, RSS and pause totals are in the
	// process metrics (go_memstats_heap_inuse_bytes,
	// process_resident_memory_bytes, go_gc_duration_seconds_sum).
	gc := []rtmetrics.Sample{{Name: "/gc/cycles/total:gc-cycles"}, {Name: "/gc/gogc:percent"}}
	rtmetrics.Read(gc)
	if gc[0].Value.Kind() == rtmetrics.KindUint64 {
		metrics.WriteCounterUint64(w, "rail_gc_cycles_total", gc[0].Value.Uint64())
	}
	if gc[1].Value.Kind() == rtmetrics.KindUint64 {
		pc := int64(-1) // GOGC=off reads as the largest uint64
		if v := gc[1].Value.Uint64(); v <= math.MaxInt32 {
			pc = int64(v)
		}
		metrics.WriteGaugeFloat64(w, "rail_gc_percent", float64(pc))
	}
	if m.API != nil {
		ok, client, server := m.API.Requests()
		metrics.WriteCounterUint64(w, `rail_api_requests_total{code="2xx"}`, ok)
		metrics.WriteCounterUint64(w, `rail_api_requests_total{code="4xx"}`, client)
		metrics.WriteCounterUint64(w, `rail_api_requests_total{code="5xx"}`, server)
	}
	if m.State != nil {
		m.State.writeMetrics(w)
		return
	}
	if m.Snap == nil {
		return
	}
	snap := m.Snap.Load()
	if snap == nil {
		return
	}
	cfg := snap.Config()
	for _, s := range cfg.Services {
		for _, b := range s.Backends {
			var n uint64
			for _, q := range m.Queues {
				n += q.Pipeline.Backends[b.ID].Load()
			}
			metrics.WriteCounterUint64(w, fmt.Sprintf("rail_service_backend_packets_total{service=%q,backend=%q}", s.Name, b.Address.String()), n)
		}
	}
}

// writeMetrics writes the control plane's metrics: per backend packets,
// health and weight; per service usable backends and rebuilds; snapshot
// generation and build time; reload outcomes; health transitions.
func (s *State) writeMetrics(w io.Writer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sv := range s.svcs {
		v := s.view(sv)
		usable := 0
		for _, b := range v.Backends {
			l := fmt.Sprintf("{service=%q,backend=%q}", sv.Name, b.Address)
			metrics.WriteCounterUint64(w, "rail_service_backend_packets_total"+l, b.Packets)
			metrics.WriteGaugeUint64(w, "rail_backend_up"+l, b2u(b.Healthy))
			metrics.WriteGaugeUint64(w, "rail_backend_weight"+l, uint64(b.Weight))
			if s.cfg.NextHop == NextHopKernel {
				metrics.WriteGaugeUint64(w, "rail_backend_next_hop_resolved"+l, b2u(b.NextHop != ""))
			}
			if b.Healthy && b.Weight > 0 {
				usable++
			}
		}
		ls := fmt.Sprintf("{service=%q}", sv.Name)
		metrics.WriteGaugeUint64(w, "rail_service_backends"+ls, uint64(len(v.Backends)))
		metrics.WriteGaugeUint64(w, "rail_service_usable_backends"+ls, uint64(usable))
		metrics.WriteGaugeUint64(w, "rail_service_available"+ls, b2u(usable > 0))
		metrics.WriteCounterUint64(w, "rail_table_rebuilds_total"+ls, s.rebuilds[sv.Name])
		if sv.WhenDown == DownForward {
			var remote uint64
			for _, a := range sv.ForwardTo {
				if id, ok := s.ids.ids[backendRef{sv.Name, nodeKey(a)}]; ok {
					remote += s.packetsByID(id) - s.ids.base[id]
				}
			}
			metrics.WriteCounterUint64(w, "rail_forwarded_remote_packets_total"+ls, remote)
		}
	}
	for t, n := range s.transitions {
		to := "down"
		if t.up {
			to = "up"
		}
		metrics.WriteCounterUint64(w, fmt.Sprintf("rail_health_transitions_total{service=%q,backend=%q,to=%q}", t.service, t.addr, to), n)
	}
	metrics.WriteGaugeUint64(w, "rail_snapshot_generation", s.gen.Load())
	metrics.WriteCounterUint64(w, "rail_snapshot_builds_total", s.builds.Load())
	metrics.WriteCounterFloat64(w, "rail_snapshot_build_seconds_total", float64(s.rebuildNanos.Load())/1e9)
	metrics.WriteGaugeFloat64(w, "rail_snapshot_last_build_seconds", float64(s.lastBuild.Load())/1e9)
	for i, r := range []string{"ok", "invalid", "failed"} {
		metrics.WriteCounterUint64(w, `rail_reloads_total{result="`+r+`"}`, s.reloads[i].Load())
	}
	metrics.WriteGaugeUint64(w, "rail_api_changes", uint64(len(s.changes)))
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}

// Serve starts the metrics endpoint on addr (/metrics). The listener is
// opened before Serve returns, so a bad address is reported at start.
// The listener is held to lim (see HTTPLimits).
func (m *Metrics) Serve(addr string, lim HTTPLimits) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics_address %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", m.serveMetrics)
	return serveHTTP(ln, mux, lim), nil
}

// scrapeBufs hold the rendered pages between scrapes: a page is tens of
// kilobytes, and growing a new buffer to that size for every scrape was
// half of a scrape's garbage (BenchmarkGarbageScrape).
var scrapeBufs = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledScrape bounds the buffers kept: one that grew past it (a node
// with thousands of backends) is left to the collector.
const maxPooledScrape = 4 << 20

// serveMetrics answers one scrape.
func (m *Metrics) serveMetrics(w http.ResponseWriter, _ *http.Request) {
	// Render first, send after: the rendering takes the state's lock, and a
	// slow scraper must never hold it (API calls, health changes and
	// reloads wait on it).
	b := scrapeBufs.Get().(*bytes.Buffer)
	b.Reset()
	m.WritePrometheus(b)
	metrics.WriteProcessMetrics(b)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4")
	w.Write(b.Bytes()) // copied into the connection's buffer: b may be reused
	if b.Cap() <= maxPooledScrape {
		scrapeBufs.Put(b)
	}
}

func writeXSKStats(w io.Writer, labels string, s rings.Stats) {
	for _, v := range []struct {
		name string
		n    uint64
	}{
		{"rail_xsk_rx_dropped_total", s.RxDropped},
		{"rail_xsk_rx_invalid_descs_total", s.RxInvalidDescs},
		{"rail_xsk_tx_invalid_descs_total", s.TxInvalidDescs},
		{"rail_xsk_rx_ring_full_total", s.RxRingFull},
		{"rail_xsk_fill_ring_empty_total", s.RxFillRingEmptyDescs},
		{"rail_xsk_tx_ring_empty_total", s.TxRingEmptyDescs},
		{"rail_xsk_tx_kicks_total", s.TxKicks},
		{"rail_xsk_fill_kicks_total", s.FillKicks},
		{"rail_xsk_busy_polls_total", s.BusyPolls},
		{"rail_xsk_waits_total", s.Waits},
		{"rail_xsk_kick_errors_total", s.KickErrors},
		{"rail_xsk_bad_recycles_total", s.BadRecycles},
		{"rail_xsk_bad_transmits_total", s.BadTransmits},
		{"rail_xsk_ring_errors_total", s.RingErrors},
	} {
		metrics.WriteCounterUint64(w, v.name+"{"+labels+"}", v.n)
	}
}
