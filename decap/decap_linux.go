package decap

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Program is the loaded decap program and its maps, attached to at most
// one interface.
type Program struct {
	mu      sync.Mutex
	objs    decapObjects
	link    link.Link          // ModeTCX
	filter  *netlink.BpfFilter // ModeTC
	mode    Mode
	closed  bool
	pinned  bool
	ifindex int
}

// Load loads the program and its maps into the kernel (needs CAP_BPF and
// CAP_NET_ADMIN, or root). Nothing is decapsulated until SetAddrs names
// the addresses and Attach hooks it to an interface.
func Load() (*Program, error) {
	p := &Program{}
	if err := loadDecapObjects(&p.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("decap: load program: %+v", ve)
		}
		return nil, fmt.Errorf("decap: load program: %w (needs root or CAP_BPF+CAP_NET_ADMIN)", err)
	}
	return p, nil
}

// SetAddrs replaces the set of outer destinations the program
// decapsulates for (the backend's own addresses, either family; an
// IPv4-mapped IPv6 address is the IPv4 one).
func (p *Program) SetAddrs(addrs []netip.Addr) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	want := map[decapAddr]bool{}
	for i, a := range addrs {
		if !a.IsValid() {
			return fmt.Errorf("decap: SetAddrs: addrs[%d]: no address", i)
		}
		if a.Zone() != "" {
			return fmt.Errorf("decap: SetAddrs: addrs[%d]: %v has a zone; give the address without it", i, a)
		}
		want[decapAddr{A: a.Unmap().As16()}] = true
	}
	if max := p.objs.Addrs.MaxEntries(); uint32(len(want)) > max {
		return fmt.Errorf("decap: SetAddrs: %d addresses, the map holds %d", len(want), max)
	}
	one := uint8(1)
	for k := range want {
		if err := p.objs.Addrs.Put(k, one); err != nil {
			return fmt.Errorf("decap: update addrs map: %w", err)
		}
	}
	var (
		k     decapAddr
		v     uint8
		stale []decapAddr
	)
	for it := p.objs.Addrs.Iterate(); it.Next(&k, &v); {
		if !want[k] {
			stale = append(stale, k)
		}
	}
	for _, k := range stale {
		if err := p.objs.Addrs.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("decap: delete from addrs map: %w", err)
		}
	}
	return nil
}

// Attach hooks the program to the ingress of ifindex and returns the mode
// obtained (ModeAuto: tcx, else tc).
func (p *Program) Attach(ifindex int, mode Mode) (Mode, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, ErrClosed
	}
	if p.link != nil || p.filter != nil {
		return 0, errors.New("decap: Attach: already attached (one Program per interface)")
	}
	switch mode {
	case ModeTCX:
		return ModeTCX, p.attachTCX(ifindex)
	case ModeTC:
		return ModeTC, p.attachTC(ifindex)
	case ModeAuto:
		xerr := p.attachTCX(ifindex)
		if xerr == nil {
			return ModeTCX, nil
		}
		if err := p.attachTC(ifindex); err != nil {
			return 0, errors.Join(xerr, err)
		}
		return ModeTC, nil
	}
	return 0, fmt.Errorf("decap: Attach: unknown mode %d", int(mode))
}

func (p *Program) attachTCX(ifindex int) error {
	l, err := link.AttachTCX(link.TCXOptions{Interface: ifindex, Program: p.objs.Decap, Attach: ebpf.AttachTCXIngress})
	if err != nil {
		return fmt.Errorf("decap: attach tcx ingress to ifindex %d: %w (tcx needs Linux 6.6)", ifindex, err)
	}
	p.link, p.mode, p.ifindex = l, ModeTCX, ifindex
	return nil
}

// tcPriority and tcHandle identify Rail's filter among others on the same
// ingress hook.
const (
	tcPriority = 1
	tcHandle   = 0x1a11
)

