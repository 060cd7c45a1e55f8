package control

import (
	"net/netip"
	"strings"
	"testing"
)

func TestAnnouncements(t *testing.T) {
	a := netip.MustParseAddr
	b := &BGP{ASN: 65010, NextHop: a("10.0.0.2"), Communities: []uint32{65010<<16 | 100}}
	svcs := []Service{
		{Name: "web", VIP: a("192.0.2.10"), WhenDown: DownWithdraw},
		{Name: "web-tls", VIP: a("192.0.2.10"), WhenDown: DownWithdraw}, // shares the VIP
		{Name: "dns", VIP: a("192.0.2.53"), WhenDown: DownKeep},
		{Name: "api", VIP: a("192.0.2.80"), WhenDown: DownForward},
		{Name: "v6", VIP: a("2001:db8::10"), WhenDown: DownWithdraw},
	}
	type want struct {
		announced bool
		why       string
	}
	for _, tc := range []struct {
		name                          string
		usable                        map[string]bool
		forwarding, draining, withdrn bool
		want                          map[string]want
	}{
		{"all usable", map[string]bool{"web": true, "web-tls": true, "dns": true, "api": true, "v6": true}, true, false, false, map[string]want{
			"192.0.2.10/32": {true, "web has a healthy"}, "192.0.2.53/32": {true, "dns has a healthy"},
			"192.0.2.80/32": {true, "api has a healthy"}, "2001:db8::10/128": {false, "no next hop"},
		}},
		{"one of two services on a VIP", map[string]bool{"web-tls": true}, true, false, false, map[string]want{
			"192.0.2.10/32": {true, "web-tls has a healthy"}, "192.0.2.53/32": {true, "when_down: keep"},
			"192.0.2.80/32": {true, "when_down: forward"},
		}},
		{"nothing usable", nil, true, false, false, map[string]want{
			"192.0.2.10/32": {false, "when_down: withdraw"}, "192.0.2.53/32": {true, "keep"},
		}},
		{"workers not forwarding", map[string]bool{"web": true, "dns": true}, false, false, false, map[string]want{
			"192.0.2.10/32": {false, "not forwarding"}, "192.0.2.53/32": {false, "not forwarding"}, "192.0.2.80/32": {false, "not forwarding"},
		}},
		{"draining", map[string]bool{"web": true}, true, true, false, map[string]want{"192.0.2.10/32": {true, "GRACEFUL_SHUTDOWN"}}},
		{"drained", map[string]bool{"web": true}, true, true, true, map[string]want{"192.0.2.10/32": {false, "withdrawn"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Announcements(b, svcs, tc.usable, tc.forwarding, tc.draining, tc.withdrn)
			if len(got) != 4 {
				t.Fatalf("%d announcements, want one per VIP (4)", len(got))
			}
			for _, an := range got {
				w, ok := tc.want[an.Prefix.String()]
				if !ok {
					continue
				}
				if an.Announced != w.announced || !strings.Contains(an.Why, w.why) {
					t.Errorf("%s: announced %v (%s), want %v (…%s…)", an.Prefix, an.Announced, an.Why, w.announced, w.why)
				}
				if an.Announced {
					wantComms := "65010:100"
					if tc.draining {
						wantComms += " 65535:0"
					}
					if c := strings.Join(an.Communities, " "); c != wantComms {
						t.Errorf("%s: communities %q, want %q", an.Prefix, c, wantComms)
					}
				}
			}
		})
	}
}

func TestParseBGP(t *testing.T) {
	const base = "local_address: 10.0.0.2\nbgp:\n"
	ok := base + "  asn: 65010\n  drain_time: 3s\n  communities: [\"65010:100\"]\n  med: 10\n  peers:\n    - {address: 10.0.0.1, asn: 65000, hold_time: 9s, password: pw, passive: true}\n"
	c, probs := Parse([]byte(ok), "t.yaml")
	if c == nil || HasError(probs) {
		t.Fatalf("valid bgp block: %v", probs)
	}
	b := c.BGP
	if b.ASN != 65010 || b.RouterID != netip.MustParseAddr("10.0.0.2") || b.DrainTime.Seconds() != 3 || !b.HasMED || b.MED != 10 ||
		len(b.Peers) != 1 || b.Peers[0].HoldTime.Seconds() != 9 || !b.Peers[0].Passive || b.Peers[0].Password != "pw" || b.Peers[0].Port != 179 {
		t.Errorf("parsed %+v %+v", b, b.Peers)
	}
	for _, tc := range []struct{ name, file, want string }{
		{"unknown key", base + "  asn: 1\n  asnn: 2\n", "bgp.asnn: unknown key (did you mean asn?)"},
		{"no asn", base + "  drain_time: 1s\n", "bgp.asn: required"},
		{"asn 0", base + "  asn: 0\n", "AS 0 is reserved"},
		{"asn too big", base + "  asn: 4294967296\n", "too large"},
		{"router id v6", base + "  asn: 1\n  router_id: 2001:db8::1\n", "a router id is an IPv4 address"},
		{"bad community", base + "  asn: 1\n  communities: [\"65010\"]\n", "a community is AS:value"},
		{"community range", base + "  asn: 1\n  communities: [\"70000:1\"]\n", "0 to 65535"},
		{"hold time", base + "  asn: 1\n  peers: [{address: 10.0.0.1, asn: 2, hold_time: 2s}]\n", "a hold time is 0 or 3s to 65535s"},
		{"peer is us", base + "  asn: 1\n  peers: [{address: 10.0.0.2, asn: 2}]\n", "this node's own address"},
		{"peer twice", base + "  asn: 1\n  peers: [{address: 10.0.0.1, asn: 2}, {address: 10.0.0.1, asn: 3}]\n", "already a peer"},
		{"peer without asn", base + "  asn: 1\n  peers: [{address: 10.0.0.1}]\n", "peers[0].asn: required"},
		{"long password", base + "  asn: 1\n  peers: [{address: 10.0.0.1, asn: 2, password: " + strings.Repeat("x", 81) + "}]\n", "at most 80 bytes"},
		{"when_down", "local_address: 10.0.0.2\nservices:\n  - {name: w, vip: 192.0.2.1, port: 80, protocol: tcp, when_down: maybe, backends: [{address: 10.1.0.1}]}\n", `unknown value "maybe"`},
		{"forward without nodes", "local_address: 10.0.0.2\nservices:\n  - {name: w, vip: 192.0.2.1, port: 80, protocol: tcp, when_down: forward, backends: [{address: 10.1.0.1}]}\n", "forward_to: required with when_down: forward"},
		{"forward to self", "local_address: 10.0.0.2\nservices:\n  - {name: w, vip: 192.0.2.1, port: 80, protocol: tcp, when_down: forward, forward_to: [10.0.0.2], backends: [{address: 10.1.0.1}]}\n", "forward_to names other Rail nodes"},
	} {
		_, probs := Parse([]byte(tc.file), "t.yaml")
		found := false
		for _, p := range probs {
			if strings.Contains(p.String(), tc.want) {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: problems %v, want one containing %q", tc.name, probs, tc.want)
		}
	}
}
