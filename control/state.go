package control

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/rail-lb/rail/pipeline"
	"github.com/rail-lb/rail/pipeline/header"
)

// State is the node's control state: the configuration file as last
// loaded, the changes made through the API since, backend health and
// next-hop MACs. Every change — API, health, reload, neighbour — goes
// through its mutex, builds a new snapshot off the data path (reusing the
// Maglev tables of unchanged services) and swaps it into Snap. Workers
// never wait for it.
type State struct {
	// Snap is the snapshot the workers load once per batch.
	Snap atomic.Pointer[pipeline.Snapshot]

	mu   sync.Mutex
	log  *slog.Logger
	file string
	cfg  *Config
	svcs []Service // effective: cfg.Services plus API changes
	// origin records how the API changed a backend, by service and key.
	origin  map[backendRef]origin
	changes []string // API changes since the file was loaded
	health  map[healthRef]bool
	macs    map[netip.Addr]header.MAC
	ids     idAlloc
	hooks   []func(*Config, []Service)
	// usableHooks get, after every apply, which services have a usable
	// backend (healthy, weight > 0).
	usableHooks []func([]Service, map[string]bool)
	queues      []QueueStats
	down        map[string]bool // services with no usable backend, to log transitions

	gen          atomic.Uint64
	rebuilds     map[string]uint64
	rebuildNanos atomic.Int64 // total time spent building snapshots
	lastBuild    atomic.Int64
	builds       atomic.Uint64
	reloads      [3]atomic.Uint64 // ok, invalid, failed
	transitions  map[transitionRef]uint64
}

// Reload outcomes, in State.reloads order.
const (
	reloadOK = iota
	reloadInvalid
	reloadFailed
)

type backendRef struct{ service, key string }

// healthRef names a health-checked backend: checks go to the backend's
// address, per service (services may check different ports).
type healthRef struct {
	service string
	addr    netip.Addr
}

type transitionRef struct {
	service string
	addr    netip.Addr
	up      bool
}

// origin is what the API did to a backend since the file was loaded.
type origin struct {
	added      bool   // not in the file
	fileWeight uint32 // the file's weight, when reweighted
	reweighted bool
}

// NewState builds the first snapshot from cfg (read from file, which
// Reload reads again). log receives every change.
func NewState(cfg *Config, file string, log *slog.Logger) (*State, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &State{
		log: log, file: file, cfg: cfg,
		svcs:        cloneServices(cfg.Services),
		origin:      map[backendRef]origin{},
		health:      map[healthRef]bool{},
		macs:        map[netip.Addr]header.MAC{},
		ids:         newIDAlloc(),
		down:        map[string]bool{},
		rebuilds:    map[string]uint64{},
		transitions: map[transitionRef]uint64{},
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.apply(s.cfg, s.svcs); err != nil {
		return nil, err
	}
	return s, nil
}

// OnApply registers fn, called (under the state's lock, so in order) after
// every snapshot swap with the configuration and the effective services.
// fn must not call back into the State. It is also called once now.
func (s *State) OnApply(fn func(*Config, []Service)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hooks = append(s.hooks, fn)
	fn(s.cfg, cloneServices(s.svcs))
}

// SetQueues tells the state where the workers' counters are, for packet
// counts and the connection-table summary.
func (s *State) SetQueues(qs []QueueStats) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.queues = qs
}

// Config returns the configuration file as last loaded.
func (s *State) Config() *Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cfg
}

// Generation counts snapshot swaps (1 after NewState).
func (s *State) Generation() uint64 { return s.gen.Load() }

