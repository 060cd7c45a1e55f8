package control

import (
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"time"

	"github.com/rail-lb/rail/pipeline"
)

// RequestError is a bad request to the State: Code is the HTTP status
// (4xx) and Msg one line that says what is wrong.
type RequestError struct {
	Code int
	Msg  string
}

func (e *RequestError) Error() string { return e.Msg }

func badRequest(code int, format string, args ...any) error {
	return &RequestError{Code: code, Msg: fmt.Sprintf(format, args...)}
}

// BackendView is one backend as the API shows it.
type BackendView struct {
	Address string `json:"address"`
	Name    string `json:"name,omitempty"`
	Weight  uint32 `json:"weight"`
	Healthy bool   `json:"healthy"`
	// State is the lifecycle state: active, filling or draining.
	State   string `json:"state"`
	Packets uint64 `json:"packets"`
	// Source is "config" for a backend from the file, "api" for one added
	// through the API (gone at the next reload or restart).
	Source string `json:"source"`
	// ConfigWeight is the file's weight when the API changed it (the
	// file's weight comes back at the next reload or restart).
	ConfigWeight *uint32 `json:"config_weight,omitempty"`
	// NextHop is the resolved next-hop MAC (next_hop: kernel only).
	NextHop string `json:"next_hop,omitempty"`
}

// ServiceView is one service as the API shows it.
type ServiceView struct {
	Name      string        `json:"name"`
	VIP       string        `json:"vip"`
	Port      uint16        `json:"port"`
	Protocol  string        `json:"protocol"`
	TableSize uint32        `json:"table_size"`
	Health    string        `json:"health,omitempty"` // the check's type; empty: none
	Available bool          `json:"available"`        // some backend is healthy with weight > 0
	Backends  []BackendView `json:"backends"`
}

// Services returns every service with its backends, weights, health and
// packet counts, as of now.
func (s *State) Services() []ServiceView {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ServiceView, 0, len(s.svcs))
	for _, sv := range s.svcs {
		out = append(out, s.view(sv))
	}
	return out
}

// Service returns one service; ok is false when there is none by that name.
func (s *State) Service(name string) (ServiceView, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.find(name)
	if i < 0 {
		return ServiceView{}, false
	}
	return s.view(s.svcs[i]), true
}

func (s *State) view(sv Service) ServiceView {
	v := ServiceView{Name: sv.Name, VIP: sv.VIP.String(), Port: sv.Port, Protocol: sv.Protocol.String(),
		TableSize: sv.TableSize, Backends: []BackendView{}}
	if sv.Health != nil {
		v.Health = string(sv.Health.Type)
	}
	for _, b := range sv.Backends {
		ref := backendRef{sv.Name, b.Key()}
		bv := BackendView{Address: b.Address.String(), Name: b.Name, Weight: b.Weight, Healthy: s.healthy(sv, b), Source: "config", State: string(b.State)}
		o := s.origin[ref]
		if o.added {
			bv.Source = "api"
		}
		if o.reweighted {
			w := o.fileWeight
			bv.ConfigWeight = &w
		}
		if id, ok := s.ids.ids[ref]; ok {
			bv.Packets = s.packetsByID(id) - s.ids.base[id]
		}
		if mac, ok := s.macs[b.Address]; ok && s.cfg.NextHop == NextHopKernel {
			bv.NextHop = fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5])
		}
		if bv.Healthy && b.Weight > 0 {
			v.Available = true
		}
		v.Backends = append(v.Backends, bv)
	}
	return v
}

func (s *State) healthy(sv Service, b Backend) bool {
	if sv.Health == nil {
		return true
	}
	up, ok := s.health[healthRef{sv.Name, b.Address}]
	return !ok || up
}

func (s *State) find(name string) int {
	for i, sv := range s.svcs {
		if sv.Name == name {
			return i
		}
	}
	return -1
}

// BackendRequest is the body of POST /v1/services/{name}/backends.
type BackendRequest struct {
	Address string  `json:"address"`
	Weight  *uint32 `json:"weight"`
	Name    string  `json:"name"`
}

