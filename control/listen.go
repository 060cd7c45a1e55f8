package control

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"
)

// HTTPLimits bound what one client can hold of raild's HTTP servers (the
// admin API's unix socket and TCP listener, the metrics endpoint): how many
// connections each listener keeps open at once, and how long a request may
// take to arrive, to be answered and to sit idle between requests. A
// listener at its limit stops accepting until one of its connections ends,
// so a flood of idle connections costs raild at most MaxConnections
// descriptors per listener, never the descriptors the health checks and
// the data path need.
type HTTPLimits struct {
	// MaxConnections is the most connections a listener holds open.
	MaxConnections int
	// ReadHeaderTimeout and ReadTimeout bound reading a request's headers
	// and the whole request (a slow body is cut); WriteTimeout bounds
	// answering it; IdleTimeout closes a keep-alive connection that sends
	// no next request.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
}

// DefaultHTTPLimits are the limits when the file has no http: block.
var DefaultHTTPLimits = HTTPLimits{
	MaxConnections:    64,
	ReadHeaderTimeout: 5 * time.Second,
	ReadTimeout:       10 * time.Second,
	WriteTimeout:      30 * time.Second,
	IdleTimeout:       30 * time.Second,
}

// serveHTTP serves h on ln within lim and returns the server (for
// Shutdown).
func serveHTTP(ln net.Listener, h http.Handler, lim HTTPLimits) *http.Server {
	l := newLimitListener(ln, lim.MaxConnections)
	srv := &http.Server{
		Handler:           l.serving(h),
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		ReadTimeout:       lim.ReadTimeout,
		WriteTimeout:      lim.WriteTimeout,
		IdleTimeout:       lim.IdleTimeout,
		MaxHeaderBytes:    16 << 10,
		ConnState:         l.track,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
	}
	go srv.Serve(l)
	return srv
}

// slowRequest is how long a connection may take to deliver a request's
// headers before a newcomer may take its place at the limit. A client that
// means it sends its request at once.
const slowRequest = 250 * time.Millisecond

type connKey struct{}

// A connection's phase, as the limiter sees it.
const (
	reading = iota // connected or inside a request that is not yet complete
	serving        // its request is being answered: never closed by the limiter
	idle           // between requests
)

type connInfo struct {
	phase int
	since time.Time
}

// limitListener holds at most max connections open. At the limit, a new
// connection takes the place of the connection that has been idle the
// longest (a keep-alive connection between requests: closing it loses
// nothing), or else of the oldest one that has spent more than slowRequest
// without delivering a request. Only when every connection is busy being
// answered, or fresh, does Accept wait for one to close; the kernel's
// backlog holds the newcomer meanwhile without costing raild a descriptor.
// So idle and slow clients, however many, can neither exhaust raild's
// descriptors nor lock others out.
type limitListener struct {
	net.Listener
	max  int
	done chan struct{}
	// freed wakes an Accept waiting for a slot.
	freed     chan struct{}
	closeOnce sync.Once

	mu    sync.Mutex
	open  int
	conns map[net.Conn]connInfo
}

func newLimitListener(ln net.Listener, max int) *limitListener {
	return &limitListener{Listener: ln, max: max, done: make(chan struct{}), freed: make(chan struct{}, 1), conns: map[net.Conn]connInfo{}}
}

func (l *limitListener) Accept() (net.Conn, error) {
	for !l.reserve() {
		select {
		case <-l.freed:
		case <-time.After(slowRequest / 2): // a reading connection may become evictable
		case <-l.done:
			return nil, net.ErrClosed
		}
	}
	c, err := l.Listener.Accept()
	if err != nil {
		l.release()
		return nil, err
	}
	return &limitedConn{Conn: c, l: l}, nil
}

// reserve takes a slot, closing a connection to make one if it may; false
// means it must wait.
func (l *limitListener) reserve() bool {
	l.mu.Lock()
	if l.max <= 0 || l.open < l.max {
		l.open++
		l.mu.Unlock()
		return true
	}
	now := time.Now()
	var victim net.Conn
	var best connInfo
	for c, ci := range l.conns {
		switch {
		case ci.phase == serving || ci.phase == reading && now.Sub(ci.since) < slowRequest:
			continue
		case victim == nil, ci.phase == idle && best.phase != idle,
			ci.phase == best.phase && ci.since.Before(best.since):
			victim, best = c, ci
		}
	}
	if victim != nil {
		delete(l.conns, victim)
	}
	l.mu.Unlock()
	if victim != nil {
		victim.Close() // releases its slot; the next reserve takes it
	}
	return false
}

func (l *limitListener) release() {
	l.mu.Lock()
	l.open--
	l.mu.Unlock()
	select {
	case l.freed <- struct{}{}:
	default:
	}
}

// track is the server's ConnState hook.
func (l *limitListener) track(c net.Conn, st http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch st {
	case http.StateNew, http.StateActive:
		l.conns[c] = connInfo{reading, time.Now()}
	case http.StateIdle:
		l.conns[c] = connInfo{idle, time.Now()}
	default:
		delete(l.conns, c)
	}
}

// serving marks a connection as being answered while h runs.
func (l *limitListener) serving(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, ok := r.Context().Value(connKey{}).(net.Conn); ok {
			l.mu.Lock()
			if _, open := l.conns[c]; open {
				l.conns[c] = connInfo{serving, time.Now()}
			}
			l.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	})
}

func (l *limitListener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

type limitedConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, net.Conn(c))
		c.l.mu.Unlock()
		c.l.release()
	})
	return err
}