// apply builds and swaps in the snapshot for cfg and svcs; on success they
// become the state's. On failure nothing changes. Called with mu held.
func (s *State) apply(cfg *Config, svcs []Service) error {
	start := time.Now()
	pc, err := s.pipelineConfig(cfg, svcs)
	if err != nil {
		return err
	}
	snap, err := pipeline.NewSnapshotFrom(s.Snap.Load(), pc)
	if err != nil {
		return err
	}
	d := time.Since(start)
	s.Snap.Store(snap)
	s.cfg, s.svcs = cfg, svcs
	gen := s.gen.Add(1)
	s.builds.Add(1)
	s.rebuildNanos.Add(int64(d))
	s.lastBuild.Store(int64(d))
	for _, name := range snap.Rebuilt() {
		s.rebuilds[name]++
	}
	if gen > 1 {
		s.log.Info("snapshot", "generation", gen, "rebuilt", strings.Join(snap.Rebuilt(), ","), "took", d.Round(time.Microsecond))
	}
	usable := s.noteAvailability(pc)
	for _, h := range s.hooks {
		h(cfg, cloneServices(svcs))
	}
	for _, h := range s.usableHooks {
		h(cloneServices(svcs), maps.Clone(usable))
	}
	return nil
}

// OnUsable registers fn, called like OnApply's hooks (under the lock, so it
// must not block) with the services and which of them have a usable
// backend; it is called once at once with the current state.
func (s *State) OnUsable(fn func(svcs []Service, usable map[string]bool)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.usableHooks = append(s.usableHooks, fn)
	pc, err := s.pipelineConfig(s.cfg, s.svcs)
	if err != nil {
		return
	}
	fn(cloneServices(s.svcs), usableOf(pc))
}

func usableOf(pc pipeline.Config) map[string]bool {
	out := map[string]bool{}
	for _, sc := range pc.Services {
		for _, b := range sc.Backends {
			if b.Healthy && b.Weight > 0 && !b.Remote && b.State != pipeline.Draining {
				out[sc.Name] = true
				break
			}
		}
	}
	return out
}

// noteAvailability logs services that lose or regain every usable backend,
// and returns which services have one.
func (s *State) noteAvailability(pc pipeline.Config) map[string]bool {
	seen := map[string]bool{}
	for _, sc := range pc.Services {
		seen[sc.Name] = true
		usable := 0
		for _, b := range sc.Backends {
			if b.Healthy && b.Weight > 0 && !b.Remote && b.State != pipeline.Draining {
				usable++
			}
		}
		switch {
		case usable == 0 && !s.down[sc.Name]:
			s.down[sc.Name] = true
			s.log.Error("service has no usable backend: new flows are dropped (no_backend)", "service", sc.Name, "backends", len(sc.Backends))
		case usable > 0 && s.down[sc.Name]:
			delete(s.down, sc.Name)
			s.log.Info("service has usable backends again", "service", sc.Name, "usable", usable)
		}
	}
	for name := range s.down {
		if !seen[name] {
			delete(s.down, name)
		}
	}
	return usableOf(pc)
}

// pipelineConfig is the data path's view of cfg and svcs with health,
// next-hop MACs and stable backend IDs.
func (s *State) pipelineConfig(cfg *Config, svcs []Service) (pipeline.Config, error) {
	base := *cfg
	base.Services = nil
	pc, err := base.PipelineConfig()
	if err != nil {
		return pc, err
	}
	var want []backendRef
	for _, sv := range svcs {
		for _, b := range sv.Backends {
			want = append(want, backendRef{sv.Name, b.Key()})
		}
		if sv.WhenDown == DownForward {
			for _, a := range sv.ForwardTo {
				want = append(want, backendRef{sv.Name, nodeKey(a)})
			}
		}
	}
	ids, err := s.ids.assign(want, s.packetsByID)
	if err != nil {
		return pc, err
	}
	i := 0
	for _, sv := range svcs {
		sc := serviceConfig(sv)
		usable := false
		for _, b := range sv.Backends {
			bc := backendConfig(b, ids[i])
			i++
			if sv.Health != nil {
				if up, ok := s.health[healthRef{sv.Name, b.Address}]; ok {
					bc.Healthy = up
				}
			}
			if mac, ok := s.macs[b.Address]; ok {
				bc.MAC, bc.HasMAC = mac, true
			}
			usable = usable || bc.Healthy && bc.Weight > 0 && bc.State != pipeline.Draining
			sc.Backends = append(sc.Backends, bc)
		}
		if sv.WhenDown == DownForward {
			// While no backend is usable, the other Rail nodes stand in for
			// them, picked by Maglev over the nodes (every node of the
			// fleet picks the same one for a flow).
			var nodes []pipeline.BackendConfig
			for _, a := range sv.ForwardTo {
				bc := pipeline.BackendConfig{Address: a, Key: nodeKey(a), Weight: 1, Healthy: true, ID: ids[i], Remote: true}
				i++
				if mac, ok := s.macs[a]; ok {
					bc.MAC, bc.HasMAC = mac, true
				}
				nodes = append(nodes, bc)
			}
			if !usable {
				sc.Backends = nodes
			} else {
				// Out of the table (weight 0), but there: the connections
				// that went to another node while none was usable end by
				// way of it, their entries naming it.
				for _, n := range nodes {
					n.Weight = 0
					sc.Backends = append(sc.Backends, n)
				}
			}
		}
		pc.Services = append(pc.Services, sc)
	}
	return pc, nil
}

