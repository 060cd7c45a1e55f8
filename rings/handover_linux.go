package rings

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Adopt takes over a socket another process opened and handed over
// (Handoff, with its FD and UMEMFile): xsk is
// its bound AF_XDP socket and umem its UMEM memfd (both received with
// SCM_RIGHTS; the Socket owns them from here, on success and on error
// alike). The rings are mapped again from xsk and continue at the indices
// in their shared memory; the frames are where h.Frames says, checked
// against the rings. The socket stays registered wherever the other
// process registered it (the XSKMAP holds the kernel socket, not a
// descriptor), so frames keep arriving without a gap; until the first
// Service they wait on the rx ring.
func Adopt(xsk, umem int, h Handoff) (_ *Socket, err error) {
	o := withDefaults(h.Opts)
	s := &Socket{fd: xsk, queue: h.Queue, zeroCopy: h.ZeroCopy}
	s.sys.umemFd = umem
	defer func() {
		if err != nil {
			s.release()
		}
	}()
	where := fmt.Sprintf("rings: adopt queue %d (fd %d)", h.Queue, xsk)
	if err := o.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", where, err)
	}
	if t, err := unix.GetsockoptInt(xsk, unix.SOL_SOCKET, unix.SO_DOMAIN); err != nil || t != unix.AF_XDP {
		return nil, fmt.Errorf("%s: not an AF_XDP socket (SO_DOMAIN %d, %v)", where, t, err)
	}
	size := int(o.FrameSize) * int(o.FrameCount)
	var st unix.Stat_t
	if err := unix.Fstat(umem, &st); err != nil {
		return nil, fmt.Errorf("%s: fstat UMEM fd %d: %w", where, umem, err)
	}
	if st.Size != int64(size) {
		return nil, fmt.Errorf("%s: the UMEM memfd is %d bytes, %d frames of %d take %d", where, st.Size, o.FrameCount, o.FrameSize, size)
	}
	mem, err := unix.Mmap(umem, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("%s: mmap UMEM: %w", where, err)
	}
	s.umem = mem
	m, err := s.mapRings(where, o)
	if err != nil {
		return nil, err
	}
	if err := s.adopt(o, mem, m.fill, m.comp, m.rx, m.tx, m.fillAddrs, m.compAddrs, m.rxDescs, m.txDescs, h.Frames); err != nil {
		return nil, err
	}
	s.sys.pollFd[0] = unix.PollFd{Fd: int32(xsk), Events: unix.POLLIN}
	if o.BusyPoll {
		s.setBusyPoll(o)
	}
	return s, nil
}

// UMEMFile is the memfd the UMEM is mapped from: with FD, the
// descriptors a hand-over passes (with SCM_RIGHTS; the socket keeps its
// own).
func (s *Socket) UMEMFile() int { return s.sys.umemFd }
