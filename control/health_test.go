package control

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// recorder collects a checker's reports.
type recorder struct {
	mu    sync.Mutex
	state map[netip.Addr]bool
	at    map[netip.Addr]time.Time
}

func (r *recorder) set(_ context.Context, _ string, a netip.Addr, up bool) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old, ok := r.state[a]; ok && old == up {
		return false
	}
	r.state[a], r.at[a] = up, time.Now()
	return true
}

// wait waits until a is reported up (or down) and returns when that was.
func (r *recorder) wait(t *testing.T, a netip.Addr, up bool, within time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		r.mu.Lock()
		s, ok := r.state[a]
		at := r.at[a]
		r.mu.Unlock()
		if ok && s == up {
			return at
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%v not reported up=%v within %v", a, up, within)
	return time.Time{}
}

func newRecorder() *recorder {
	return &recorder{state: map[netip.Addr]bool{}, at: map[netip.Addr]time.Time{}}
}

func port(t *testing.T, addr net.Addr) uint16 {
	_, p, _ := net.SplitHostPort(addr.String())
	n, _ := strconv.Atoi(p)
	return uint16(n)
}

func TestCheckTypes(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := port(t, ln.Addr())
	var status atomic.Int32
	status.Store(200)
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			w.WriteHeader(404)
			return
		}
		w.WriteHeader(int(status.Load()))
	})}
	go srv.Serve(ln)
	defer srv.Close()
	ctx := context.Background()
	spec := Health{Type: HealthHTTP, Port: p, Path: "/healthz", StatusMin: 200, StatusMax: 299, Timeout: time.Second}
	if err := Check(ctx, lo, spec); err != nil {
		t.Errorf("http 200: %v", err)
	}
	status.Store(503)
	if err := Check(ctx, lo, spec); err == nil {
		t.Error("http 503 counted as up")
	}
	status.Store(302)
	if err := Check(ctx, lo, spec); err == nil {
		t.Error("http 302 counted as up for 200-299")
	}
	spec.Path = "/other"
	if err := Check(ctx, lo, spec); err == nil {
		t.Error("http 404 counted as up")
	}
	if err := Check(ctx, lo, Health{Type: HealthTCP, Port: p, Timeout: time.Second}); err != nil {
		t.Errorf("tcp: %v", err)
	}
	srv.Close()
	if err := Check(ctx, lo, Health{Type: HealthTCP, Port: p, Timeout: time.Second}); err == nil {
		t.Error("tcp to a closed port counted as up")
	}

	uc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	up := port(t, uc.LocalAddr())
	go func() {
		buf := make([]byte, 64)
		for {
			n, from, err := uc.ReadFrom(buf)
			if err != nil {
				return
			}
			uc.WriteTo(buf[:n], from)
		}
	}()
	uspec := Health{Type: HealthUDP, Port: up, Timeout: 200 * time.Millisecond}
	if err := Check(ctx, lo, uspec); err != nil {
		t.Errorf("udp echo: %v", err)
	}
	uc.Close()
	if err := Check(ctx, lo, uspec); err == nil {
		t.Error("udp to a closed port counted as up")
	}
}

