package rings

import "golang.org/x/sys/unix"

// allocUMEM maps a memory socket's UMEM the way Open does, so that Close
// unmaps it like any other.
func allocUMEM(n int) ([]byte, error) {
	return unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
}

// memoryPoll makes Wait on a socket without a descriptor a plain sleep:
// poll(2) ignores a negative descriptor.
func (s *Socket) memoryPoll() { s.sys.pollFd[0].Fd = -1 }