// nodeKey is the Maglev key (and backend reference) of a forward_to node.
func nodeKey(a netip.Addr) string { return "node:" + a.String() }

// packetsByID sums backend id's packet counters over the workers.
func (s *State) packetsByID(id uint32) uint64 {
	var n uint64
	for _, q := range s.queues {
		n += q.Pipeline.Backends[id].Load()
	}
	return n
}

// SetHealth records a health check's verdict; a change rebuilds only that
// service's table. It reports whether the state changed.
func (s *State) SetHealth(service string, addr netip.Addr, up bool) bool {
	return s.SetHealthFrom(context.Background(), service, addr, up)
}

// SetHealthFrom is SetHealth for a health-check loop with context ctx: a
// verdict from a loop cancelled before it got here (its backend was
// removed or re-added meanwhile) is dropped, so it cannot overwrite a newer
// loop's.
func (s *State) SetHealthFrom(ctx context.Context, service string, addr netip.Addr, up bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ctx.Err() != nil {
		return false
	}
	ref := healthRef{service, addr}
	if old, ok := s.health[ref]; ok && old == up {
		return false
	} else if !ok && up {
		s.health[ref] = true // first verdict: up, as assumed
		return false
	}
	old, had := s.health[ref]
	s.health[ref] = up
	if err := s.apply(s.cfg, s.svcs); err != nil {
		if had {
			s.health[ref] = old
		} else {
			delete(s.health, ref)
		}
		s.log.Error("health change not applied", "service", service, "backend", addr, "err", err)
		return false
	}
	s.transitions[transitionRef{service, addr, up}]++
	state := "down"
	if up {
		state = "up"
	}
	s.log.Info("backend health changed", "service", service, "backend", addr, "state", state)
	return true
}

// SetNeighbor records (ok) or forgets (!ok) the next-hop MAC towards a
// backend address, for next_hop: kernel.
func (s *State) SetNeighbor(addr netip.Addr, mac header.MAC, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	old, had := s.macs[addr]
	if had == ok && old == mac {
		return
	}
	if ok {
		s.macs[addr] = mac
	} else {
		delete(s.macs, addr)
	}
	if err := s.apply(s.cfg, s.svcs); err != nil {
		if had {
			s.macs[addr] = old
		} else {
			delete(s.macs, addr)
		}
		s.log.Error("neighbour change not applied", "backend", addr, "err", err)
		return
	}
	if ok {
		s.log.Info("next hop resolved", "backend", addr, "mac", fmt.Sprintf("%x", mac[:]))
	} else {
		s.log.Warn("next hop lost: packets to this backend are dropped (no_neighbor)", "backend", addr)
	}
}

// ReloadResult says what a reload did.
type ReloadResult struct {
	// Generation is the snapshot generation after the reload.
	Generation uint64 `json:"generation"`
	// Rebuilt names the services whose Maglev table was rebuilt.
	Rebuilt []string `json:"rebuilt"`
	// Discarded lists the API changes the reload replaced with the file.
	Discarded []string `json:"discarded"`
	// Restart lists changed keys that take effect only at the next start.
	Restart []string `json:"restart_needed"`
	// Warnings are the file's warnings.
	Warnings []string `json:"warnings"`
}