// TestCheckerFlap: a TCP listener goes away and comes back; the checker
// reports down within fall × interval and up within rise × interval.
func TestCheckerFlap(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := port(t, ln.Addr())
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	spec := &Health{Type: HealthTCP, Port: p, Interval: 50 * time.Millisecond, Timeout: 50 * time.Millisecond, Rise: 2, Fall: 3}
	r := newRecorder()
	c := NewChecker(r.set, nil)
	defer c.Stop()
	svcs := []Service{{Name: "web", Health: spec, Backends: []Backend{{Address: lo}}}}
	c.Reconcile(nil, svcs)
	r.wait(t, lo, true, time.Second)

	ln.Close()
	failed := time.Now()
	down := r.wait(t, lo, false, 2*time.Second)
	// fall checks after the failure: at most fall × interval plus one
	// interval of phase, and slack for a loaded machine (a checker that
	// ignored fall, or waited twice as long, is still caught).
	if d, max := down.Sub(failed), time.Duration(spec.Fall+2)*spec.Interval+150*time.Millisecond; d > max {
		t.Errorf("down after %v, want within %v", d, max)
	}
	ln2, err := net.Listen("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer ln2.Close()
	back := time.Now()
	upAt := r.wait(t, lo, true, 2*time.Second)
	if d := upAt.Sub(back); d > time.Duration(spec.Rise+1)*spec.Interval+50*time.Millisecond {
		t.Errorf("up after %v, want within %v", d, time.Duration(spec.Rise+1)*spec.Interval)
	}
	t.Logf("down %v after the failure, up %v after the return", down.Sub(failed), upAt.Sub(back))

	// Without a health block the backend is no longer checked.
	c.Reconcile(nil, []Service{{Name: "web", Backends: []Backend{{Address: lo}}}})
	c.mu.Lock()
	n := len(c.targets)
	c.mu.Unlock()
	if n != 0 {
		t.Errorf("%d checks left after the health block went away", n)
	}
}

// TestStateHealth: a health change rebuilds only its service; all down
// makes the service unavailable.
func TestStateHealth(t *testing.T) {
	l := newAPILab(t, apiConfig)
	dns := netip.MustParseAddr("10.1.0.21")
	if l.state.SetHealth("dns", dns, true) {
		t.Error("the first up verdict changed something")
	}
	if !l.state.SetHealth("dns", dns, false) {
		t.Fatal("down did not change the state")
	}
	if r := l.state.Snap.Load().Rebuilt(); len(r) != 1 || r[0] != "dns" {
		t.Errorf("rebuilt %v, want [dns]", r)
	}
	v, _ := l.state.Service("dns")
	if v.Available || v.Backends[0].Healthy {
		t.Errorf("dns with its only backend down: %+v", v)
	}
	if b := l.state.Snap.Load().Config().Services[1].Backends[0]; b.Healthy {
		t.Errorf("snapshot still has the backend healthy")
	}
	l.state.SetHealth("dns", dns, true)
	if v, _ := l.state.Service("dns"); !v.Available {
		t.Errorf("dns not available after the backend came back")
	}
	if l.state.transitions[transitionRef{"dns", dns, false}] != 1 || l.state.transitions[transitionRef{"dns", dns, true}] != 1 {
		t.Errorf("transitions %v", l.state.transitions)
	}
}

// TestCheckerLocalErrorsAreUnknown: a check that fails for a reason of
// this node's (out of descriptors, no route from here) neither takes a
// backend down nor brings it up; it is counted, and the backend's real
// failures still count once the node recovers.
func TestCheckerLocalErrorsAreUnknown(t *testing.T) {
	up := netip.MustParseAddr("10.1.0.11")   // up, then the node runs out of descriptors
	down := netip.MustParseAddr("10.1.0.12") // down, then no route from this node
	var phase atomic.Int32                   // 0: real verdicts, 1: local errors, 2: up fails for real
	rec := newRecorder()
	c := NewChecker(rec.set, nil)
	c.check = func(_ context.Context, a netip.Addr, _ Health) error {
		switch p := phase.Load(); {
		case p == 1 && a == up:
			return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("socket", syscall.EMFILE)}
		case p == 1:
			return &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ENETUNREACH)}
		case a == up && p == 0:
			return nil
		}
		return errors.New("connection refused")
	}
	spec := Health{Type: HealthTCP, Port: 80, Interval: 5 * time.Millisecond, Timeout: time.Second, Rise: 2, Fall: 2}
	c.Reconcile(nil, []Service{{Name: "web", Health: &spec, Backends: []Backend{{Address: up}, {Address: down}}}})
	defer c.Stop()
	rec.wait(t, up, true, time.Second)
	rec.wait(t, down, false, time.Second)
	phase.Store(1)
	deadline := time.Now().Add(time.Second)
	for n := c.LocalErrors(); n[0] < 20 || n[5] < 20; n = c.LocalErrors() {
		if time.Now().After(deadline) {
			t.Fatalf("local errors counted %v, want ≥ 20 emfile and enetunreach", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	rec.mu.Lock()
	gotUp, gotDown := rec.state[up], rec.state[down]
	rec.mu.Unlock()
	if !gotUp || gotDown {
		t.Fatalf("after local errors: %v up=%v, %v up=%v; want them unchanged (true, false)", up, gotUp, down, gotDown)
	}
	phase.Store(2)
	rec.wait(t, up, false, time.Second)
}