// AddBackend adds a backend to a service until the next reload or restart.
func (s *State) AddBackend(service string, req BackendRequest) (BackendView, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := s.find(service)
	if i < 0 {
		return BackendView{}, badRequest(http.StatusNotFound, "no service %q", service)
	}
	if req.Address == "" {
		return BackendView{}, badRequest(http.StatusBadRequest, "address is required (e.g. {\"address\": \"10.1.0.14\", \"weight\": 1})")
	}
	addr, err := s.checkAddr(req.Address, s.svcs[i])
	if err != nil {
		return BackendView{}, err
	}
	b := Backend{Address: addr, Weight: DefaultWeight, Name: req.Name, State: StateActive}
	if req.Weight != nil {
		b.Weight = *req.Weight
	}
	if req.Name != "" {
		if msg := checkName(req.Name); msg != "" {
			return BackendView{}, badRequest(http.StatusBadRequest, "name: %s", msg)
		}
	}
	sv := s.svcs[i]
	for _, o := range sv.Backends {
		if o.Address == addr {
			return BackendView{}, badRequest(http.StatusConflict, "service %q already has backend %s", service, addr)
		}
		if o.Key() == b.Key() {
			return BackendView{}, badRequest(http.StatusConflict, "service %q: Maglev key %q is already used by backend %s", service, b.Key(), o.Address)
		}
	}
	if uint64(len(sv.Backends)+1) > uint64(sv.TableSize) {
		return BackendView{}, badRequest(http.StatusConflict, "service %q: table_size %d holds no more backends", service, sv.TableSize)
	}
	svcs := cloneServices(s.svcs)
	svcs[i].Backends = append(svcs[i].Backends, b)
	if err := s.apply(s.cfg, svcs); err != nil {
		return BackendView{}, badRequest(http.StatusUnprocessableEntity, "%v", err)
	}
	s.origin[backendRef{service, b.Key()}] = origin{added: true}
	s.change("added backend %s (weight %d) to %s", addr, b.Weight, service)
	return s.view(s.svcs[i]).Backends[len(s.svcs[i].Backends)-1], nil
}

// RemoveBackend removes a backend from a service until the next reload or
// restart. Its flows are re-picked among the others.
func (s *State) RemoveBackend(service, address string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, j, err := s.findBackend(service, address)
	if err != nil {
		return err
	}
	b := s.svcs[i].Backends[j]
	svcs := cloneServices(s.svcs)
	svcs[i].Backends = slices.Delete(svcs[i].Backends, j, j+1)
	if err := s.apply(s.cfg, svcs); err != nil {
		return badRequest(http.StatusUnprocessableEntity, "%v", err)
	}
	ref := backendRef{service, b.Key()}
	if s.origin[ref].added {
		delete(s.origin, ref)
	}
	delete(s.health, healthRef{service, b.Address})
	s.change("removed backend %s from %s", b.Address, service)
	return nil
}

// SetWeight changes a backend's weight until the next reload or restart;
// 0 drains it (no new flows, existing flows stay).
func (s *State) SetWeight(service, address string, weight uint32) (BackendView, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	i, j, err := s.findBackend(service, address)
	if err != nil {
		return BackendView{}, err
	}
	b := s.svcs[i].Backends[j]
	if b.Weight == weight {
		return s.view(s.svcs[i]).Backends[j], nil
	}
	svcs := cloneServices(s.svcs)
	svcs[i].Backends[j].Weight = weight
	if err := s.apply(s.cfg, svcs); err != nil {
		return BackendView{}, badRequest(http.StatusUnprocessableEntity, "%v", err)
	}
	ref := backendRef{service, b.Key()}
	if o := s.origin[ref]; !o.added && !o.reweighted {
		s.origin[ref] = origin{reweighted: true, fileWeight: b.Weight}
	} else if o.reweighted && o.fileWeight == weight {
		delete(s.origin, ref) // back to the file's weight
	}
	s.change("set the weight of backend %s of %s to %d", b.Address, service, weight)
	return s.view(s.svcs[i]).Backends[j], nil
}

