package rings

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/cilium/ebpf"

	"github.com/rail-lb/rail/internal/privtest"
)

func loadTestSteer(t *testing.T) *Steer {
	t.Helper()
	privtest.Require(t)
	p, err := LoadSteer()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if err := p.SetLocals(testLocals()); err != nil {
		t.Fatal(err)
	}
	if err := p.SetServices(testServices()); err != nil {
		t.Fatal(err)
	}
	return p
}

// wantReason is what the program must answer for a row: its pass reason
// (the row's name starts with "pass/<reason>:") or Ours.
func wantReason(t *testing.T, c verdictCase) PassReason {
	t.Helper()
	want := Ours
	for r := PassNotIP; r < numPassReasons; r++ {
		if strings.HasPrefix(c.name, "pass/"+r.String()+":") {
			want = r
		}
	}
	if (want == Ours) != c.redirect || (want == Ours && strings.HasPrefix(c.name, "pass/")) {
		t.Fatalf("row %q: name and redirect=%v disagree", c.name, c.redirect)
	}
	return want
}

// TestSteerVerdicts runs every row of docs/verdicts.md through the
// program with BPF_PROG_TEST_RUN: ours, or the pass reason.
func TestSteerVerdicts(t *testing.T) {
	p := loadTestSteer(t)
	seen := map[string]bool{}
	for _, c := range verdictCases() {
		if seen[c.name] {
			t.Errorf("two rows named %q", c.name)
		}
		seen[c.name] = true
		t.Run(c.name, func(t *testing.T) {
			want := wantReason(t, c)
			got, err := p.Classify(c.frame)
			if err != nil {
				t.Fatal(err)
			}
			if got != want {
				t.Errorf("Classify = %v, want %v (frame % x)", got, want, c.frame)
			}
			redirect, err := p.Run(c.frame)
			if err != nil || redirect != c.redirect {
				t.Errorf("Run = %v, %v; want %v", redirect, err, c.redirect)
			}
		})
	}
}

// TestSteerPassCounts runs the attachable program (steer, not steer_probe)
// over the table: every pass row is counted under its reason on queue 0
// (the test run's receive queue), IPv6 included, and nothing else is.
func TestSteerPassCounts(t *testing.T) {
	p := loadTestSteer(t)
	want := map[PassReason]uint64{}
	for _, c := range verdictCases() {
		if len(c.frame) < 14 {
			continue
		}
		ret, err := p.objs.Steer.Run(&ebpf.RunOptions{Data: c.frame})
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if ret != xdpPass {
			t.Fatalf("%s: steer returned %d without a socket, want XDP_PASS", c.name, ret)
		}
		if r := wantReason(t, c); r != Ours {
			want[r]++
		}
	}
	if want[PassNotIP] == 0 || want[PassNotOurs] == 0 || want[PassNoService] == 0 {
		t.Fatalf("the table has no row for some reason: %v", want)
	}
	pcs, err := p.PassCounts([]int{0, 1})
	if err != nil {
		t.Fatal(err)
	}
	got := map[PassReason]uint64{}
	for _, pc := range pcs {
		if pc.Queue != 0 {
			t.Errorf("counted on queue %d: %+v", pc.Queue, pc)
		}
		got[pc.Reason] += pc.Packets
	}
	for r := PassNotIP; r < numPassReasons; r++ {
		if got[r] != want[r] {
			t.Errorf("%v: counted %d, want %d", r, got[r], want[r])
		}
	}
}

func TestSteerSetReplaces(t *testing.T) {
	p := loadTestSteer(t)
	web := greIn(tcp(vipWeb, 80))
	all := greIn(tcp(vipAll, 1))
	check := func(f []byte, want bool) {
		t.Helper()
		got, err := p.Run(f)
		if err != nil || got != want {
			t.Fatalf("Run = %v, %v; want %v", got, err, want)
		}
	}
	check(web, true)
	check(all, true)
	// Only vipAll remains: the vipWeb service and its VIP must be gone.
	if err := p.SetServices([]ServiceKey{{VIP: netip.AddrFrom4(vipAll)}}); err != nil {
		t.Fatal(err)
	}
	check(web, false)
	check(all, true)
	check(ether(0x0800, tcp(vipWeb, 80)), false)
	n := 0
	var k [16]byte
	var v uint8
	for it := p.objs.Vips.Iterate(); it.Next(&k, &v); {
		n++
	}
	if n != 1 {
		t.Errorf("vips map has %d entries after SetServices with one VIP, want 1", n)
	}
	// A new local address replaces the old one.
	if err := p.SetLocals([]netip.Addr{netip.AddrFrom4(other)}); err != nil {
		t.Fatal(err)
	}
	check(all, false)
	check(ether(0x0800, ip4(router, other, 47, greHdr(0, 0x0800, tcp(vipAll, 1)), nil)), true)
	if err := p.SetLocals(nil); err != nil {
		t.Fatal(err)
	}
	check(ether(0x0800, ip4(router, other, 47, greHdr(0, 0x0800, tcp(vipAll, 1)), nil)), false)
}

