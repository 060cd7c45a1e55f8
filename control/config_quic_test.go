package control

import (
	"encoding/hex"
	"net/netip"
	"os"
	"strings"
	"testing"
)

// quicSvc is a valid QUIC-LB service (lines 1–14).
const quicSvc = head + `services:
  - name: h3
    vip: 192.0.2.10
    port: 443
    protocol: udp
    quic:
      config_id: 1
      server_id_length: 2
      nonce_length: 14
      key: 8f95f09245765f80256934e50c66207f
    backends:
      - {address: 10.1.0.11, quic_server_id: "0a01"}
      - {address: 10.1.0.12, quic_server_id: "0a02"}
`

func TestParseQUIC(t *testing.T) {
	c, probs := Parse([]byte(quicSvc), "t.yaml")
	if c == nil || len(probs) != 0 {
		t.Fatalf("problems: %v", probs)
	}
	if len(c.Services[0].QUIC) != 1 {
		t.Fatalf("quic: %+v", c.Services[0].QUIC)
	}
	q := c.Services[0].QUIC[0]
	if q.ID != 1 || q.ServerIDLen != 2 || q.NonceLen != 14 || len(q.Key) != 16 || q.Key[0] != 0x8f {
		t.Fatalf("quic: %+v", q)
	}
	if got := c.Services[0].Backends[1].QUICServerID.String(); got != "0a02" {
		t.Fatalf("server id %q", got)
	}
	// Without a key: plaintext.
	c, probs = Parse([]byte(strings.Replace(quicSvc, "      key: 8f95f09245765f80256934e50c66207f\n", "", 1)), "t.yaml")
	if c == nil || len(probs) != 0 || c.Services[0].QUIC[0].Key != nil {
		t.Fatalf("plaintext: %v", probs)
	}
}