// ErrInvalid wraps a configuration that does not parse or validate.
var ErrInvalid = errors.New("invalid configuration")

// Reload reads the file again and applies it as a diff: services whose
// table inputs are unchanged keep their tables and connection entries.
// An invalid file changes nothing; the error holds every problem. API
// changes are replaced by the file (Discarded says which).
func (s *State) Reload() (ReloadResult, error) {
	cfg, probs := Load(s.file)
	var res ReloadResult
	for _, p := range probs {
		if p.Warning {
			res.Warnings = append(res.Warnings, p.String())
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cfg == nil {
		s.reloads[reloadInvalid].Add(1)
		var msgs []string
		for _, p := range probs {
			if !p.Warning {
				msgs = append(msgs, p.String())
			}
		}
		s.log.Error("reload: invalid configuration, nothing changed", "file", s.file, "problems", strings.Join(msgs, "; "))
		return res, fmt.Errorf("%w: %s", ErrInvalid, strings.Join(msgs, "; "))
	}
	var keep Config
	res.Restart, keep = restartKeys(s.cfg, cfg)
	svcs := keepOrder(s.svcs, cloneServices(cfg.Services))
	if err := s.apply(&keep, svcs); err != nil {
		s.reloads[reloadFailed].Add(1)
		s.log.Error("reload: configuration not applied, nothing changed", "file", s.file, "err", err)
		return res, err
	}
	s.reloads[reloadOK].Add(1)
	res.Discarded = s.changes
	s.changes = nil
	s.origin = map[backendRef]origin{}
	res.Generation = s.gen.Load()
	res.Rebuilt = s.Snap.Load().Rebuilt()
	s.log.Info("reload: applied", "file", s.file, "generation", res.Generation, "rebuilt", strings.Join(res.Rebuilt, ","),
		"discarded_api_changes", len(res.Discarded))
	for _, d := range res.Discarded {
		s.log.Warn("reload: API change replaced by the file", "change", d)
	}
	if len(res.Restart) > 0 {
		s.log.Warn("reload: changed keys take effect at the next start", "keys", strings.Join(res.Restart, ","))
	}
	// Backends the file removed forget their health: one that comes back is
	// up until its first check, as a new one is.
	present := map[healthRef]bool{}
	for _, sv := range s.svcs {
		for _, b := range sv.Backends {
			present[healthRef{sv.Name, b.Address}] = true
		}
	}
	for ref := range s.health {
		if !present[ref] {
			delete(s.health, ref)
		}
	}
	// Empty lists are [], not null, for the API's clients.
	for _, l := range []*[]string{&res.Rebuilt, &res.Discarded, &res.Restart, &res.Warnings} {
		if *l == nil {
			*l = []string{}
		}
	}
	return res, nil
}

// restartKeys names the keys that differ between the running
// configuration and next and are read only at start, and returns next
// with those keys at their running values: what a reload applies. MTU is
// not a key (raild run takes it from the interface) and keeps its running
// value too.
func restartKeys(running, next *Config) ([]string, Config) {
	var keys []string
	keep := *next
	hold := func(changed bool, key string, restore func(k *Config)) {
		if changed {
			keys = append(keys, key)
			restore(&keep)
		}
	}
	r := running
	hold(r.Interface != next.Interface, "interface", func(k *Config) { k.Interface = r.Interface })
	hold(!slices.Equal(r.Queues, next.Queues), "queues", func(k *Config) { k.Queues = r.Queues })
	hold(!slices.Equal(r.CPUs, next.CPUs), "cpus", func(k *Config) { k.CPUs = r.CPUs })
	hold(r.XDPMode != next.XDPMode, "xdp_mode", func(k *Config) { k.XDPMode = r.XDPMode })
	hold(r.ZeroCopy != next.ZeroCopy, "zero_copy", func(k *Config) { k.ZeroCopy = r.ZeroCopy })
	hold(r.MetricsAddress != next.MetricsAddress, "metrics_address", func(k *Config) { k.MetricsAddress = r.MetricsAddress })
	hold(r.Conntrack != next.Conntrack, "conntrack", func(k *Config) { k.Conntrack = r.Conntrack })
	hold(r.API != next.API, "api", func(k *Config) { k.API = r.API })
	hold(r.HTTP != next.HTTP, "http", func(k *Config) { k.HTTP = r.HTTP })
	hold(!reflect.DeepEqual(r.BGP, next.BGP), "bgp", func(k *Config) { k.BGP = r.BGP })
	hold(r.Memory != next.Memory, "memory", func(k *Config) { k.Memory = r.Memory })
	hold(r.BusyPoll != next.BusyPoll, "busy_poll", func(k *Config) { k.BusyPoll = r.BusyPoll })
	// The neighbour resolver runs only when raild starts with next_hop:
	// kernel, so switching into or out of it takes a restart.
	hold((r.NextHop == NextHopKernel) != (next.NextHop == NextHopKernel), "next_hop",
		func(k *Config) { k.NextHop, k.NextHopMAC = r.NextHop, r.NextHopMAC })
	keep.MTU = r.MTU
	return keys, keep
}

// keepOrder orders each service's backends in next as they were in prev
// (new ones last), so that reordering the file moves no flow: connection
// entries refer to a backend by its position. Maglev sorts by key, so the
// order changes no pick.
func keepOrder(prev, next []Service) []Service {
	pos := map[backendRef]int{}
	for _, sv := range prev {
		for i, b := range sv.Backends {
			pos[backendRef{sv.Name, b.Key()}] = i
		}
	}
	for _, sv := range next {
		rank := func(b Backend) int {
			if i, ok := pos[backendRef{sv.Name, b.Key()}]; ok {
				return i
			}
			return 1 << 30
		}
		slices.SortStableFunc(sv.Backends, func(a, b Backend) int { return rank(a) - rank(b) })
	}
	return next
}

func cloneServices(in []Service) []Service {
	out := slices.Clone(in)
	for i := range out {
		out[i].Backends = slices.Clone(out[i].Backends)
	}
	return out
}

// idAlloc hands out stable backend IDs (indexes of the per-core packet
// counters) by service and key. A backend that leaves keeps its ID until
// the IDs run out, so one that comes back continues its counter; an ID
// given to another backend starts from the counter's value then (base).
type idAlloc struct {
	ids  map[backendRef]uint32
	refs []backendRef // by ID; zero service = free
	used []uint64     // last-use stamp per ID, for reclaiming the oldest
	base []uint64
	tick uint64
}

func newIDAlloc() idAlloc {
	return idAlloc{ids: map[backendRef]uint32{}, base: make([]uint64, pipeline.MaxBackendIDs)}
}

// assign returns the IDs of want, in order. packets reads an ID's counter.
func (a *idAlloc) assign(want []backendRef, packets func(uint32) uint64) ([]uint32, error) {
	if len(want) > pipeline.MaxBackendIDs {
		return nil, fmt.Errorf("%d backends in all: at most %d", len(want), pipeline.MaxBackendIDs)
	}
	a.tick++
	out := make([]uint32, len(want))
	var missing []int
	for i, r := range want {
		if id, ok := a.ids[r]; ok {
			out[i] = id
			a.used[id] = a.tick
		} else {
			missing = append(missing, i)
		}
	}
	for _, i := range missing {
		var id uint32
		if len(a.refs) < pipeline.MaxBackendIDs {
			id = uint32(len(a.refs))
			a.refs = append(a.refs, backendRef{})
			a.used = append(a.used, 0)
		} else {
			// Reclaim the ID unused for longest (not in want: its stamp
			// is older than this tick).
			oldest := -1
			for j, u := range a.used {
				if u < a.tick && (oldest < 0 || u < a.used[oldest]) {
					oldest = j
				}
			}
			id = uint32(oldest)
			delete(a.ids, a.refs[id])
			a.base[id] = packets(id)
		}
		a.refs[id] = want[i]
		a.ids[want[i]] = id
		a.used[id] = a.tick
		out[i] = id
	}
	return out, nil
}