// IPv6 local addresses and VIPs are replaced like IPv4 ones, and the two
// families never stand in for each other.
func TestSteerSetReplaces6(t *testing.T) {
	p := loadTestSteer(t)
	check := func(f []byte, want bool) {
		t.Helper()
		got, err := p.Run(f)
		if err != nil || got != want {
			t.Fatalf("Run = %v, %v; want %v", got, err, want)
		}
	}
	plain6 := ether(0x86dd, tcp6(vip6Web, 80))
	greV6 := gre6(0, 0x86dd, tcp6(vip6All, 1))
	check(plain6, true)
	check(greV6, true)
	// Only IPv4 locals: GRE over IPv6 is the kernel's.
	if err := p.SetLocals([]netip.Addr{netip.AddrFrom4(local)}); err != nil {
		t.Fatal(err)
	}
	check(greV6, false)
	check(greIn(tcp(vipWeb, 80)), true)
	// A new IPv6 local address.
	if err := p.SetLocals([]netip.Addr{netip.AddrFrom16(other6)}); err != nil {
		t.Fatal(err)
	}
	check(ether(0x86dd, ip6(router6, other6, 47, greHdr(0, 0x86dd, tcp6(vip6All, 1)), nil)), true)
	check(greIn(tcp(vipWeb, 80)), false)
	// Services of one family only.
	if err := p.SetServices([]ServiceKey{{VIP: netip.AddrFrom16(vip6All)}}); err != nil {
		t.Fatal(err)
	}
	check(plain6, false)
	check(ether(0x86dd, tcp6(vip6All, 22)), true)
	check(ether(0x0800, tcp(vipAll, 22)), false)
	// An IPv4 VIP written IPv4-mapped is the IPv4 VIP, not an IPv6 one.
	if err := p.SetServices([]ServiceKey{{VIP: netip.AddrFrom16(mappedVIPWeb), Port: 80, Proto: 6}}); err != nil {
		t.Fatal(err)
	}
	check(ether(0x0800, tcp(vipWeb, 80)), true)
	check(ether(0x86dd, ip6(client6, mappedVIPWeb, 6, l4(1, 80, 8), nil)), false)
	check(ether(0x86dd, tcp6(vip6All, 22)), false)
}

func TestSteerBadInput(t *testing.T) {
	p := loadTestSteer(t)
	if err := p.SetLocals([]netip.Addr{netip.MustParseAddr("2001:db8::1")}); err != nil {
		t.Errorf("SetLocals refused an IPv6 address: %v", err)
	}
	if err := p.SetLocals([]netip.Addr{{}}); err == nil {
		t.Error("SetLocals accepted an invalid address")
	}
	if err := p.SetLocals([]netip.Addr{netip.MustParseAddr("fe80::1%eth0")}); err == nil || !strings.Contains(err.Error(), "zone") {
		t.Errorf("SetLocals with a zone: %v, want an error that names the zone", err)
	}
	if err := p.SetServices([]ServiceKey{{VIP: netip.Addr{}}}); err == nil {
		t.Error("SetServices accepted an invalid address")
	}
	if err := p.SetServices([]ServiceKey{{VIP: netip.MustParseAddr("2001:db8:f::1"), Port: 443, Proto: 6}}); err != nil {
		t.Errorf("SetServices refused an IPv6 VIP: %v", err)
	}
	if err := p.Register(5000, &Socket{fd: 3}); err == nil {
		t.Error("Register accepted queue 5000")
	}
	if _, err := p.Attach(1, XDPMode(9)); err == nil {
		t.Error("Attach accepted mode 9")
	}
	// IPv4-mapped IPv6 is IPv4.
	if err := p.SetLocals([]netip.Addr{netip.MustParseAddr("::ffff:10.0.0.2")}); err != nil {
		t.Error(err)
	}
	p.Close()
	if err := p.SetLocals(nil); err != ErrClosed {
		t.Errorf("SetLocals after Close = %v, want ErrClosed", err)
	}
}
