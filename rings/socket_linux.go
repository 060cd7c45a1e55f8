package rings

import (
	"errors"
	"fmt"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

type sysState struct {
	maps   [][]byte // ring mappings, unmapped on Close
	pollFd [1]unix.PollFd
	// umemFd is the memfd the UMEM is mapped from (MAP_SHARED), so that
	// another process given it and the socket sees the same frames
	// (Handoff, Adopt). 0 until Open created it; -1 once closed.
	umemFd int
}

// Open creates an AF_XDP socket with its own UMEM of o.FrameCount frames,
// maps its four rings, binds it to queue of ifindex with
// XDP_USE_NEED_WAKEUP (and XDP_ZEROCOPY or XDP_COPY per o.ZeroCopy), and
// puts min(FrameCount, FillSize) frames on the fill ring. Fields of o left
// zero take their DefaultOpts values (Headroom and ZeroCopy default to 0).
//
// Needs CAP_NET_RAW, plus CAP_IPC_LOCK or enough RLIMIT_MEMLOCK for the UMEM.
// Frames only arrive once an XDP program redirects to the socket (see
// Steer.Register).
func Open(ifindex, queue int, o Opts) (*Socket, error) {
	o = withDefaults(o)
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if ifindex <= 0 || queue < 0 {
		return nil, fmt.Errorf("rings: %w: ifindex %d queue %d: need ifindex > 0 and queue >= 0", ErrInvalidOpts, ifindex, queue)
	}
	switch o.ZeroCopy {
	case ZeroCopyOn:
		return open(ifindex, queue, o, unix.XDP_ZEROCOPY)
	case ZeroCopyOff:
		return open(ifindex, queue, o, unix.XDP_COPY)
	}
	s, zerr := open(ifindex, queue, o, unix.XDP_ZEROCOPY)
	if zerr == nil {
		return s, nil
	}
	s, err := open(ifindex, queue, o, unix.XDP_COPY)
	if err != nil {
		return nil, errors.Join(err, zerr)
	}
	return s, nil
}

func withDefaults(o Opts) Opts {
	d := DefaultOpts()
	if o.FrameSize == 0 {
		o.FrameSize = d.FrameSize
	}
	if o.FrameCount == 0 {
		o.FrameCount = d.FrameCount
	}
	if o.FillSize == 0 {
		o.FillSize = d.FillSize
	}
	if o.CompletionSize == 0 {
		o.CompletionSize = d.CompletionSize
	}
	if o.RxSize == 0 {
		o.RxSize = d.RxSize
	}
	if o.TxSize == 0 {
		o.TxSize = d.TxSize
	}
	if o.BusyPollUsecs == 0 {
		o.BusyPollUsecs = DefaultBusyPollUsecs
	}
	if o.BusyPollBudget == 0 {
		o.BusyPollBudget = DefaultBusyPollBudget
	}
	return o
}

func open(ifindex, queue int, o Opts, mode uint16) (_ *Socket, err error) {
	where := fmt.Sprintf("rings: open ifindex %d queue %d", ifindex, queue)
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("%s: socket(AF_XDP): %w (needs CAP_NET_RAW and a kernel with CONFIG_XDP_SOCKETS)", where, err)
	}
	s := &Socket{fd: fd, queue: queue}
	s.sys.umemFd = -1
	defer func() {
		if err != nil {
			s.release()
		}
	}()

	umemLen := int(o.FrameSize) * int(o.FrameCount)
	umem, err := s.mapUMEM(where, umemLen)
	if err != nil {
		return nil, err
	}
	reg := unix.XDPUmemReg{
		Addr:     uint64(uintptr(unsafe.Pointer(&umem[0]))),
		Len:      uint64(umemLen),
		Size:     o.FrameSize,
		Headroom: o.Headroom,
	}
	if err := setsockopt(fd, unix.XDP_UMEM_REG, unsafe.Pointer(&reg), unsafe.Sizeof(reg)); err != nil {
		return nil, fmt.Errorf("%s: XDP_UMEM_REG (%d frames of %d bytes, headroom %d): %w (raise RLIMIT_MEMLOCK or run with CAP_IPC_LOCK if ENOBUFS/EPERM)",
			where, o.FrameCount, o.FrameSize, o.Headroom, err)
	}
	for _, r := range []struct {
		opt  int
		name string
		size uint32
	}{
		{unix.XDP_UMEM_FILL_RING, "XDP_UMEM_FILL_RING", o.FillSize},
		{unix.XDP_UMEM_COMPLETION_RING, "XDP_UMEM_COMPLETION_RING", o.CompletionSize},
		{unix.XDP_RX_RING, "XDP_RX_RING", o.RxSize},
		{unix.XDP_TX_RING, "XDP_TX_RING", o.TxSize},
	} {
		if err := unix.SetsockoptInt(fd, unix.SOL_XDP, r.opt, int(r.size)); err != nil {
			return nil, fmt.Errorf("%s: %s size %d: %w", where, r.name, r.size, err)
		}
	}
	m, err := s.mapRings(where, o)
	if err != nil {
		return nil, err
	}
	s.init(o, umem, m.fill, m.comp, m.rx, m.tx, m.fillAddrs, m.compAddrs, m.rxDescs, m.txDescs)

	sa := &unix.SockaddrXDP{Flags: unix.XDP_USE_NEED_WAKEUP | mode, Ifindex: uint32(ifindex), QueueID: uint32(queue)}
	if err := bindXSK(fd, sa); err != nil {
		m := "XDP_COPY"
		hint := ""
		switch {
		case errors.Is(err, unix.EBUSY):
			hint = fmt.Sprintf(" (another AF_XDP socket still holds this queue after %v: another raild, or another program, runs on it)", bindBusyWait)
		case mode == unix.XDP_ZEROCOPY:
			hint = " (the driver may not support zero-copy AF_XDP: use zero_copy auto or off)"
		}
		if mode == unix.XDP_ZEROCOPY {
			m = "XDP_ZEROCOPY"
		}
		return nil, fmt.Errorf("%s: bind %s: %w%s", where, m, err, hint)
	}
	xo, err := unix.GetsockoptInt(fd, unix.SOL_XDP, unix.XDP_OPTIONS)
	if err != nil {
		return nil, fmt.Errorf("%s: XDP_OPTIONS: %w", where, err)
	}
	s.zeroCopy = xo&unix.XDP_OPTIONS_ZEROCOPY != 0
	s.sys.pollFd[0] = unix.PollFd{Fd: int32(fd), Events: unix.POLLIN}
	if o.BusyPoll {
		s.setBusyPoll(o)
	}
	return s, nil
}

