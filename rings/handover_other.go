//go:build !linux

package rings

// Adopt fails with ErrNotSupported off Linux.
func Adopt(xsk, umem int, h Handoff) (*Socket, error) { return nil, ErrNotSupported }

// SteerVersion is empty off Linux: there is no steering program.
func SteerVersion() string { return "" }

// Export fails with ErrNotSupported off Linux.
func (p *Steer) Export() ([]int, error) { return nil, ErrNotSupported }

// AdoptSteer fails with ErrNotSupported off Linux.
func AdoptSteer(fds []int) (*Steer, error) { return nil, ErrNotSupported }

// UMEMFile is -1 off Linux.
func (s *Socket) UMEMFile() int { return -1 }