// SetState sets a backend's lifecycle state (active, filling, draining)
// until the next reload or restart. Second chance needs every node of a
// fleet to agree on it: put it in the file of every node for that; the API
// changes this node only.
func (s *State) SetState(service, address string, st BackendState) (BackendView, error) {
	switch st {
	case StateActive, StateFilling, StateDraining:
	default:
		return BackendView{}, badRequest(http.StatusBadRequest, "state: %q is not active, filling or draining", st)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	i, j, err := s.findBackend(service, address)
	if err != nil {
		return BackendView{}, err
	}
	b := s.svcs[i].Backends[j]
	if b.State == st {
		return s.view(s.svcs[i]).Backends[j], nil
	}
	svcs := cloneServices(s.svcs)
	svcs[i].Backends[j].State = st
	if err := s.apply(s.cfg, svcs); err != nil {
		return BackendView{}, badRequest(http.StatusUnprocessableEntity, "%v", err)
	}
	s.change("set the state of backend %s of %s to %s (this node only: second chance needs it in every node's file)", b.Address, service, st)
	return s.view(s.svcs[i]).Backends[j], nil
}

func (s *State) change(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	s.changes = append(s.changes, msg)
	s.log.Info("api: "+msg+" (until the next reload or restart: write it to the config file to keep it)", "file", s.file)
}

func (s *State) findBackend(service, address string) (int, int, error) {
	i := s.find(service)
	if i < 0 {
		return 0, 0, badRequest(http.StatusNotFound, "no service %q", service)
	}
	addr, err := netip.ParseAddr(address)
	if err != nil {
		return 0, 0, badRequest(http.StatusBadRequest, "%q is not an IP address", address)
	}
	for j, b := range s.svcs[i].Backends {
		if b.Address == addr {
			return i, j, nil
		}
	}
	return 0, 0, badRequest(http.StatusNotFound, "service %q has no backend %s", service, addr)
}

// checkAddr applies the file's rules for a backend address.
func (s *State) checkAddr(text string, sv Service) (netip.Addr, error) {
	a, err := netip.ParseAddr(text)
	bad := func(format string, args ...any) (netip.Addr, error) {
		return netip.Addr{}, badRequest(http.StatusBadRequest, "address: "+format, args...)
	}
	if err != nil {
		return bad("%q is not an IP address", text)
	}
	if msg := addrProblem(a); msg != "" {
		return bad("%s", msg)
	}
	if msg := backendProblem(a); msg != "" {
		return bad("%s", msg)
	}
	switch {
	case a == s.cfg.LocalAddress || a == s.cfg.LocalAddress6:
		return bad("%s is this node's own address: a backend must be another host", a)
	case a.Is6() && !s.cfg.LocalAddress6.IsValid():
		return bad("%s is IPv6 and the config has no local_address6", a)
	}
	for _, o := range s.svcs {
		if o.VIP == a {
			return bad("%s is the vip of service %q: a backend must not be a vip", a, o.Name)
		}
	}
	return a, nil
}

// CoreConntrack is one worker's connection table.
type CoreConntrack struct {
	Queue   int    `json:"queue"`
	CPU     int    `json:"cpu"`
	Entries uint64 `json:"entries"`
	Slots   uint64 `json:"slots"`
	Hits    uint64 `json:"hits"`
	Misses  uint64 `json:"misses"`
}

// Conntrack summarizes each worker's connection table.
func (s *State) Conntrack() []CoreConntrack {
	s.mu.Lock()
	qs := s.queues
	s.mu.Unlock()
	out := []CoreConntrack{}
	for _, q := range qs {
		st := q.Pipeline
		out = append(out, CoreConntrack{Queue: q.Queue, CPU: q.CPU, Entries: st.ConntrackLive.Load(), Slots: st.ConntrackSlots.Load(),
			Hits: st.ConntrackHits.Load(), Misses: st.ConntrackMiss.Load()})
	}
	return out
}

// CoreStats is one worker's packet counters.
type CoreStats struct {
	Queue int               `json:"queue"`
	CPU   int               `json:"cpu"`
	RX    uint64            `json:"rx"`
	TX    uint64            `json:"tx"`
	Drops map[string]uint64 `json:"drops"`
	Pass  map[string]uint64 `json:"pass"`
}

// BackendStats is one backend's packet count.
type BackendStats struct {
	Service string `json:"service"`
	Address string `json:"address"`
	Packets uint64 `json:"packets"`
}

// Stats is GET /v1/stats: counters as of Time, for rates between two reads.
type Stats struct {
	Time       time.Time      `json:"time"`
	Generation uint64         `json:"generation"`
	Cores      []CoreStats    `json:"cores"`
	Backends   []BackendStats `json:"backends"`
}

// Stats reads every counter.
func (s *State) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{Time: time.Now(), Generation: s.gen.Load(), Cores: []CoreStats{}, Backends: []BackendStats{}}
	for _, q := range s.queues {
		p := q.Pipeline
		c := CoreStats{Queue: q.Queue, CPU: q.CPU, RX: p.Packets(), Drops: map[string]uint64{}, Pass: map[string]uint64{}}
		c.TX = p.Transmitted()
		for r := pipeline.Reason(1); r < pipeline.NumReasons; r++ {
			if n := p.Reasons[r].Load(); n > 0 {
				switch r.Verdict() {
				case pipeline.Drop:
					c.Drops[r.String()] = n
				case pipeline.Pass:
					c.Pass[r.String()] = n
				}
			}
		}
		st.Cores = append(st.Cores, c)
	}
	for _, sv := range s.svcs {
		for _, b := range s.view(sv).Backends {
			st.Backends = append(st.Backends, BackendStats{Service: sv.Name, Address: b.Address, Packets: b.Packets})
		}
	}
	return st
}
