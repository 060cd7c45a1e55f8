//go:build linux

package control

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/rail-lb/rail/pipeline/header"
)

// ResyncInterval is how often the resolver looks at every backend even
// when the kernel announces nothing: it asks the kernel again to resolve
// neighbours that are unknown, failed or stale.
var ResyncInterval = time.Second

// Resolver finds the next-hop MAC towards each backend for next_hop:
// kernel. For a backend it asks the kernel for the route (the gateway, or
// the backend itself when on-link), then for the neighbour entry of that
// next hop; it follows the kernel's route and neighbour changes by netlink
// subscription and asks the kernel to resolve a neighbour it does not
// know (NTF_USE, which sends the ARP or neighbour solicitation). Until a
// backend has a MAC its packets are dropped as no_neighbor.
type Resolver struct {
	set     func(addr netip.Addr, mac header.MAC, ok bool)
	log     *slog.Logger
	ifindex int
	ifname  string

	mu    sync.Mutex
	addrs map[netip.Addr]bool
	known map[netip.Addr]header.MAC // what set was last told
	warn  map[netip.Addr]string     // last problem logged per backend

	kick chan struct{}
	done chan struct{}
	once sync.Once
}

// NewResolver returns a resolver for frames that leave through ifname.
func NewResolver(ifname string, set func(netip.Addr, header.MAC, bool), log *slog.Logger) (*Resolver, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	link, err := netlink.LinkByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("next_hop kernel: interface %s: %w", ifname, err)
	}
	return &Resolver{set: set, log: log, ifindex: link.Attrs().Index, ifname: ifname,
		addrs: map[netip.Addr]bool{}, known: map[netip.Addr]header.MAC{}, warn: map[netip.Addr]string{},
		kick: make(chan struct{}, 1), done: make(chan struct{})}, nil
}

// Reconcile sets the backends to resolve (a State.OnApply hook).
func (r *Resolver) Reconcile(_ *Config, svcs []Service) {
	r.mu.Lock()
	r.addrs = map[netip.Addr]bool{}
	for _, sv := range svcs {
		for _, b := range sv.Backends {
			r.addrs[b.Address] = true
		}
	}
	r.mu.Unlock()
	r.poke()
}

func (r *Resolver) poke() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Stop ends Run.
func (r *Resolver) Stop() { r.once.Do(func() { close(r.done) }) }

// Run resolves until Stop, on every kernel change and every
// ResyncInterval.
func (r *Resolver) Run() {
	neigh := make(chan netlink.NeighUpdate, 256)
	route := make(chan netlink.RouteUpdate, 256)
	if err := netlink.NeighSubscribeWithOptions(neigh, r.done, netlink.NeighSubscribeOptions{ErrorCallback: r.subErr}); err != nil {
		r.log.Error("next hop: neighbour subscription", "err", err)
	}
	if err := netlink.RouteSubscribeWithOptions(route, r.done, netlink.RouteSubscribeOptions{ErrorCallback: r.subErr}); err != nil {
		r.log.Error("next hop: route subscription", "err", err)
	}
	tick := time.NewTicker(ResyncInterval)
	defer tick.Stop()
	r.resolveAll(true)
	for {
		trigger := false
		select {
		case <-r.done:
			return
		case <-neigh:
		case <-route:
		case <-r.kick:
			trigger = true
		case <-tick.C:
			trigger = true
		}
		// Take whatever else is queued: one pass serves a burst.
		for drained := false; !drained; {
			select {
			case <-neigh:
			case <-route:
			default:
				drained = true
			}
		}
		r.resolveAll(trigger)
	}
}

func (r *Resolver) subErr(err error) { r.log.Warn("next hop: netlink subscription", "err", err) }

