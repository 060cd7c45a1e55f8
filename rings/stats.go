package rings

import "errors"

// Stats are the kernel's XDP_STATISTICS for the socket plus the
// socket's own counters of kicks and refused calls.
type Stats struct {
	// From getsockopt(XDP_STATISTICS).
	RxDropped            uint64 // frames dropped on rx (e.g. no room in the frame)
	RxInvalidDescs       uint64 // invalid descriptors on the fill ring
	TxInvalidDescs       uint64 // invalid descriptors on the tx ring
	RxRingFull           uint64 // frames dropped because the rx ring was full
	RxFillRingEmptyDescs uint64 // times the kernel found the fill ring empty
	TxRingEmptyDescs     uint64 // times the kernel found the tx ring empty

	// Counted by the socket. TxKicks + FillKicks + BusyPolls + Waits is
	// every system call the worker made on the socket.
	TxKicks      uint64 // sendto wakeups issued because the tx ring asked (busy polling: because descriptors waited on it)
	FillKicks    uint64 // recvfrom wakeups issued because the fill ring asked
	BusyPolls    uint64 // recvfrom issued to run the queue's NAPI (busy polling, rx ring empty)
	Waits        uint64 // poll(2) calls of Wait (an idle worker parking)
	KickErrors   uint64 // wakeups that failed with something other than EAGAIN/EBUSY/ENOBUFS
	BadRecycles  uint64 // Recycle calls for frames the caller did not hold (ignored)
	BadTransmits uint64 // descriptors Transmit refused (not held, out of the frame, Options≠0)
	RingErrors   uint64 // rx/completion addresses that were not ours (kernel bug; skipped)
}

// BusyPollStatus says what Open made of Opts.BusyPoll.
type BusyPollStatus struct {
	// Requested is Opts.BusyPoll.
	Requested bool
	// Enabled: SO_PREFER_BUSY_POLL, SO_BUSY_POLL and SO_BUSY_POLL_BUDGET
	// are set, the socket knows the NAPI instance it busy polls (NAPIID),
	// and the worker drives that NAPI with its own system calls (Service).
	Enabled bool
	// NAPIID is the socket's SO_INCOMING_NAPI_ID after bind: the NAPI
	// instance its busy polls run. 0 means the kernel linked no NAPI to
	// the socket's queue (the driver does not call netif_queue_set_napi —
	// veth, Linux 6.18 — or the NAPI did not exist at bind): a busy poll
	// would return at once, so the socket falls back (Err wraps ErrNoNAPI).
	NAPIID uint32
	// Err is why Enabled is false although Requested: the option the
	// kernel refused and its errno (EPERM without CAP_NET_ADMIN, ENOPROTOOPT
	// on a kernel without CONFIG_NET_RX_BUSY_POLL or before 5.11), or
	// ErrNoNAPI. The socket then works as without BusyPoll.
	Err error
	// Usecs and Budget are the SO_BUSY_POLL and SO_BUSY_POLL_BUDGET values set.
	Usecs, Budget int
	// TxBudget is the copy-mode XDP_MAX_TX_SKB_BUDGET set (frames one
	// sendto transmits); 0: the kernel's default (32), because the socket
	// is zero-copy, busy polling is off, or the kernel has no such option
	// (before 6.17: TxBudgetErr).
	TxBudget    int
	TxBudgetErr error
}

// ErrNoNAPI is wrapped by BusyPollStatus.Err when the kernel gave the
// socket no NAPI id to busy poll.
var ErrNoNAPI = errors.New("the kernel links no NAPI instance to this queue (SO_INCOMING_NAPI_ID 0: the driver does not call netif_queue_set_napi, as veth does not, or the NAPI did not exist when the socket was bound); busy polling cannot run it, so the socket uses need_wakeup kicks")
