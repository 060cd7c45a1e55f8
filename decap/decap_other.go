//go:build !linux

package decap

import (
	"errors"
	"net/netip"
)

var errLinux = errors.New("decap: needs Linux (tc BPF)")

// Program is the decap program; only Linux has it.
type Program struct{}

func Load() (*Program, error)                         { return nil, errLinux }
func LoadWith(Options) (*Program, error)              { return nil, errLinux }
func (p *Program) SetAddrs([]netip.Addr) error        { return errLinux }
func (p *Program) Attach(int, Mode) (Mode, error)     { return 0, errLinux }
func (p *Program) Pin(string) error                   { return errLinux }
func (p *Program) Run([]byte) (uint32, []byte, error) { return 0, nil, errLinux }
func (p *Program) Counts() (Counts, error)            { return Counts{}, errLinux }
func (p *Program) Close() error                       { return errLinux }
func Unpin(string) (Mode, error)                      { return 0, errLinux }
func ReadPinnedCounts(string) (Counts, error)         { return Counts{}, errLinux }
func ReadAttachedCounts(int) (Counts, error)          { return Counts{}, errLinux }
func DetachTC(int) error                              { return errLinux }
