package control

import (
	"fmt"
	"net/netip"

	"github.com/rail-lb/rail/pipeline"
	"github.com/rail-lb/rail/rings"
)

// PipelineConfig turns the file's configuration into the data path's. Every
// backend starts healthy (health checks come later); backend IDs, which
// index per-core counters, are assigned in file order.
func (c *Config) PipelineConfig() (pipeline.Config, error) {
	pc := pipeline.Config{Local: c.LocalAddress, Local6: c.LocalAddress6, Seed: c.HashSeed, MTU: c.MTU}
	switch c.NextHop {
	case NextHopIngress:
		pc.NextHop = pipeline.NextHopIngress
	case NextHopMAC:
		pc.NextHop, pc.NextHopMAC = pipeline.NextHopMAC, c.NextHopMAC
	case NextHopKernel:
		// Each backend's MAC comes from the neighbour resolver; without
		// one (replay, check) its packets are dropped as no_neighbor.
		pc.NextHop = pipeline.NextHopBackend
	default:
		return pc, fmt.Errorf("next_hop: %v is not supported", c.NextHop)
	}
	id := uint32(0)
	for _, s := range c.Services {
		sc := serviceConfig(s)
		for _, b := range s.Backends {
			if id >= pipeline.MaxBackendIDs {
				return pc, fmt.Errorf("services: more than %d backends in all", pipeline.MaxBackendIDs)
			}
			sc.Backends = append(sc.Backends, backendConfig(b, id))
			id++
		}
		pc.Services = append(pc.Services, sc)
	}
	return pc, nil
}

// serviceConfig is sv as the pipeline takes it, without its backends: the
// one translation raild run, replay and check share.
func serviceConfig(sv Service) pipeline.ServiceConfig {
	return pipeline.ServiceConfig{Name: sv.Name, VIP: sv.VIP, Port: sv.Port, Proto: uint8(sv.Protocol), TableSize: sv.TableSize,
		SecondChance: sv.SecondChance, QUIC: sv.QUIC}
}

// backendConfig is b as the pipeline takes it, with counter id id:
// healthy until a check says otherwise, no MAC until one is resolved.
func backendConfig(b Backend, id uint32) pipeline.BackendConfig {
	return pipeline.BackendConfig{Address: b.Address, Key: b.Key(), Weight: b.Weight, Healthy: true, ID: id,
		State: b.State.pipeline(), QUICServerID: b.QUICServerID}
}

// SteerKeys are the service keys the XDP steering program needs to make the
// same ours/not-ours decision as the pipeline.
func (c *Config) SteerKeys() []rings.ServiceKey { return SteerKeys(c.Services) }

// SteerKeys are the steering program's keys for services.
func SteerKeys(services []Service) []rings.ServiceKey {
	keys := make([]rings.ServiceKey, 0, len(services))
	for _, s := range services {
		keys = append(keys, rings.ServiceKey{VIP: s.VIP, Port: s.Port, Proto: uint8(s.Protocol)})
	}
	return keys
}

// Locals are the addresses that GRE must be sent to for the node to take it:
// local_address and, when set, local_address6.
func (c *Config) Locals() []netip.Addr {
	l := []netip.Addr{c.LocalAddress}
	if c.LocalAddress6.IsValid() {
		l = append(l, c.LocalAddress6)
	}
	return l
}
