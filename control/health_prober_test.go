package control

import (
	"net"
	"net/http"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

// TestCheckerProbesReused: a checking loop's own prober (no check
// replaced) follows an http backend down and up again over many checks,
// with a connection of its own for every check.
func TestCheckerProbesReused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var status, requests, conns atomic.Int32
	status.Store(200)
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			requests.Add(1)
			if r.Header.Get("User-Agent") != "rail-health/1" || r.URL.Path != "/healthz" {
				w.WriteHeader(400)
				return
			}
			w.WriteHeader(int(status.Load()))
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				conns.Add(1)
			}
		},
	}
	go srv.Serve(ln)
	defer srv.Close()
	lo := netip.MustParseAddr("127.0.0.1")
	rec := newRecorder()
	c := NewChecker(rec.set, nil)
	defer c.Stop()
	spec := &Health{Type: HealthHTTP, Port: port(t, ln.Addr()), Path: "/healthz", StatusMin: 200, StatusMax: 299,
		Interval: MinHealthInterval, Timeout: MinHealthInterval, Rise: 1, Fall: 1}
	c.Reconcile(nil, []Service{{Name: "web", Health: spec, Backends: []Backend{{Address: lo}}}})
	rec.wait(t, lo, true, 2*time.Second)
	status.Store(503)
	rec.wait(t, lo, false, 2*time.Second)
	status.Store(200)
	rec.wait(t, lo, true, 2*time.Second)
	if n := requests.Load(); n < 3 || conns.Load() < n {
		t.Errorf("%d checks over %d connections: want at least 3, each on a connection of its own", n, conns.Load())
	}
}
