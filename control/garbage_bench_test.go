package control

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/rail-lb/rail/pipeline"
)

// The control plane's garbage: what one health probe and one metrics
// scrape allocate (go test ./control -run '^$' -bench Garbage -benchmem).
// With memory.policy gc the collector takes it back; with limit or off it
// is what the heap grows by (docs/DEPLOY.md, Memory).

// healthBackend answers every connection on a loopback port with one
// fixed 200 response and closes it, allocating next to nothing itself (an
// accepted connection: a few allocations of the figures are its), so that
// the benchmark counts the probe's allocations.
func healthBackend(b *testing.B) (netip.Addr, uint16) {
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { ln.Close() })
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n")
	go func() {
		buf := make([]byte, 4096)
		for {
			c, err := ln.AcceptTCP()
			if err != nil {
				return
			}
			// One read holds the whole request (a GET of < 200 bytes);
			// a keep-alive client gets an answer per request.
			for {
				n, err := c.Read(buf)
				if err != nil || n == 0 {
					break
				}
				if _, err := c.Write(resp); err != nil {
					break
				}
			}
			c.Close()
		}
	}()
	return netip.MustParseAddr("127.0.0.1"), uint16(ln.Addr().(*net.TCPAddr).Port)
}

func BenchmarkGarbageHealthProbe(b *testing.B) {
	addr, port := healthBackend(b)
	spec := Health{Type: HealthHTTP, Port: port, Path: "/healthz", StatusMin: 200, StatusMax: 399, Timeout: time.Second}
	ctx := context.Background()
	// Every check building its client and transport, as checkHTTP did
	// before the loops kept a prober (Check still does).
	b.Run("oneoff", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := Check(ctx, addr, spec); err != nil {
				b.Fatal(err)
			}
		}
	})
	// What a checking loop does: one prober for all its checks.
	b.Run("reused", func(b *testing.B) {
		p := newProber(addr, spec)
		defer p.close()
		b.ReportAllocs()
		for b.Loop() {
			if err := p.check(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// discard is a ResponseWriter that keeps nothing.
type discard struct{ h http.Header }

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(p []byte) (int, error) { return len(p), nil }
func (d *discard) WriteHeader(int)             {}

func BenchmarkGarbageScrape(b *testing.B) {
	cfg, probs := Parse([]byte(apiConfig), "bench.yaml")
	if cfg == nil {
		b.Fatal(probs)
	}
	st, err := NewState(cfg, "bench.yaml", nil)
	if err != nil {
		b.Fatal(err)
	}
	qs := []QueueStats{{Queue: 0, CPU: 1, Pipeline: new(pipeline.Stats)}, {Queue: 1, CPU: 2, Pipeline: new(pipeline.Stats)}}
	st.SetQueues(qs)
	m := &Metrics{Queues: qs, Snap: &st.Snap, State: st, API: &APIServer{State: st}}
	w := &discard{h: http.Header{}}
	req, _ := http.NewRequest("GET", "/metrics", nil)
	b.ReportAllocs()
	for b.Loop() {
		m.serveMetrics(w, req)
	}
}

func BenchmarkGarbageAPIServices(b *testing.B) {
	cfg, probs := Parse([]byte(apiConfig), "bench.yaml")
	if cfg == nil {
		b.Fatal(probs)
	}
	st, err := NewState(cfg, "bench.yaml", nil)
	if err != nil {
		b.Fatal(err)
	}
	st.SetQueues([]QueueStats{{Queue: 0, CPU: 1, Pipeline: new(pipeline.Stats)}})
	h := (&APIServer{State: st}).Handler()
	w := &discard{h: http.Header{}}
	req, _ := http.NewRequest("GET", "/v1/services", nil)
	b.ReportAllocs()
	for b.Loop() {
		clear(w.h)
		h.ServeHTTP(w, req)
	}
}