// bindBusyWait is how long bindXSK waits for a queue that is busy.
const bindBusyWait = 2 * time.Second

// bindXSK binds the socket to its queue. A queue is busy (EBUSY) while
// another socket holds it — and for a moment after that socket's process
// exited, until the kernel has torn the socket down, which takes longer
// under load (a raild restarted at 100,000 frames/s met it). So it tries
// again every 20 ms for up to bindBusyWait before giving up.
func bindXSK(fd int, sa *unix.SockaddrXDP) error {
	deadline := time.Now().Add(bindBusyWait)
	for {
		err := unix.Bind(fd, sa)
		if err != unix.EBUSY || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// mapUMEM creates the UMEM as a memfd of n bytes mapped MAP_SHARED: the
// memory is the file's, so a process that is passed the memfd maps the
// very frames the kernel reads and writes (Handoff, Adopt).
func (s *Socket) mapUMEM(where string, n int) ([]byte, error) {
	fd, err := unix.MemfdCreate("rail-umem", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("%s: memfd_create for the UMEM: %w", where, err)
	}
	s.sys.umemFd = fd
	if err := unix.Ftruncate(fd, int64(n)); err != nil {
		return nil, fmt.Errorf("%s: size the UMEM memfd to %d bytes: %w", where, n, err)
	}
	umem, err := unix.Mmap(fd, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return nil, fmt.Errorf("%s: mmap UMEM of %d bytes: %w", where, n, err)
	}
	s.umem = umem
	return umem, nil
}

// ringMaps are the four rings of a socket as mapped from its fd.
type ringMaps struct {
	fill, comp, rx, tx   ringMem
	fillAddrs, compAddrs []uint64
	rxDescs, txDescs     []Desc
}

// mapRings maps the socket's four rings (sized by o) from s.fd. The
// mappings are the kernel's ring memory, shared by every process that maps
// them: their producer and consumer indices are the rings' whole state.
func (s *Socket) mapRings(where string, o Opts) (ringMaps, error) {
	var off unix.XDPMmapOffsets
	if err := getsockopt(s.fd, unix.XDP_MMAP_OFFSETS, unsafe.Pointer(&off), unsafe.Sizeof(off)); err != nil {
		return ringMaps{}, fmt.Errorf("%s: XDP_MMAP_OFFSETS: %w", where, err)
	}
	mapRing := func(name string, ro unix.XDPRingOffset, size uint32, entry uintptr, pgoff int64) (ringMem, unsafe.Pointer, error) {
		length := int(ro.Desc) + int(size)*int(entry)
		mem, err := unix.Mmap(s.fd, pgoff, length, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
		if err != nil {
			return ringMem{}, nil, fmt.Errorf("%s: mmap %s ring: %w", where, name, err)
		}
		s.sys.maps = append(s.sys.maps, mem)
		return ringMem{
			producer: (*uint32)(unsafe.Pointer(&mem[ro.Producer])),
			consumer: (*uint32)(unsafe.Pointer(&mem[ro.Consumer])),
			flags:    (*uint32)(unsafe.Pointer(&mem[ro.Flags])),
			size:     size,
		}, unsafe.Pointer(&mem[ro.Desc]), nil
	}
	var m ringMaps
	var fillD, compD, rxD, txD unsafe.Pointer
	var err error
	if m.fill, fillD, err = mapRing("fill", off.Fr, o.FillSize, 8, unix.XDP_UMEM_PGOFF_FILL_RING); err != nil {
		return m, err
	}
	if m.comp, compD, err = mapRing("completion", off.Cr, o.CompletionSize, 8, unix.XDP_UMEM_PGOFF_COMPLETION_RING); err != nil {
		return m, err
	}
	if m.rx, rxD, err = mapRing("rx", off.Rx, o.RxSize, unsafe.Sizeof(Desc{}), unix.XDP_PGOFF_RX_RING); err != nil {
		return m, err
	}
	if m.tx, txD, err = mapRing("tx", off.Tx, o.TxSize, unsafe.Sizeof(Desc{}), unix.XDP_PGOFF_TX_RING); err != nil {
		return m, err
	}
	m.fillAddrs = unsafe.Slice((*uint64)(fillD), o.FillSize)
	m.compAddrs = unsafe.Slice((*uint64)(compD), o.CompletionSize)
	m.rxDescs = unsafe.Slice((*Desc)(rxD), o.RxSize)
	m.txDescs = unsafe.Slice((*Desc)(txD), o.TxSize)
	return m, nil
}

// setBusyPoll sets the busy-poll options after bind (the kernel takes the
// socket's NAPI id from its queue at bind). A refused option is no error:
// the options set so far are undone, the socket stays a need_wakeup
// socket and busyStat.Err says which option and why.
func (s *Socket) setBusyPoll(o Opts) {
	st := BusyPollStatus{Requested: true, Usecs: o.BusyPollUsecs, Budget: o.BusyPollBudget}
	for _, opt := range []struct {
		name string
		opt  int
		v    int
	}{
		{"SO_PREFER_BUSY_POLL", unix.SO_PREFER_BUSY_POLL, 1},
		{"SO_BUSY_POLL", unix.SO_BUSY_POLL, o.BusyPollUsecs},
		{"SO_BUSY_POLL_BUDGET", unix.SO_BUSY_POLL_BUDGET, o.BusyPollBudget},
	} {
		if err := unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, opt.opt, opt.v); err != nil {
			hint := ""
			switch err {
			case unix.EPERM:
				hint = " (needs CAP_NET_ADMIN)"
			case unix.ENOPROTOOPT, unix.EINVAL:
				hint = " (kernel without CONFIG_NET_RX_BUSY_POLL, or before Linux 5.11)"
			}
			st.Err = fmt.Errorf("rings: %s %d: %w%s", opt.name, opt.v, err, hint)
			// SO_BUSY_POLL 0 alone turns busy polling off again.
			_ = unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_BUSY_POLL, 0)
			_ = unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_PREFER_BUSY_POLL, 0)
			s.busyStat = st
			return
		}
	}
	// The kernel busy polls the NAPI whose id the socket took from its
	// queue at bind (net/xdp/xsk.c, xsk_bind: the driver's rx queue →
	// NAPI link, netif_queue_set_napi). Without one every busy poll
	// returns at once: fall back rather than pretend.
	id, err := s.NAPIID()
	st.NAPIID = id
	if err != nil || id == 0 {
		if err == nil {
			err = ErrNoNAPI
		}
		st.Err = fmt.Errorf("rings: queue %d: socket has NAPI id 0: %w", s.queue, err)
		_ = unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_BUSY_POLL, 0)
		_ = unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_PREFER_BUSY_POLL, 0)
		s.busyStat = st
		return
	}
	st.Enabled = true
	if !s.zeroCopy {
		// One sendto per batch: let it transmit the whole batch in copy
		// mode (the kernel takes 32 to the tx ring's size; older kernels
		// have no such option and send 32 per call).
		b := max(o.BusyPollBudget, 32)
		b = min(b, int(o.TxSize))
		if err := unix.SetsockoptInt(s.fd, unix.SOL_XDP, unix.XDP_MAX_TX_SKB_BUDGET, b); err != nil {
			st.TxBudgetErr = fmt.Errorf("rings: XDP_MAX_TX_SKB_BUDGET %d: %w (Linux ≥ 6.17; copy mode sends 32 frames per sendto)", b, err)
		} else {
			st.TxBudget = b
		}
	}
	s.busy = true
	s.busyStat = st
}

