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
	wg  sync.WaitGroup
	log *slog.Logger

	mu      sync.Mutex
	targets map[healthRef]*target
	stopped bool
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
	return &Checker{set: set, log: log, targets: map[healthRef]*target{}}
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
	tick := time.NewTicker(spec.Interval)
	defer tick.Stop()
	for {
		err := Check(ctx, ref.addr, spec)
		if ctx.Err() != nil {
			return
		}
		ok := err == nil
		switch {
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
