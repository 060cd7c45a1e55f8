package decap

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
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
// CAP_NET_ADMIN, or root) with the default Options. Nothing is
// decapsulated until SetAddrs names the addresses and Attach hooks it to an
// interface.
func Load() (*Program, error) { return LoadWith(Options{}) }

// LoadWith is Load with options.
func LoadWith(o Options) (*Program, error) {
	p := &Program{}
	spec, err := loadDecap()
	if err != nil {
		return nil, fmt.Errorf("decap: %w", err)
	}
	if o.LookupUnkeyed {
		if err := spec.Variables[decapVarLookupUnkeyed].Set(uint32(1)); err != nil {
			return nil, fmt.Errorf("decap: set lookup_unkeyed: %w", err)
		}
	}
	if err := spec.LoadAndAssign(&p.objs, nil); err != nil {
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
// it attached; for ModeTC the program is pinned at path and Close leaves
// the filter. Either way the counters map is pinned at path + CountsPin,
// for ReadPinnedCounts. Unpin(path) undoes it (and for ModeTC, DetachTC
// removes the filter).
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
		if err := p.objs.Decap.Pin(path); err != nil {
			return fmt.Errorf("decap: pin program at %s: %w (is a bpffs mounted there?)", path, err)
		}
	default:
		return errors.New("decap: Pin: not attached")
	}
	if err := p.objs.Counts.Pin(path + CountsPin); err != nil {
		err = fmt.Errorf("decap: pin counters at %s: %w", path+CountsPin, err)
		if p.link != nil {
			p.link.Unpin()
		} else {
			p.objs.Decap.Unpin()
		}
		return err
	}
	p.pinned = true
	return nil
}

// Unpin undoes Pin(path): it detaches the tcx link pinned at path, or
// removes the pinned program of a ModeTC attachment (whose filter
// DetachTC deletes: the mode returned says which it was), and removes the
// counters' pin.
func Unpin(path string) (Mode, error) {
	var mode Mode
	if l, err := link.LoadPinnedLink(path, nil); err == nil {
		defer l.Close()
		if err := l.Unpin(); err != nil {
			return 0, fmt.Errorf("decap: unpin %s: %w", path, err)
		}
		// The link goes away with its last reference, the one closed above.
		mode = ModeTCX
	} else if prog, perr := ebpf.LoadPinnedProgram(path, nil); perr == nil {
		defer prog.Close()
		if err := prog.Unpin(); err != nil {
			return 0, fmt.Errorf("decap: unpin %s: %w", path, err)
		}
		mode = ModeTC
	} else {
		return 0, fmt.Errorf("decap: open pinned link %s: %w", path, err)
	}
	if err := os.Remove(path + CountsPin); err != nil && !errors.Is(err, os.ErrNotExist) {
		return mode, fmt.Errorf("decap: remove %s: %w", path+CountsPin, err)
	}
	return mode, nil
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
	return readCounts(p.objs.Counts)
}

func readCounts(m *ebpf.Map) (Counts, error) {
	var c [numCounts]uint64
	var perCPU []uint64
	for i := range c {
		if err := m.Lookup(uint32(i), &perCPU); err != nil {
			return Counts{}, fmt.Errorf("decap: read counters: %w", err)
		}
		for _, n := range perCPU {
			c[i] += n
		}
	}
	return countsOf(c), nil
}

// isCounts tells the counters map of this program from any other map.
func isCounts(info *ebpf.MapInfo) bool {
	return info.Name == decapMapCounts && info.Type == ebpf.PerCPUArray &&
		info.KeySize == 4 && info.ValueSize == 8 && info.MaxEntries == numCounts
}

// ReadPinnedCounts reads the counters of a program Pin(path) left behind.
func ReadPinnedCounts(path string) (Counts, error) {
	m, err := ebpf.LoadPinnedMap(path+CountsPin, &ebpf.LoadPinOptions{ReadOnly: true})
	if err != nil {
		return Counts{}, fmt.Errorf("decap: open pinned counters %s: %w (pinned by a raild without them?)", path+CountsPin, err)
	}
	defer m.Close()
	if info, err := m.Info(); err != nil || !isCounts(info) {
		return Counts{}, fmt.Errorf("decap: %s is not the decap program's counters map", path+CountsPin)
	}
	return readCounts(m)
}

// ReadAttachedCounts reads the counters of the decap program attached to
// the ingress of ifindex, through tcx or as Rail's tc filter, whoever
// attached it (a running `raild decap`, or a pinned one). Opening a
// program by its id takes CAP_SYS_ADMIN (root).
func ReadAttachedCounts(ifindex int) (Counts, error) {
	var ids []ebpf.ProgramID
	if res, err := link.QueryPrograms(link.QueryOptions{Target: ifindex, Attach: ebpf.AttachTCXIngress}); err == nil {
		for _, p := range res.Programs {
			ids = append(ids, p.ID)
		}
	}
	if l, err := netlink.LinkByIndex(ifindex); err == nil {
		if fs, err := netlink.FilterList(l, netlink.HANDLE_MIN_INGRESS); err == nil {
			for _, f := range fs {
				if bf, ok := f.(*netlink.BpfFilter); ok && bf.Name == FilterName {
					ids = append(ids, ebpf.ProgramID(bf.Id))
				}
			}
		}
	}
	var errs []error
	for _, id := range ids {
		c, err := attachedCounts(id)
		if err == nil {
			return c, nil
		}
		if err != errNotDecap {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return Counts{}, errors.Join(errs...)
	}
	return Counts{}, fmt.Errorf("decap: no decap program on the ingress of ifindex %d", ifindex)
}

var errNotDecap = errors.New("not the decap program")

func attachedCounts(id ebpf.ProgramID) (Counts, error) {
	prog, err := ebpf.NewProgramFromID(id)
	if err != nil {
		return Counts{}, fmt.Errorf("decap: open program %d: %w (needs CAP_SYS_ADMIN: run as root)", id, err)
	}
	defer prog.Close()
	info, err := prog.Info()
	if err != nil {
		return Counts{}, fmt.Errorf("decap: program %d: %w", id, err)
	}
	if info.Name != decapProgDecap {
		return Counts{}, errNotDecap
	}
	mapIDs, _ := info.MapIDs()
	for _, mid := range mapIDs {
		m, err := ebpf.NewMapFromID(mid)
		if err != nil {
			return Counts{}, fmt.Errorf("decap: open map %d of program %d: %w", mid, id, err)
		}
		mi, err := m.Info()
		if err == nil && isCounts(mi) {
			c, err := readCounts(m)
			m.Close()
			return c, err
		}
		m.Close()
	}
	return Counts{}, errNotDecap
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
