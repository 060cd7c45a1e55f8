package rings

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"sync"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
)

// Steer is the loaded XDP steering program (steer.c) and its maps.
type Steer struct {
	mu     sync.Mutex
	objs   steerObjects
	link   link.Link
	closed bool
}

// XDP return codes from <linux/bpf.h>.
const (
	xdpPass     = 2
	xdpTx       = 3
	xdpRedirect = 4
)

// LoadSteer loads the steering program and its maps into the kernel
// (needs CAP_BPF + CAP_NET_ADMIN, or root). The maps start empty: nothing
// is ours until SetLocals/SetServices, and nothing is redirected until a
// socket is Registered for the receiving queue.
func LoadSteer() (*Steer, error) {
	p := &Steer{}
	if err := loadSteerObjects(&p.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("rings: load steer program: %+v", ve)
		}
		return nil, fmt.Errorf("rings: load steer program: %w (needs root or CAP_BPF+CAP_NET_ADMIN)", err)
	}
	return p, nil
}

// addrKey is an address as the program's maps hold it: 16 bytes in wire
// order, an IPv4 address (or an IPv4-mapped IPv6 one, which is IPv4)
// IPv4-mapped.
func addrKey(a netip.Addr) ([16]byte, error) {
	if !a.IsValid() {
		return [16]byte{}, errors.New("no address (the zero netip.Addr)")
	}
	if a.Zone() != "" {
		return [16]byte{}, fmt.Errorf("%v has a zone; give the address without %%%s", a, a.Zone())
	}
	return a.Unmap().As16(), nil
}

func portKey(port uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], port)
	return binary.NativeEndian.Uint16(b[:]) // wire order in memory
}

// SetLocals replaces the set of local addresses, IPv4 and IPv6
// (destinations of GRE from the router: local_address, local_address6).
// An IPv4-mapped IPv6 address is the IPv4 address. New entries are added before stale ones are removed,
// so an address present in both sets is never missing.
func (p *Steer) SetLocals(addrs []netip.Addr) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	want := make(map[[16]byte]bool, len(addrs))
	for i, a := range addrs {
		k, err := addrKey(a)
		if err != nil {
			return fmt.Errorf("rings: SetLocals: addrs[%d]: %w", i, err)
		}
		want[k] = true
	}
	if max := p.objs.Locals.MaxEntries(); uint32(len(want)) > max {
		return fmt.Errorf("rings: SetLocals: %d addresses, the locals map holds %d", len(want), max)
	}
	return replace(p.objs.Locals, "locals", want)
}

// SetServices replaces the service set and the VIP set derived from it.
// VIPs may be of either family; an IPv4-mapped IPv6 VIP is the IPv4 one.
// Order: new VIPs, new services, stale services, stale VIPs — during the
// swap a frame sees a superset of the old and new sets (a frame to a VIP
// whose service is not there yet is left to the kernel as no_service).
func (p *Steer) SetServices(keys []ServiceKey) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	wantSvc := make(map[steerServiceKey]bool, len(keys))
	wantVIP := make(map[[16]byte]bool)
	for i, k := range keys {
		v, err := addrKey(k.VIP)
		if err != nil {
			return fmt.Errorf("rings: SetServices: keys[%d].VIP: %w", i, err)
		}
		wantSvc[steerServiceKey{Vip: v, Port: portKey(k.Port), Proto: k.Proto}] = true
		wantVIP[v] = true
	}
	if max := p.objs.Services.MaxEntries(); uint32(len(wantSvc)) > max {
		return fmt.Errorf("rings: SetServices: %d services, the services map holds %d", len(wantSvc), max)
	}
	if max := p.objs.Vips.MaxEntries(); uint32(len(wantVIP)) > max {
		return fmt.Errorf("rings: SetServices: %d VIPs, the vips map holds %d", len(wantVIP), max)
	}
	if err := add(p.objs.Vips, "vips", wantVIP); err != nil {
		return err
	}
	if err := replace(p.objs.Services, "services", wantSvc); err != nil {
		return err
	}
	return prune(p.objs.Vips, "vips", wantVIP)
}

func add[K comparable](m *ebpf.Map, name string, want map[K]bool) error {
	one := uint8(1)
	for k := range want {
		if err := m.Put(k, one); err != nil {
			return fmt.Errorf("rings: update %s map: %w", name, err)
		}
	}
	return nil
}

func prune[K comparable](m *ebpf.Map, name string, want map[K]bool) error {
	var (
		k     K
		v     uint8
		stale []K
	)
	it := m.Iterate()
	for it.Next(&k, &v) {
		if !want[k] {
			stale = append(stale, k)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("rings: iterate %s map: %w", name, err)
	}
	for _, k := range stale {
		if err := m.Delete(k); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
			return fmt.Errorf("rings: delete from %s map: %w", name, err)
		}
	}
	return nil
}

