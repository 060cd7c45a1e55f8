//go:build !linux

package rings

// Export fails with ErrNotSupported off Linux.
func (s *Socket) Export() (h Handoff, xsk, umem int, err error) {
	return Handoff{}, -1, -1, ErrNotSupported
}

// Adopt fails with ErrNotSupported off Linux.
func Adopt(xsk, umem int, h Handoff) (*Socket, error) { return nil, ErrNotSupported }
