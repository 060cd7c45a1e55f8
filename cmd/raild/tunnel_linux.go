package main

import (
	"fmt"
	"log/slog"
	"net/netip"
	"sync"

	"github.com/rail-lb/rail/probe"
)

// tunnel opens the probe tunnel the first time a health check via gre
// asks for it (so a node without such checks never creates its link and
// routing rule), and closes it when raild stops.
type tunnel struct {
	ifname string
	local  netip.Addr
	log    *slog.Logger

	mu  sync.Mutex
	t   *probe.Tunnel
	err error
}

func (t *tunnel) Mark(backend netip.Addr) (uint32, error) {
	t.mu.Lock()
	if t.t == nil && t.err == nil {
		if t.t, t.err = probe.Open(t.ifname, t.local); t.err == nil {
			t.log.Info("health checks via gre: tunnel open", "link", probe.DummyName, "table", fmt.Sprintf("%#x", probe.Table))
			if p := probe.RPFilterProblem(t.ifname); p != "" {
				t.log.Warn(p)
			}
		} else {
			t.log.Error("health checks via gre cannot run", "err", t.err)
		}
	}
	tt, err := t.t, t.err
	t.mu.Unlock()
	if err != nil {
		return 0, err
	}
	return tt.Mark(backend)
}

func (t *tunnel) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.t != nil {
		t.t.Close()
		t.t = nil
	}
}
