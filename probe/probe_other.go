//go:build !linux

package probe

import (
	"errors"
	"net/netip"
	"syscall"
)

// Tunnel needs Linux (tc BPF, policy routing).
type Tunnel struct{}

// ErrNotSupported is returned off Linux.
var ErrNotSupported = errors.New("probe: health checks via gre need Linux")

// Open fails off Linux.
func Open(string, netip.Addr) (*Tunnel, error) { return nil, ErrNotSupported }

// Mark fails off Linux.
func (*Tunnel) Mark(netip.Addr) (uint32, error) { return 0, ErrNotSupported }

// Counts fails off Linux.
func (*Tunnel) Counts() (Counts, error) { return Counts{}, ErrNotSupported }

// Close does nothing.
func (*Tunnel) Close() error { return nil }

// Control fails off Linux.
func Control(uint32) func(string, string, syscall.RawConn) error {
	return func(string, string, syscall.RawConn) error { return ErrNotSupported }
}

// RPFilterProblem is "" off Linux.
func RPFilterProblem(string) string { return "" }
