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
	pc := pipeline.Config{Local: c.LocalAddress, Seed: c.HashSeed}
	switch c.NextHop {
	case NextHopIngress:
		pc.NextHop = pipeline.NextHopIngress
	case NextHopMAC:
		pc.NextHop, pc.NextHopMAC = pipeline.NextHopMAC, c.NextHopMAC
	default:
		return pc, fmt.Errorf("next_hop: %v is not supported yet (use ingress or a MAC address)", c.NextHop)
	}
	id := uint32(0)
	for _, s := range c.Services {
		sc := pipeline.ServiceConfig{Name: s.Name, VIP: s.VIP, Port: s.Port, Proto: uint8(s.Protocol), TableSize: s.TableSize}
		for _, b := range s.Backends {
			if id >= pipeline.MaxBackendIDs {
				return pc, fmt.Errorf("services: more than %d backends in all", pipeline.MaxBackendIDs)
			}
			sc.Backends = append(sc.Backends, pipeline.BackendConfig{
				Address: b.Address, Key: b.Key(), Weight: b.Weight, Healthy: true, ID: id,
			})
			id++
		}
		pc.Services = append(pc.Services, sc)
	}
	return pc, nil
}

// SteerKeys are the service keys the XDP steering program needs to make the
// same ours/not-ours decision as the pipeline.
func (c *Config) SteerKeys() []rings.ServiceKey {
	keys := make([]rings.ServiceKey, 0, len(c.Services))
	for _, s := range c.Services {
		keys = append(keys, rings.ServiceKey{VIP: s.VIP, Port: s.Port, Proto: uint8(s.Protocol)})
	}
	return keys
}

// Locals are the addresses that GRE must be sent to for the node to take it.
func (c *Config) Locals() []netip.Addr { return []netip.Addr{c.LocalAddress} }