// NAPIID is the NAPI instance the kernel busy polls for this socket
// (SO_INCOMING_NAPI_ID; an AF_XDP socket gets it when it is bound, from
// the NAPI the driver linked to its queue). 0: none, so busy polling
// cannot run anything for it.
func (s *Socket) NAPIID() (uint32, error) {
	v, err := unix.GetsockoptInt(s.fd, unix.SOL_SOCKET, unix.SO_INCOMING_NAPI_ID)
	if err != nil {
		return 0, fmt.Errorf("rings: SO_INCOMING_NAPI_ID fd %d: %w", s.fd, err)
	}
	return uint32(v), nil
}

func setsockopt(fd, opt int, p unsafe.Pointer, n uintptr) error {
	_, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(opt), uintptr(p), n, 0)
	if e != 0 {
		return e
	}
	return nil
}

func getsockopt(fd, opt int, p unsafe.Pointer, n uintptr) error {
	l := uint32(n)
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(opt), uintptr(p), uintptr(unsafe.Pointer(&l)), 0)
	if e != 0 {
		return e
	}
	return nil
}

// transient wakeup results: the kernel is busy or will finish the batch on
// the next kick; nothing is lost.
func transient(e unix.Errno) bool {
	return e == 0 || e == unix.EAGAIN || e == unix.EBUSY || e == unix.ENOBUFS || e == unix.EINTR
}

