//go:build !linux

package rings

import (
	"net/netip"
	"time"
)

// Off Linux the package builds (so that packages above it build and test
// anywhere) but nothing can be opened or loaded.

type sysState struct{}

// Open fails with ErrNotSupported: AF_XDP is Linux-only.
func Open(ifindex, queue int, o Opts) (*Socket, error) { return nil, ErrNotSupported }

func (s *Socket) kickTx()   {}
func (s *Socket) kickFill() {}
func (s *Socket) busyPoll() {}

// NAPIID fails with ErrNotSupported.
func (s *Socket) NAPIID() (uint32, error) { return 0, ErrNotSupported }

// Wait fails with ErrNotSupported.
func (s *Socket) Wait(timeout time.Duration) error { return ErrNotSupported }

// Stats fails with ErrNotSupported.
func (s *Socket) Stats() (Stats, error) { return Stats{}, ErrNotSupported }

// Close does nothing off Linux.
func (s *Socket) Close() error { return nil }

// Steer is the XDP steering program; off Linux it can't be loaded.
type Steer struct{}

// LoadSteer fails with ErrNotSupported: XDP is Linux-only.
func LoadSteer() (*Steer, error) { return nil, ErrNotSupported }

func (p *Steer) SetLocals(addrs []netip.Addr) error                { return ErrNotSupported }
func (p *Steer) SetServices(keys []ServiceKey) error               { return ErrNotSupported }
func (p *Steer) Register(queue int, s *Socket) error               { return ErrNotSupported }
func (p *Steer) Unregister(queue int) error                        { return ErrNotSupported }
func (p *Steer) Attach(ifindex int, mode XDPMode) (XDPMode, error) { return 0, ErrNotSupported }
func (p *Steer) Run(frame []byte) (redirect bool, err error)       { return false, ErrNotSupported }
func (p *Steer) Classify(frame []byte) (PassReason, error)         { return 0, ErrNotSupported }
func (p *Steer) PassCounts(queues []int) ([]PassCount, error)      { return nil, ErrNotSupported }
func (p *Steer) Close() error                                      { return nil }
