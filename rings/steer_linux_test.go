package rings

import (
	"net/netip"
	"testing"
)

func loadTestSteer(t *testing.T) *Steer {
	t.Helper()
	requirePrivileged(t)
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

// TestSteerVerdicts runs every row of docs/verdicts.md through the
// program with BPF_PROG_TEST_RUN.
func TestSteerVerdicts(t *testing.T) {
	p := loadTestSteer(t)
	for _, c := range verdictCases() {
		t.Run(c.name, func(t *testing.T) {
			got, err := p.Run(c.frame)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.redirect {
				t.Errorf("redirect = %v, want %v (frame % x)", got, c.redirect, c.frame)
			}
		})
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
	var k uint32
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

func TestSteerBadInput(t *testing.T) {
	p := loadTestSteer(t)
	if err := p.SetLocals([]netip.Addr{netip.MustParseAddr("2001:db8::1")}); err == nil {
		t.Error("SetLocals accepted an IPv6 address")
	}
	if err := p.SetServices([]ServiceKey{{VIP: netip.Addr{}}}); err == nil {
		t.Error("SetServices accepted an invalid address")
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