func (s *Socket) kickTx() {
	_, _, e := unix.Syscall6(unix.SYS_SENDTO, uintptr(s.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	s.txKicks.Add(1)
	if !transient(e) {
		s.kickErrors.Add(1)
	}
}

// busyPoll runs the queue's NAPI once in this thread: recvfrom on a
// busy-polling XSK busy polls (and, copy mode, does nothing else).
func (s *Socket) busyPoll() {
	_, _, e := unix.Syscall6(unix.SYS_RECVFROM, uintptr(s.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	s.busyPolls.Add(1)
	if !transient(e) {
		s.kickErrors.Add(1)
	}
}

func (s *Socket) kickFill() {
	_, _, e := unix.Syscall6(unix.SYS_RECVFROM, uintptr(s.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	s.fillKicks.Add(1)
	if !transient(e) {
		s.kickErrors.Add(1)
	}
}

// Wait parks until the rx ring has descriptors (POLLIN), the timeout
// passes (timeout < 0: no timeout) or a signal interrupts; only a failed
// poll(2) is an error.
func (s *Socket) Wait(timeout time.Duration) error {
	ms := -1
	if timeout >= 0 {
		ms = int((timeout + time.Millisecond - 1) / time.Millisecond)
	}
	s.sys.pollFd[0].Revents = 0
	s.waits.Add(1)
	_, err := unix.Poll(s.sys.pollFd[:], ms)
	if err != nil && err != unix.EINTR {
		return fmt.Errorf("rings: poll fd %d: %w", s.fd, err)
	}
	return nil
}

// Stats reads the kernel's XDP_STATISTICS and the socket's own counters.
func (s *Socket) Stats() (Stats, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return Stats{}, ErrClosed
	}
	var k unix.XDPStatistics
	if err := getsockopt(s.fd, unix.XDP_STATISTICS, unsafe.Pointer(&k), unsafe.Sizeof(k)); err != nil {
		return Stats{}, fmt.Errorf("rings: XDP_STATISTICS fd %d: %w", s.fd, err)
	}
	st := Stats{
		RxDropped:            k.Rx_dropped,
		RxInvalidDescs:       k.Rx_invalid_descs,
		TxInvalidDescs:       k.Tx_invalid_descs,
		RxRingFull:           k.Rx_ring_full,
		RxFillRingEmptyDescs: k.Rx_fill_ring_empty_descs,
		TxRingEmptyDescs:     k.Tx_ring_empty_descs,
	}
	s.counters(&st)
	return st, nil
}

// Close unbinds the socket and unmaps its rings and UMEM. Frames handed
// out by Frame must not be used afterwards. Calling Close twice returns
// ErrClosed.
func (s *Socket) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.closed = true
	return s.release()
}

func (s *Socket) release() error {
	var errs []error
	if s.fd >= 0 {
		if err := unix.Close(s.fd); err != nil {
			errs = append(errs, fmt.Errorf("rings: close fd %d: %w", s.fd, err))
		}
		s.fd = -1
	}
	for _, m := range s.sys.maps {
		if err := unix.Munmap(m); err != nil {
			errs = append(errs, fmt.Errorf("rings: munmap ring: %w", err))
		}
	}
	s.sys.maps = nil
	if s.umem != nil {
		if err := unix.Munmap(s.umem); err != nil {
			errs = append(errs, fmt.Errorf("rings: munmap UMEM: %w", err))
		}
		s.umem = nil
	}
	if s.sys.umemFd > 0 {
		if err := unix.Close(s.sys.umemFd); err != nil {
			errs = append(errs, fmt.Errorf("rings: close UMEM memfd: %w", err))
		}
	}
	s.sys.umemFd = -1
	return errors.Join(errs...)
}
