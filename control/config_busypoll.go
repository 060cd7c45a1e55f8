package control

import "go.yaml.in/yaml/v3"

// DefaultBusyPoll: raild run asks for preferred busy polling unless the
// file says busy_poll: false (docs/DEPLOY.md, Busy polling).
const DefaultBusyPoll = true

// busyPoll parses busy_poll: true or false (yes/no, on/off). With true,
// raild sets SO_PREFER_BUSY_POLL, SO_BUSY_POLL and SO_BUSY_POLL_BUDGET on
// every AF_XDP socket and, for the NAPI instances of the queues whose
// sockets can busy poll, napi_defer_hard_irqs and gro_flush_timeout while
// it runs; a queue whose socket cannot (no NAPI id, a refused option) runs
// with need_wakeup kicks and raild logs why. Read at start only.
func (p *parser) busyPoll(n *yaml.Node, c *Config) {
	if v, ok := p.boolean(n, "busy_poll"); ok {
		c.BusyPoll = v
	}
}
