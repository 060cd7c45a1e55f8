package probe

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Tunnel is the node's side of health checks through the data path: the
// dummy interface, its tc egress program, the policy routing rule that
// sends marked sockets' packets to it, and the probe ids of the backends.
type Tunnel struct {
	mu      sync.Mutex
	objs    probeObjects
	link    link.Link
	dummy   netlink.Link
	rule    *netlink.Rule
	route   *netlink.Route
	local   netip.Addr
	ifindex int
	ids     map[netip.Addr]uint16
	next    uint16
	closed  bool
}

// Open sets the tunnel up for probes that leave through the interface
// ifname, from local (the node's local_address): the link DummyName (one
// end of a veth pair, with ARP off), the
// program on its egress (tcx: Linux ≥ 6.6), a rule "fwmark MarkBase/MarkMask
// lookup Table" and a default route in Table through the dummy with source
// local. A stale dummy from a raild that was killed is replaced.
func Open(ifname string, local netip.Addr) (*Tunnel, error) {
	if !local.Is4() {
		return nil, fmt.Errorf("probe: local address %v is not IPv4 (health checks via gre are IPv4)", local)
	}
	out, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("probe: interface %s does not exist", ifname)
	}
	t := &Tunnel{local: local, ifindex: out.Index, ids: map[netip.Addr]uint16{}}
	ok := false
	defer func() {
		if !ok {
			t.Close()
		}
	}()
	if err := loadProbeObjects(&t.objs, nil); err != nil {
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("probe: load program: %+v", ve)
		}
		return nil, fmt.Errorf("probe: load program: %w (needs CAP_BPF and CAP_NET_ADMIN)", err)
	}
	if old, err := netlink.LinkByName(DummyName); err == nil {
		netlink.LinkDel(old)
	}
	// A veth pair rather than a dummy (many kernels have no dummy module):
	// the probes never reach the peer, the program redirects them first.
	d := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: DummyName}, PeerName: DummyName + "-x"}
	if err := netlink.LinkAdd(d); err != nil {
		return nil, fmt.Errorf("probe: create %s: %w", DummyName, err)
	}
	dl, err := netlink.LinkByName(DummyName)
	if err != nil {
		return nil, fmt.Errorf("probe: %s: %w", DummyName, err)
	}
	t.dummy = dl
	// No ARP: the kernel hands probes to the program without resolving the
	// VIP, which nobody on this link would answer.
	if err := netlink.LinkSetARPOff(dl); err != nil {
		return nil, fmt.Errorf("probe: %s arp off: %w", DummyName, err)
	}
	if peer, err := netlink.LinkByName(DummyName + "-x"); err == nil {
		netlink.LinkSetUp(peer)
	}
	if err := netlink.LinkSetUp(dl); err != nil {
		return nil, fmt.Errorf("probe: %s up: %w", DummyName, err)
	}
	t.link, err = link.AttachTCX(link.TCXOptions{Interface: dl.Attrs().Index, Program: t.objs.ProbeEncap, Attach: ebpf.AttachTCXEgress})
	if err != nil {
		return nil, fmt.Errorf("probe: attach to %s egress (tcx, Linux ≥ 6.6): %w", DummyName, err)
	}
	rule := netlink.NewRule()
	rule.Mark, rule.Mask = MarkBase, ptr(uint32(MarkMask))
	rule.Table, rule.Priority, rule.Family = Table, RulePriority, unix.AF_INET
	netlink.RuleDel(rule) // a stale one
	if err := netlink.RuleAdd(rule); err != nil {
		return nil, fmt.Errorf("probe: ip rule fwmark %#x/%#x table %d: %w", MarkBase, MarkMask, Table, err)
	}
	t.rule = rule
	rt := &netlink.Route{LinkIndex: dl.Attrs().Index, Dst: &net.IPNet{IP: net.IPv4zero, Mask: net.CIDRMask(0, 32)},
		Table: Table, Src: local.AsSlice(), Scope: netlink.SCOPE_LINK}
	if err := netlink.RouteReplace(rt); err != nil {
		return nil, fmt.Errorf("probe: route table %d via %s: %w", Table, DummyName, err)
	}
	t.route = rt
	ok = true
	return t, nil
}

func ptr[T any](v T) *T { return &v }

// Mark returns the socket mark for probes to backend, registering it with
// the program on first use.
func (t *Tunnel) Mark(backend netip.Addr) (uint32, error) {
	if !backend.Is4() {
		return 0, fmt.Errorf("probe: backend %v is IPv6: health checks via gre are IPv4 only", backend)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return 0, errors.New("probe: tunnel closed")
	}
	if id, ok := t.ids[backend]; ok {
		return MarkBase | uint32(id), nil
	}
	if len(t.ids) >= 4096 {
		return 0, errors.New("probe: more than 4096 backends checked via gre")
	}
	id := t.next
	t.next++
	b, l := backend.As4(), t.local.As4()
	v := probeTarget{Backend: be32(b), Local: be32(l), Ifindex: uint32(t.ifindex)}
	if err := t.objs.Targets.Put(uint32(id), &v); err != nil {
		return 0, fmt.Errorf("probe: register %v: %w", backend, err)
	}
	t.ids[backend] = id
	return MarkBase | uint32(id), nil
}

// be32 is a as the uint32 whose in-memory bytes are a (network order).
func be32(a [4]byte) uint32 {
	return uint32(a[0]) | uint32(a[1])<<8 | uint32(a[2])<<16 | uint32(a[3])<<24
}

// Counts returns the program's counters.
func (t *Tunnel) Counts() (Counts, error) {
	var c Counts
	for i, to := range []*uint64{&c.Sent, &c.NoTarget, &c.NotIPv4, &c.Failed} {
		var per []uint64
		if err := t.objs.Counts.Lookup(uint32(i), &per); err != nil {
			return c, err
		}
		for _, n := range per {
			*to += n
		}
	}
	return c, nil
}

// Control is a net.Dialer Control that marks the socket with mark.
func Control(mark uint32) func(network, address string, c syscall.RawConn) error {
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_MARK, int(mark))
		}); err != nil {
			return err
		}
		return serr
	}
}

// RPFilterProblem says why the backends' answers to tunnelled probes (from
// the VIP to local_address) would be dropped on ifname by strict reverse
// path filtering, or "".
func RPFilterProblem(ifname string) string {
	for _, n := range []string{"all", ifname} {
		b, err := os.ReadFile("/proc/sys/net/ipv4/conf/" + n + "/rp_filter")
		if err == nil && strings.TrimSpace(string(b)) == "1" {
			return fmt.Sprintf("net.ipv4.conf.%s.rp_filter is 1 (strict): the answers to health checks via gre come from the VIP and are dropped unless it is routed out of %s; set it to 2 (loose) or 0", n, ifname)
		}
	}
	return ""
}

// Close removes the route, the rule, the program and the dummy.
func (t *Tunnel) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return nil
	}
	t.closed = true
	if t.route != nil {
		netlink.RouteDel(t.route)
	}
	if t.rule != nil {
		netlink.RuleDel(t.rule)
	}
	if t.link != nil {
		t.link.Close()
	}
	if t.dummy != nil {
		netlink.LinkDel(t.dummy)
	}
	return t.objs.Close()
}