func TestParseQUICProblems(t *testing.T) {
	for _, tt := range []struct{ name, in, want string }{
		{"tcp service", strings.Replace(quicSvc, "protocol: udp", "protocol: tcp", 1), "8:7: services[0].quic: QUIC-LB routing needs protocol: udp (the service's protocol is tcp)"},
		{"config id 7", strings.Replace(quicSvc, "config_id: 1", "config_id: 7", 1), "8:18: services[0].quic.config_id: 7 is too large (at most 6)"},
		{"no server id length", strings.Replace(quicSvc, "      server_id_length: 2\n", "", 1), "8:7: services[0].quic.server_id_length: required (e.g. server_id_length: 2)"},
		{"server id length 0", strings.Replace(quicSvc, "server_id_length: 2", "server_id_length: 0", 1), "9:25: services[0].quic.server_id_length: must be at least 1"},
		{"short nonce", strings.Replace(quicSvc, "nonce_length: 14", "nonce_length: 3", 1), "10:21: services[0].quic.nonce_length: must be at least 4"},
		{"too long", strings.Replace(quicSvc, "nonce_length: 14", "nonce_length: 18", 1), "10:21: services[0].quic.nonce_length: server_id_length 2 + nonce_length 18 is more than 19 (a QUIC v1 connection ID is at most 20 octets with the first)"},
		{"bad key", strings.Replace(quicSvc, "key: 8f95", "key: zz95", 1), "11:12: services[0].quic.key: expected 32 hex digits (a 16-octet AES-128 key)"},
		{"short key", strings.Replace(quicSvc, "key: 8f95", "key: 95", 1), "11:12: services[0].quic.key: expected 32 hex digits (a 16-octet AES-128 key)"},
		{"unknown quic key", strings.Replace(quicSvc, "config_id: 1", "config_id: 1\n      algorithm: aes", 1), "9:7: services[0].quic.algorithm: unknown key (expected one of config_id, server_id_length, nonce_length, key)"},
		{"server id length", strings.Replace(quicSvc, `"0a02"`, `"0a0203"`, 1), `14:46: services[0].backends[1].quic_server_id: expected 4 hex digits (server_id_length 2), got "0a0203"`},
		{"server id not hex", strings.Replace(quicSvc, `"0a02"`, `"0x02"`, 1), `14:46: services[0].backends[1].quic_server_id: expected 4 hex digits (server_id_length 2), got "0x02"`},
		{"server id twice", strings.Replace(quicSvc, `"0a02"`, `"0a01"`, 1), "14:46: services[0].backends[1].quic_server_id: server id 0a01 is already services[0].backends[0]'s (line 13)"},
		{"server id without quic", svc + "        quic_server_id: \"01\"\n", "10:25: services[0].backends[1].quic_server_id: the service has no quic option (see docs/QUIC.md)"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, probs := Parse([]byte(tt.in), "t.yaml")
			var got []string
			found := false
			for _, p := range probs {
				got = append(got, p.String())
				found = found || p.String() == "t.yaml:"+tt.want
			}
			if !found || c != nil {
				t.Errorf("missing problem (config %v)\n want t.yaml:%s\n got  %s", c != nil, tt.want, strings.Join(got, "\n      "))
			}
		})
	}
	// Rotation: a list of configurations.
	rot := strings.Replace(quicSvc, `    quic:
      config_id: 1
      server_id_length: 2
      nonce_length: 14
      key: 8f95f09245765f80256934e50c66207f
`, `    quic:
      - {config_id: 1, server_id_length: 2, nonce_length: 14, key: 8f95f09245765f80256934e50c66207f}
      - {config_id: 2, server_id_length: 2, nonce_length: 6}
`, 1)
	if c, probs := Parse([]byte(rot), "t.yaml"); c == nil || len(probs) != 0 || len(c.Services[0].QUIC) != 2 || c.Services[0].QUIC[1].ID != 2 || c.Services[0].QUIC[1].Key != nil {
		t.Fatalf("rotation: %v", probs)
	}
	for _, tt := range []struct{ name, in, want string }{
		{"config id twice", strings.Replace(rot, "config_id: 2", "config_id: 1", 1), "9:9: services[0].quic[1].config_id: config id 1 is already services[0].quic[0]'s (line 8)"},
		{"server id lengths differ", strings.Replace(rot, "server_id_length: 2, nonce_length: 6", "server_id_length: 3, nonce_length: 6", 1), "9:9: services[0].quic[1].server_id_length: 3, but services[0].quic[0] has 2: the configurations share the backends' quic_server_id"},
		{"empty list", strings.Replace(quicSvc, "    quic:\n      config_id: 1\n      server_id_length: 2\n      nonce_length: 14\n      key: 8f95f09245765f80256934e50c66207f\n", "    quic: []\n", 1), "7:11: services[0].quic: an empty list: give one configuration (a mapping) or several"},
	} {
		_, probs := Parse([]byte(tt.in), "t.yaml")
		found := false
		var got []string
		for _, p := range probs {
			got = append(got, p.String())
			found = found || p.String() == "t.yaml:"+tt.want
		}
		if !found {
			t.Errorf("%s: missing problem\n want t.yaml:%s\n got  %s", tt.name, tt.want, strings.Join(got, "\n      "))
		}
	}
	// A backend without a server id is a warning, not an error.
	c, probs := Parse([]byte(strings.Replace(quicSvc, `, quic_server_id: "0a02"`, "", 1)), "t.yaml")
	if c == nil || len(probs) != 1 || !probs[0].Warning || !strings.Contains(probs[0].String(), "14:9: warning: services[0].backends[1]: no quic_server_id") {
		t.Fatalf("want one warning, got %v", probs)
	}
}

// A reload adds a second configuration (key rotation) to the live
// snapshot: connection IDs of the new config id route from then on.
func TestReloadQUICRotation(t *testing.T) {
	l := newAPILab(t, quicSvc)
	src, dst := netip.MustParseAddrPort("198.51.100.7:40000"), netip.MustParseAddrPort("192.0.2.10:443")
	dcid, _ := hex.DecodeString("480a02010203040506") // config id 2, plaintext, server id 0a02
	if v := l.state.Trace(src, dst, 17, dcid); v.QUIC == nil || v.QUIC.Routed {
		t.Fatalf("before the reload: %+v", v.QUIC)
	}
	rot := strings.Replace(quicSvc, "      key: 8f95f09245765f80256934e50c66207f\n",
		"      key: 8f95f09245765f80256934e50c66207f\n    - {config_id: 2, server_id_length: 2, nonce_length: 6}\n", 1)
	rot = strings.Replace(rot, "    quic:\n      config_id: 1\n      server_id_length: 2\n      nonce_length: 14\n",
		"    quic:\n    - config_id: 1\n      server_id_length: 2\n      nonce_length: 14\n", 1)
	if err := os.WriteFile(l.file, []byte(rot), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := l.state.Reload(); err != nil {
		t.Fatal(err)
	}
	v := l.state.Trace(src, dst, 17, dcid)
	if v.QUIC == nil || !v.QUIC.Routed || v.QUIC.ServerID != "0a02" || v.SYN.Backend == nil || v.SYN.Backend.Address != "10.1.0.12" {
		t.Fatalf("after the reload: %+v, SYN %+v", v.QUIC, v.SYN)
	}
}