// resolveAll looks every backend up; trigger asks the kernel to resolve
// the next hops that are missing or stale.
func (r *Resolver) resolveAll(trigger bool) {
	r.mu.Lock()
	addrs := make([]netip.Addr, 0, len(r.addrs))
	for a := range r.addrs {
		addrs = append(addrs, a)
	}
	var forget []netip.Addr
	for a := range r.known {
		if !r.addrs[a] {
			delete(r.known, a)
			forget = append(forget, a)
		}
	}
	r.mu.Unlock()
	// A backend that is no longer in any service loses its MAC in the state
	// too: if it comes back, it is resolved afresh, not sent to an old MAC.
	for _, a := range forget {
		r.set(a, header.MAC{}, false)
	}
	for _, a := range addrs {
		mac, ok, problem := r.resolve(a, trigger)
		r.mu.Lock()
		old, had := r.known[a]
		if problem != r.warn[a] {
			if problem != "" {
				r.log.Warn("next hop unresolved: packets to this backend are dropped (no_neighbor)", "backend", a, "reason", problem)
			}
			r.warn[a] = problem
		}
		changed := ok != had || ok && old != mac
		if ok {
			r.known[a] = mac
		} else {
			delete(r.known, a)
		}
		r.mu.Unlock()
		if changed {
			r.set(a, mac, ok)
		}
	}
}

// resolve returns the MAC of a's next hop. It keeps the last MAC while
// the kernel re-resolves an entry (incomplete, or gone after garbage
// collection) and forgets it only when resolution failed or the route
// changed the next hop.
func (r *Resolver) resolve(a netip.Addr, trigger bool) (header.MAC, bool, string) {
	routes, err := netlink.RouteGet(a.AsSlice())
	if err != nil || len(routes) == 0 {
		return header.MAC{}, false, fmt.Sprintf("no route: %v", err)
	}
	rt := routes[0]
	if rt.LinkIndex != r.ifindex {
		name := fmt.Sprint(rt.LinkIndex)
		if l, err := netlink.LinkByIndex(rt.LinkIndex); err == nil {
			name = l.Attrs().Name
		}
		return header.MAC{}, false, fmt.Sprintf("the route leaves through %s, not %s", name, r.ifname)
	}
	hop := a
	if rt.Gw != nil {
		if gw, ok := netip.AddrFromSlice(rt.Gw); ok {
			hop = gw.Unmap()
		}
	}
	family := netlink.FAMILY_V4
	if hop.Is6() {
		family = netlink.FAMILY_V6
	}
	neighs, err := netlink.NeighList(r.ifindex, family)
	if err != nil {
		return header.MAC{}, false, fmt.Sprintf("neighbour table: %v", err)
	}
	for _, n := range neighs {
		ip, ok := netip.AddrFromSlice(n.IP)
		if !ok || ip.Unmap() != hop {
			continue
		}
		usable := n.State&(netlink.NUD_REACHABLE|netlink.NUD_STALE|netlink.NUD_DELAY|netlink.NUD_PROBE|netlink.NUD_PERMANENT|netlink.NUD_NOARP) != 0
		if usable && len(n.HardwareAddr) == 6 {
			if trigger && n.State&netlink.NUD_STALE != 0 {
				r.use(hop, family) // re-confirm: a MAC that changed is found
			}
			return header.MAC(n.HardwareAddr), true, ""
		}
		if n.State&netlink.NUD_FAILED != 0 {
			if trigger {
				r.use(hop, family)
			}
			return header.MAC{}, false, fmt.Sprintf("next hop %s does not answer (neighbour entry FAILED)", hop)
		}
		break // incomplete: resolution under way
	}
	if trigger {
		r.use(hop, family)
	}
	r.mu.Lock()
	mac, ok := r.known[a]
	r.mu.Unlock()
	if ok {
		return mac, true, ""
	}
	return header.MAC{}, false, fmt.Sprintf("next hop %s not resolved yet", hop)
}

// use asks the kernel to resolve hop (as if a packet were sent to it).
func (r *Resolver) use(hop netip.Addr, family int) {
	err := netlink.NeighSet(&netlink.Neigh{LinkIndex: r.ifindex, Family: family, IP: net.IP(hop.AsSlice()), Flags: netlink.NTF_USE})
	if err != nil {
		r.log.Debug("next hop: NTF_USE", "hop", hop, "err", err)
	}
}
