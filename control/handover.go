package control

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	"github.com/rail-lb/rail/pipeline/header"
)

// HandoverVersion is the version of the control state a running raild
// passes to the one taking over (raild run --takeover). A process refuses
// state of another version.
const HandoverVersion = 1

// Handover is the control state a running raild passes to the one taking
// over: what the API changed since the file was loaded, the health
// verdicts and the next-hop MACs. With it the new process builds the same
// tables, so that no flow moves.
type Handover struct {
	Version int
	// FileServices are the services of the old process's file; Services
	// the effective ones (the file plus the API's changes).
	FileServices, Services []Service
	Changes                []string
	Origins                []HandoverOrigin
	Health                 []HandoverHealth
	Neighbors              []HandoverNeighbor
}

// HandoverOrigin is what the API did to one backend.
type HandoverOrigin struct {
	Service, Key string
	Added        bool
	Reweighted   bool
	FileWeight   uint32
}

// HandoverHealth is one backend's health verdict.
type HandoverHealth struct {
	Service string
	Address netip.Addr
	Up      bool
}

// HandoverNeighbor is one resolved next hop.
type HandoverNeighbor struct {
	Address netip.Addr
	MAC     header.MAC
}

// Export returns the control state for the process taking over.
func (s *State) Export() Handover {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := Handover{
		Version:      HandoverVersion,
		FileServices: cloneServices(s.cfg.Services),
		Services:     cloneServices(s.svcs),
		Changes:      slices.Clone(s.changes),
	}
	for ref, o := range s.origin {
		h.Origins = append(h.Origins, HandoverOrigin{Service: ref.service, Key: ref.key, Added: o.added, Reweighted: o.reweighted, FileWeight: o.fileWeight})
	}
	for ref, up := range s.health {
		h.Health = append(h.Health, HandoverHealth{Service: ref.service, Address: ref.addr, Up: up})
	}
	for a, m := range s.macs {
		h.Neighbors = append(h.Neighbors, HandoverNeighbor{Address: a, MAC: m})
	}
	return h
}

// Import takes over the control state a running raild exported. When this
// process's file has the same services as the old one's, the API's
// changes are kept; else the file wins, as on a reload, and the changes
// it replaces are returned (and logged). Health verdicts and next hops of
// backends still present are kept. Nothing changes on an error.
func (s *State) Import(h Handover) (discarded []string, err error) {
	if h.Version != HandoverVersion {
		return nil, fmt.Errorf("control state version %d, this raild reads version %d", h.Version, HandoverVersion)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	svcs := s.svcs
	orig := s.origin
	changes := s.changes
	if sameServices(h.FileServices, s.cfg.Services) {
		svcs = cloneServices(h.Services)
		changes = slices.Clone(h.Changes)
		orig = map[backendRef]origin{}
		for _, o := range h.Origins {
			orig[backendRef{o.Service, o.Key}] = origin{added: o.Added, reweighted: o.Reweighted, fileWeight: o.FileWeight}
		}
	} else {
		discarded = h.Changes
	}
	present := map[healthRef]bool{}
	for _, sv := range svcs {
		for _, b := range sv.Backends {
			present[healthRef{sv.Name, b.Address}] = true
		}
	}
	oldHealth, oldMacs := s.health, s.macs
	s.health, s.macs = maps.Clone(oldHealth), maps.Clone(oldMacs)
	for _, v := range h.Health {
		if ref := (healthRef{v.Service, v.Address}); present[ref] {
			s.health[ref] = v.Up
		}
	}
	for _, n := range h.Neighbors {
		s.macs[n.Address] = n.MAC
	}
	if err := s.apply(s.cfg, svcs); err != nil {
		s.health, s.macs = oldHealth, oldMacs
		return nil, fmt.Errorf("the passed control state does not apply: %w", err)
	}
	s.origin, s.changes = orig, changes
	s.log.Info("took over the control state", "api_changes", len(changes), "health_verdicts", len(h.Health), "next_hops", len(h.Neighbors))
	for _, d := range discarded {
		s.log.Warn("takeover: the file's services differ from the running process's: API change replaced by the file", "change", d)
	}
	return discarded, nil
}

// sameServices compares two files' services by content (their JSON
// without line numbers).
func sameServices(a, b []Service) bool {
	enc := func(svcs []Service) string {
		c := cloneServices(svcs)
		for i := range c {
			c[i].Line = 0
			for j := range c[i].Backends {
				c[i].Backends[j].Line = 0
			}
		}
		j, _ := json.Marshal(c)
		return string(j)
	}
	return enc(a) == enc(b)
}
