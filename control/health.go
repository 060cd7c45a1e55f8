package control

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Checker runs each service's health check against each of its backends,
// one goroutine per (service, backend), and reports changes to set (the
// State's SetHealth). A backend is assumed up until its first check; the
// first check decides at once, after which Fall consecutive failures take
// it down and Rise consecutive successes bring it back.
type Checker struct {
	set func(ctx context.Context, service string, addr netip.Addr, up bool) bool
	// check runs one check (Check; tests replace it).
	check func(ctx context.Context, addr netip.Addr, spec Health) error
	wg    sync.WaitGroup
	log   *slog.Logger

	mu      sync.Mutex
	targets map[healthRef]*target
	stopped bool

	// local counts the checks that failed for a reason of this node's
	// (LocalCauses), by cause.
	local [len(LocalCauses)]atomic.Uint64
}

// LocalCauses are the reasons a check can fail on this node rather than
// at the backend: out of descriptors (emfile, enfile), of buffers or memory
// (enobufs, enomem), of local ports (eaddrnotavail), or no route from here
// to the backend (enetunreach). Such a check says nothing of the backend:
// it is "unknown", never a failure, and never takes a backend out of
// rotation on its own.
var LocalCauses = [...]string{"emfile", "enfile", "enobufs", "enomem", "eaddrnotavail", "enetunreach"}

var localErrnos = [len(LocalCauses)]syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.EADDRNOTAVAIL, syscall.ENETUNREACH}

// localCause returns the index in LocalCauses of err's local cause, or -1.
func localCause(err error) int {
	for i, e := range localErrnos {
		if errors.Is(err, e) {
			return i
		}
	}
	return -1
}

// LocalErrors returns how many checks failed for each of LocalCauses.
func (c *Checker) LocalErrors() (n [len(LocalCauses)]uint64) {
	for i := range c.local {
		n[i] = c.local[i].Load()
	}
	return n
}

type target struct {
	spec   Health
	cancel context.CancelFunc
}

// NewChecker returns a checker that reports to set. set gets the checking
// loop's context: a loop that has been cancelled (its backend removed or
// its check changed) may still be reporting, and set must drop the verdict
// if ctx is done once it holds its own lock (State.SetHealth does).
func NewChecker(set func(ctx context.Context, service string, addr netip.Addr, up bool) bool, log *slog.Logger) *Checker {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Checker{set: set, check: Check, log: log, targets: map[healthRef]*target{}}
}

// Reconcile starts checks for new backends, restarts those whose check
// changed and stops those that are gone. It never blocks on a check, so it
// may run as a State.OnApply hook.
func (c *Checker) Reconcile(_ *Config, svcs []Service) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return
	}
	want := map[healthRef]Health{}
	for _, sv := range svcs {
		if sv.Health == nil {
			continue
		}
		for _, b := range sv.Backends {
			want[healthRef{sv.Name, b.Address}] = *sv.Health
		}
	}
	for ref, t := range c.targets {
		if spec, ok := want[ref]; !ok || spec != t.spec {
			t.cancel()
			delete(c.targets, ref)
		}
	}
	for ref, spec := range want {
		if _, ok := c.targets[ref]; ok {
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		c.targets[ref] = &target{spec: spec, cancel: cancel}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.loop(ctx, ref, spec)
		}()
	}
}

// Stop ends every check and waits for the checks under way to finish
// (at most a check's timeout), so that none reports after Stop.
func (c *Checker) Stop() {
	c.mu.Lock()
	c.stopped = true
	for ref, t := range c.targets {
		t.cancel()
		delete(c.targets, ref)
	}
	c.mu.Unlock()
	c.wg.Wait()
}

// loop checks one backend every interval until ctx ends.
func (c *Checker) loop(ctx context.Context, ref healthRef, spec Health) {
	const unknown, up, down = 0, 1, 2
	state, streak := unknown, 0
	logged := false // a local failure was logged and nothing else happened since
	tick := time.NewTicker(spec.Interval)
	defer tick.Stop()
	for {
		err := c.check(ctx, ref.addr, spec)
		if ctx.Err() != nil {
			return
		}
		ok := err == nil
		cause := -1
		if !ok {
			cause = localCause(err)
		}
		if cause < 0 {
			logged = false
		}
		switch {
		case cause >= 0:
			// Unknown: the backend keeps its state and its streak.
			c.local[cause].Add(1)
			if !logged {
				logged = true
				c.log.Warn("health check could not run on this node: the backend keeps its state",
					"service", ref.service, "backend", ref.addr, "cause", LocalCauses[cause], "err", err)
			}
		case state == unknown:
			state, streak = down, 0
			if ok {
				state = up
			}
			c.report(ctx, ref, ok, err)
		case ok == (state == up):
			streak = 0
		default:
			streak++
			if ok && streak >= spec.Rise || !ok && streak >= spec.Fall {
				state, streak = down, 0
				if ok {
					state = up
				}
				c.report(ctx, ref, ok, err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

func (c *Checker) report(ctx context.Context, ref healthRef, up bool, err error) {
	if !up {
		c.log.Warn("health check failed", "service", ref.service, "backend", ref.addr, "err", err)
	}
	c.set(ctx, ref.service, ref.addr, up)
}

// Check runs one health check of spec against addr; nil means up.
func Check(ctx context.Context, addr netip.Addr, spec Health) error {
	ctx, cancel := context.WithTimeout(ctx, spec.Timeout)
	defer cancel()
	hostport := netip.AddrPortFrom(addr, spec.Port).String()
	var d net.Dialer
	switch spec.Type {
	case HealthTCP:
		conn, err := d.DialContext(ctx, "tcp", hostport)
		if err != nil {
			return err
		}
		return conn.Close()
	case HealthHTTP:
		return checkHTTP(ctx, hostport, spec)
	case HealthUDP:
		return checkUDP(ctx, hostport)
	}
	return fmt.Errorf("unknown health check type %q", spec.Type)
}

func checkHTTP(ctx context.Context, hostport string, spec Health) error {
	tr := &http.Transport{DisableKeepAlives: true, Proxy: nil}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse // a redirect is an answer: judge its status
	}}
	req, err := http.NewRequestWithContext(ctx, "GET", "http://"+hostport+spec.Path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "rail-health/1")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < spec.StatusMin || resp.StatusCode > spec.StatusMax {
		return fmt.Errorf("http status %d (want %d-%d)", resp.StatusCode, spec.StatusMin, spec.StatusMax)
	}
	return nil
}

// checkUDP sends one datagram. A reply, or silence until the timeout,
// count as up; an ICMP port unreachable (ECONNREFUSED) as down — UDP has
// no handshake to prove more.
func checkUDP(ctx context.Context, hostport string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", hostport)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if _, err := conn.Write([]byte("rail health check\n")); err != nil {
		return err
	}
	buf := make([]byte, 512)
	_, err = conn.Read(buf)
	var ne net.Error
	switch {
	case err == nil:
		return nil
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("port unreachable: %w", err)
	case errors.As(err, &ne) && ne.Timeout():
		return nil
	}
	return err
}
