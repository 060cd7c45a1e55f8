//go:build !linux

package rings

func allocUMEM(n int) ([]byte, error) { return make([]byte, n), nil }

func (s *Socket) memoryPoll() {}
