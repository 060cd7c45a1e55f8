package main

import (
	"fmt"

	"github.com/rail-lb/rail/control"
)

// fdBudget is the most file descriptors raild run holds at once with cfg
// and n queues: its HTTP listeners at their connection limits, one per
// health check in flight, the queues' sockets, the steering program and a
// margin for the rest (netlink, the config file, logs). The HTTP limits are
// what keeps a flood of clients from taking more.
func fdBudget(cfg *control.Config, queues int) int {
	listeners := 2 // the API's unix socket and metrics
	if cfg.API.Address != "" {
		listeners++
	}
	checks := 0
	for _, sv := range cfg.Services {
		if sv.Health != nil {
			checks += len(sv.Backends)
		}
	}
	const steer, margin = 16, 64
	return listeners*(cfg.HTTP.MaxConnections+1) + 2*checks + 2*queues + steer + margin
}

// fdNote says whether the descriptor limit covers the budget.
func fdNote(soft, hard uint64, need int) string {
	if soft >= uint64(need) {
		return ""
	}
	return fmt.Sprintf("file descriptors: the limit is %d (hard %d) but raild may need %d: raise LimitNOFILE= (systemd) or ulimit -n, or lower http.max_connections", soft, hard, need)
}
