//go:build !linux

package control

import (
	"errors"
	"log/slog"
	"net/netip"

	"github.com/rail-lb/rail/pipeline/header"
)

// Resolver needs Linux's netlink.
type Resolver struct{}

// NewResolver fails off Linux.
func NewResolver(string, func(netip.Addr, header.MAC, bool), *slog.Logger) (*Resolver, error) {
	return nil, errors.New("next_hop kernel: needs Linux")
}

func (r *Resolver) Reconcile(*Config, []Service) {}
func (r *Resolver) Run()                         {}
func (r *Resolver) Stop()                        {}