func replace[K comparable](m *ebpf.Map, name string, want map[K]bool) error {
	if err := add(m, name, want); err != nil {
		return err
	}
	return prune(m, name, want)
}

// Register makes s the target for frames steered on queue: xsks[queue] = s.FD().
func (p *Steer) Register(queue int, s *Socket) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if max := p.objs.Xsks.MaxEntries(); queue < 0 || uint32(queue) >= max {
		return fmt.Errorf("rings: Register: queue %d out of range 0..%d", queue, max-1)
	}
	if err := p.objs.Xsks.Put(uint32(queue), uint32(s.FD())); err != nil {
		return fmt.Errorf("rings: Register queue %d fd %d: %w", queue, s.FD(), err)
	}
	return nil
}

// Unregister empties xsks[queue]: frames for that queue go to the kernel.
func (p *Steer) Unregister(queue int) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	if err := p.objs.Xsks.Delete(uint32(queue)); err != nil && !errors.Is(err, ebpf.ErrKeyNotExist) {
		return fmt.Errorf("rings: Unregister queue %d: %w", queue, err)
	}
	return nil
}

// Attach hooks the program to ifindex through a bpf_link, which the
// kernel removes when the last reference goes away: if the process dies
// the NIC is the kernel's again. XDPAuto tries native, then generic. It
// returns the mode obtained.
func (p *Steer) Attach(ifindex int, mode XDPMode) (XDPMode, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return 0, ErrClosed
	}
	if p.link != nil {
		return 0, errors.New("rings: Attach: already attached (one Steer per interface)")
	}
	try := func(m XDPMode) error {
		flags := link.XDPDriverMode
		if m == XDPGeneric {
			flags = link.XDPGenericMode
		}
		l, err := link.AttachXDP(link.XDPOptions{Program: p.objs.Steer, Interface: ifindex, Flags: flags})
		if err != nil {
			return fmt.Errorf("rings: attach XDP (%s) to ifindex %d: %w", m, ifindex, err)
		}
		p.link = l
		return nil
	}
	switch mode {
	case XDPNative, XDPGeneric:
		return mode, try(mode)
	case XDPAuto:
		nerr := try(XDPNative)
		if nerr == nil {
			return XDPNative, nil
		}
		if gerr := try(XDPGeneric); gerr != nil {
			return 0, errors.Join(nerr, gerr)
		}
		return XDPGeneric, nil
	}
	return 0, fmt.Errorf("rings: Attach: unknown XDP mode %d", int(mode))
}

// Run feeds one frame to the decision (BPF_PROG_TEST_RUN of steer_probe,
// which shares steer's decide() and needs no socket) and reports whether
// the steering program would redirect it.
func (p *Steer) Run(frame []byte) (redirect bool, err error) {
	r, err := p.Classify(frame)
	return r == Ours, err
}

// Classify feeds one frame to the decision and returns Ours or the reason
// the frame is left to the kernel. Frames shorter than an Ethernet header
// never reach XDP and the kernel's test run refuses them; Classify answers
// PassNotIP for them (verdicts.md row 1) without running the program.
func (p *Steer) Classify(frame []byte) (PassReason, error) {
	if len(frame) < 14 {
		return PassNotIP, nil
	}
	ret, err := p.objs.SteerProbe.Run(&ebpf.RunOptions{Data: frame})
	if err != nil {
		return 0, fmt.Errorf("rings: test run of a %d-byte frame: %w", len(frame), err)
	}
	if ret >= uint32(numPassReasons) {
		return 0, fmt.Errorf("rings: steer_probe returned unexpected code %d", ret)
	}
	return PassReason(ret), nil
}

// PassCounts reads the program's per-CPU pass counters for queues (the
// counters are kept per receive queue; queues ≥ 1024 share slots modulo
// 1024). Zero counts are left out.
func (p *Steer) PassCounts(queues []int) ([]PassCount, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	var out []PassCount
	var perCPU []uint64
	for _, q := range queues {
		for r := PassNotIP; r < numPassReasons; r++ {
			k := uint32(q%maxQueues)*uint32(numPassReasons) + uint32(r)
			if err := p.objs.Passes.Lookup(k, &perCPU); err != nil {
				return nil, fmt.Errorf("rings: read pass counters: %w", err)
			}
			for cpu, n := range perCPU {
				if n != 0 {
					out = append(out, PassCount{Queue: q, CPU: cpu, Reason: r, Packets: n})
				}
			}
		}
	}
	return out, nil
}

// Close detaches the program (if attached) and frees it and its maps.
func (p *Steer) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return ErrClosed
	}
	p.closed = true
	var errs []error
	if p.link != nil {
		if err := p.link.Close(); err != nil {
			errs = append(errs, fmt.Errorf("rings: detach XDP: %w", err))
		}
		p.link = nil
	}
	if err := p.objs.Close(); err != nil {
		errs = append(errs, fmt.Errorf("rings: free steer program: %w", err))
	}
	return errors.Join(errs...)
}