func (p *Program) attachTC(ifindex int) error {
	qd := &netlink.GenericQdisc{
		QdiscAttrs: netlink.QdiscAttrs{LinkIndex: ifindex, Handle: netlink.MakeHandle(0xffff, 0), Parent: netlink.HANDLE_CLSACT},
		QdiscType:  "clsact",
	}
	if err := netlink.QdiscAdd(qd); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("decap: add clsact qdisc to ifindex %d: %w", ifindex, err)
	}
	f := &netlink.BpfFilter{
		FilterAttrs: netlink.FilterAttrs{
			LinkIndex: ifindex, Parent: netlink.HANDLE_MIN_INGRESS,
			Handle: tcHandle, Priority: tcPriority, Protocol: unix.ETH_P_ALL,
		},
		Fd: p.objs.Decap.FD(), Name: FilterName, DirectAction: true,
	}
	if err := netlink.FilterAdd(f); err != nil {
		return fmt.Errorf("decap: add tc ingress filter %s (prio %d handle %#x) to ifindex %d: %w", FilterName, tcPriority, tcHandle, ifindex, err)
	}
	p.filter, p.mode, p.ifindex = f, ModeTC, ifindex
	return nil
}

// Pin keeps the attachment after this process exits: a tcx link is pinned
// at path (on a bpffs, e.g. /sys/fs/bpf/rail-decap-eth0) and Close leaves
// it attached; Unpin(path) detaches it later. A tc filter stays anyway
// until deleted; Pin just makes Close leave it.
func (p *Program) Pin(path string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	switch {
	case p.link != nil:
		if err := p.link.Pin(path); err != nil {
			return fmt.Errorf("decap: pin tcx link at %s: %w (is a bpffs mounted there?)", path, err)
		}
	case p.filter != nil:
	default:
		return errors.New("decap: Pin: not attached")
	}
	p.pinned = true
	return nil
}

// Unpin detaches a program left attached by Pin: the tcx link pinned at
// path. For ModeTC, DetachTC removes the filter.
func Unpin(path string) error {
	l, err := link.LoadPinnedLink(path, nil)
	if err != nil {
		return fmt.Errorf("decap: open pinned link %s: %w", path, err)
	}
	defer l.Close()
	if err := l.Unpin(); err != nil {
		return fmt.Errorf("decap: unpin %s: %w", path, err)
	}
	// The link goes away with its last reference, the one closed above.
	return nil
}

// DetachTC deletes Rail's tc filter (FilterName, as ModeTC adds it) from
// the ingress of ifindex.
func DetachTC(ifindex int) error {
	f := &netlink.BpfFilter{FilterAttrs: netlink.FilterAttrs{
		LinkIndex: ifindex, Parent: netlink.HANDLE_MIN_INGRESS,
		Handle: tcHandle, Priority: tcPriority, Protocol: unix.ETH_P_ALL,
	}}
	if err := netlink.FilterDel(f); err != nil {
		return fmt.Errorf("decap: delete tc filter %s from ifindex %d: %w", FilterName, ifindex, err)
	}
	return nil
}

// Run feeds one Ethernet frame through the program (BPF_PROG_TEST_RUN)
// and returns the tc verdict and the frame as the program left it.
func (p *Program) Run(frame []byte) (verdict uint32, out []byte, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, nil, ErrClosed
	}
	buf := make([]byte, len(frame)+256)
	opts := &ebpf.RunOptions{Data: frame, DataOut: buf}
	ret, err := p.objs.Decap.Run(opts)
	if err != nil {
		return 0, nil, fmt.Errorf("decap: test run of a %d-byte frame: %w", len(frame), err)
	}
	return ret, opts.DataOut, nil
}

// Counts sums the program's per-CPU counters.
func (p *Program) Counts() (Counts, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return Counts{}, ErrClosed
	}
	var c [numCounts]uint64
	var perCPU []uint64
	for i := range c {
		if err := p.objs.Counts.Lookup(uint32(i), &perCPU); err != nil {
			return Counts{}, fmt.Errorf("decap: read counters: %w", err)
		}
		for _, n := range perCPU {
			c[i] += n
		}
	}
	return Counts{Decapsulated: c[countDecap], Passed: c[countPass], Errors: c[countError], Unsupported: c[countUnsupported]}, nil
}

// Close detaches the program (unless Pin kept it) and frees it and its
// maps.
func (p *Program) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	p.closed = true
	var errs []error
	if p.link != nil {
		if err := p.link.Close(); err != nil { // a pinned link stays attached
			errs = append(errs, fmt.Errorf("decap: close tcx link: %w", err))
		}
	}
	if p.filter != nil && !p.pinned {
		if err := netlink.FilterDel(p.filter); err != nil {
			errs = append(errs, fmt.Errorf("decap: delete tc filter: %w", err))
		}
	}
	if err := p.objs.Close(); err != nil {
		errs = append(errs, fmt.Errorf("decap: free program: %w", err))
	}
	return errors.Join(errs...)
}
