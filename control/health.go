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

	"github.com/rail-lb/rail/probe"
)

// Checker runs each service's health check against each of its backends,
// one goroutine per (service, backend), and reports changes to set (the
// State's SetHealth). A backend is assumed up until its first check; the
// first check decides at once, after which Fall consecutive failures take
// it down and Rise consecutive successes bring it back.
type Checker struct {
	set func(ctx context.Context, service string, addr netip.Addr, up bool) bool
	// check, when set, runs every check instead of the loops' own probers
	// (tests).
	check func(ctx context.Context, addr netip.Addr, spec Health) error
	wg    sync.WaitGroup
	log   *slog.Logger
	// Tunnel, when set, carries the checks of `via: gre` services (it is
	// set before the first Reconcile).
	Tunnel Tunnel
	// Local is the source of checks through the tunnel (local_address).
	Local netip.Addr

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
// A check that cannot be set up on this node (the tunnel for checks via
// gre cannot be opened) is "setup".
var LocalCauses = [...]string{"emfile", "enfile", "enobufs", "enomem", "eaddrnotavail", "enetunreach", "setup"}

var localErrnos = [...]syscall.Errno{syscall.EMFILE, syscall.ENFILE, syscall.ENOBUFS, syscall.ENOMEM, syscall.EADDRNOTAVAIL, syscall.ENETUNREACH}

// errSetup marks the errors of a check that could not be set up here.
var errSetup = errors.New("the check cannot be set up on this node")

// localCause returns the index in LocalCauses of err's local cause, or -1.
func localCause(err error) int {
	for i, e := range localErrnos {
		if errors.Is(err, e) {
			return i
		}
	}
	if errors.Is(err, errSetup) {
		return len(LocalCauses) - 1
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
	vip    netip.Addr // the service's VIP: where checks via gre go
	cancel context.CancelFunc
}

// Tunnel is what checks via gre need of package probe: the socket mark of
// a backend's probes.
type Tunnel interface {
	Mark(backend netip.Addr) (uint32, error)
}

// wanted is one check Reconcile wants to run.
type wanted struct {
	spec Health
	vip  netip.Addr
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
	want := map[healthRef]wanted{}
	for _, sv := range svcs {
		if sv.Health == nil {
			continue
		}
		for _, b := range sv.Backends {
			want[healthRef{sv.Name, b.Address}] = wanted{*sv.Health, sv.VIP}
		}
	}
	for ref, t := range c.targets {
		if w, ok := want[ref]; !ok || w.spec != t.spec || w.vip != t.vip {
			t.cancel()
			delete(c.targets, ref)
		}
	}
	for ref, w := range want {
		if _, ok := c.targets[ref]; ok {
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		c.targets[ref] = &target{spec: w.spec, vip: w.vip, cancel: cancel}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			c.loop(ctx, ref, w.spec, w.vip)
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
func (c *Checker) loop(ctx context.Context, ref healthRef, spec Health, vip netip.Addr) {
	const unknown, up, down = 0, 1, 2
	state, streak := unknown, 0
	logged := false // a local failure was logged and nothing else happened since
	tick := time.NewTicker(spec.Interval)
	defer tick.Stop()
	// One prober per loop: what a check needs is built once, not per check.
	check := func(ctx context.Context) error { return c.check(ctx, ref.addr, spec) }
	if c.check == nil {
		p := c.prober(ref.addr, vip, spec)
		defer p.close()
		check = p.check
	}
	for {
		err := check(ctx)
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
	p := newProber(addr, spec)
	defer p.close()
	return p.check(ctx)
}

// prober runs the checks of one backend. What they need is built once: an
// http check keeps its client, transport and request from one check to the
// next, with small connection buffers; a check then leaves 8.7 KB of
// garbage instead of 18 KB (BenchmarkGarbageHealthProbe). Every check
// still opens a connection of its own (no keep-alive): a backend that
// stops accepting connections fails its next check.
type prober struct {
	spec     Health
	hostport string
	dialer   net.Dialer // for checks via gre: from local_address, marked
	// http
	client *http.Client
	tr     *http.Transport
	req    *http.Request // without a context: each check adds its own
	err    error         // the request could not be built
	// udp
	buf []byte
}

// udpProbe is the datagram of a udp check.
var udpProbe = []byte("rail health check\n")

// prober builds the prober of one backend: to its own address, or for a
// check via gre to the VIP, from local_address, through the tunnel.
func (c *Checker) prober(addr, vip netip.Addr, spec Health) *prober {
	if spec.Via != ViaGRE {
		return newProber(addr, spec)
	}
	p := newProber(vip, spec)
	if c.Tunnel == nil {
		p.err = fmt.Errorf("health check via gre: no tunnel (raild opens one when a service checks via gre): %w", errSetup)
		return p
	}
	mark, err := c.Tunnel.Mark(addr)
	if err != nil {
		p.err = fmt.Errorf("health check via gre: %v: %w", err, errSetup)
		return p
	}
	p.dialer.LocalAddr = &net.TCPAddr{IP: c.Local.AsSlice()}
	if spec.Type == HealthUDP {
		p.dialer.LocalAddr = &net.UDPAddr{IP: c.Local.AsSlice()}
	}
	p.dialer.Control = probe.Control(mark)
	return p
}

func newProber(addr netip.Addr, spec Health) *prober {
	p := &prober{spec: spec, hostport: netip.AddrPortFrom(addr, spec.Port).String()}
	switch spec.Type {
	case HealthHTTP:
		// Small buffers: a check reads a status line and a few headers, and
		// the body goes to io.Discard (whose buffers are pooled).
		p.tr = &http.Transport{DisableKeepAlives: true, Proxy: nil, ReadBufferSize: 1024, WriteBufferSize: 512,
			DialContext: func(ctx context.Context, network, address string) (net.Conn, error) {
				return p.dialer.DialContext(ctx, network, address)
			}}
		p.client = &http.Client{Transport: p.tr, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse // a redirect is an answer: judge its status
		}}
		p.req, p.err = http.NewRequest("GET", "http://"+p.hostport+spec.Path, nil)
		if p.err == nil {
			p.req.Header.Set("User-Agent", "rail-health/1")
		}
	case HealthUDP:
		p.buf = make([]byte, 512)
	}
	return p
}

func (p *prober) close() {
	if p.tr != nil {
		p.tr.CloseIdleConnections()
	}
}

// check runs one check; nil means up.
func (p *prober) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, p.spec.Timeout)
	defer cancel()
	if p.err != nil {
		return p.err
	}
	switch p.spec.Type {
	case HealthTCP:
		conn, err := p.dialer.DialContext(ctx, "tcp", p.hostport)
		if err != nil {
			return err
		}
		return conn.Close()
	case HealthHTTP:
		return p.checkHTTP(ctx)
	case HealthUDP:
		return p.checkUDP(ctx)
	}
	return fmt.Errorf("unknown health check type %q", p.spec.Type)
}

func (p *prober) checkHTTP(ctx context.Context) error {
	if p.err != nil {
		return p.err
	}
	resp, err := p.client.Do(p.req.WithContext(ctx))
	if err != nil {
		return err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode < p.spec.StatusMin || resp.StatusCode > p.spec.StatusMax {
		return fmt.Errorf("http status %d (want %d-%d)", resp.StatusCode, p.spec.StatusMin, p.spec.StatusMax)
	}
	return nil
}

// checkUDP sends one datagram. A reply, or silence until the timeout,
// count as up; an ICMP port unreachable (ECONNREFUSED) as down — UDP has
// no handshake to prove more.
func (p *prober) checkUDP(ctx context.Context) error {
	conn, err := p.dialer.DialContext(ctx, "udp", p.hostport)
	if err != nil {
		return err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	if _, err := conn.Write(udpProbe); err != nil {
		return err
	}
	_, err = conn.Read(p.buf)
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
