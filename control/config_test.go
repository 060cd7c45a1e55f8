package control

import (
	"bytes"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rail-lb/rail/rings"
)

var update = flag.Bool("update", false, "rewrite testdata/example.yaml and the *.golden files")

// head is a valid start of a file; cases append to it. It is 1 line long.
const head = "local_address: 10.0.0.2\n"

// svc is a valid one-service file (lines 1–9); cases append to it or
// replace parts of it.
const svc = head + `services:
  - name: web
    vip: 192.0.2.10
    port: 80
    protocol: tcp
    backends:
      - address: 10.1.0.11
      - address: 10.1.0.12
`

func TestParseProblems(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // one of the problems, formatted, without "t.yaml:"
		warn bool   // the file is still valid
	}{
		// Syntax and structure.
		{"yaml syntax", "a: 1\nb: 2\nc 2\nd: 3\n", "3: invalid YAML: could not find expected ':'", false},
		{"not a mapping", "- 1\n", "1:1: the file must be a mapping of keys (key: value), got a list", false},
		{"two documents", head + "---\n" + head, "2:1: a second YAML document: the file must hold exactly one", false},
		{"unknown key", head + "interfaces: eth0\n", "2:1: interfaces: unknown key (did you mean interface?)", false},
		{"unknown key far", head + "frobnicate: 1\n", "2:1: frobnicate: unknown key (expected one of interface, queues, cpus, xdp_mode, zero_copy, local_address, local_address6, next_hop, hash_seed, metrics_address, conntrack, api, http, bgp, memory, busy_poll, services)", false},
		{"unknown service key", svc + "    weight: 3\n", "10:5: services[0].weight: unknown key (expected one of name, vip, port, protocol, table_size, health, when_down, forward_to, second_chance, quic, backends)", false},
		{"unknown backend key", svc + "        port: 8080\n", "10:9: services[0].backends[1].port: unknown key (expected one of address, weight, name, state, quic_server_id)", false},
		{"duplicate key", head + "local_address: 10.0.0.3\n", "2:1: local_address: duplicate key (first at line 1)", false},
		{"unknown key with anchor", "base: &b {}\n", "1:1: base: unknown key (expected one of interface, queues, cpus, xdp_mode, zero_copy, local_address, local_address6, next_hop, hash_seed, metrics_address, conntrack, api, http, bgp, memory, busy_poll, services)", false},
		{"merge key used", head + "conntrack:\n  <<: {tcp_timeout: 1h}\n", "3:3: conntrack.<<: merge keys (<<) are not supported", false},
		{"conntrack not a mapping", head + "conntrack: 5\n", "2:12: conntrack: expected a mapping of keys (key: value), got 5", false},

		// Required keys.
		{"empty file", "", "1:1: local_address: required: this node's own IPv4 address (e.g. local_address: 10.0.0.2)", false},
		{"missing local_address", "interface: eth0\n", "1:1: local_address: required: this node's own IPv4 address (e.g. local_address: 10.0.0.2)", false},
		{"empty value", "local_address:\n", "1:15: local_address: a value is required", false},
		{"missing vip", head + "services:\n  - name: web\n    port: 80\n    protocol: tcp\n", "3:5: services[0].vip: required (e.g. vip: 192.0.2.10)", false},
		{"missing name", head + "services:\n  - vip: 192.0.2.1\n    port: 80\n    protocol: tcp\n", "3:5: services[0].name: required (e.g. name: web)", false},
		{"missing port", head + "services:\n  - name: a\n    vip: 192.0.2.1\n    protocol: tcp\n", "3:5: services[0].port: required (e.g. port: 80; 0 means every port)", false},
		{"missing protocol", head + "services:\n  - name: a\n    vip: 192.0.2.1\n    port: 80\n", "3:5: services[0].protocol: required (tcp, udp or any)", false},
		{"missing backend address", svc + "      - weight: 2\n", "10:9: services[0].backends[2].address: required (e.g. address: 10.1.0.11)", false},

		// Addresses.
		{"bad address", "local_address: 10.0.0.256\n", `1:16: local_address: "10.0.0.256" is not an IP address`, false},
		{"prefix", "local_address: 10.0.0.0/24\n", `1:16: local_address: "10.0.0.0/24" is a prefix: give a single address`, false},
		{"ipv6 local", "local_address: 2001:db8::2\n", "1:16: local_address: 2001:db8::2 is IPv6: local_address is this node's IPv4 address (put the IPv6 one in local_address6)", false},
		{"ipv4 local6", head + "local_address6: 10.0.0.3\n", "2:17: local_address6: 10.0.0.3 is IPv4: local_address6 is this node's IPv6 address (e.g. local_address6: 2001:db8::2)", false},
		{"ipv6 backend without local6", strings.Replace(svc, "10.1.0.12", "'2001:db8::12'", 1), "9:18: services[0].backends[1].address: 2001:db8::12 is IPv6: set local_address6 (this node's IPv6 address, the outer source towards IPv6 backends)", false},
		{"ipv6 backend is local6", "local_address6: 2001:db8::2\n" + strings.Replace(svc, "10.1.0.12", "'2001:db8::2'", 1), "10:18: services[0].backends[1].address: 2001:db8::2 is local_address6: a backend must be another host", false},
		{"ipv6 vip is local6", "local_address6: 2001:db8::2\n" + strings.Replace(svc, "192.0.2.10", "2001:db8::2", 1), "5:10: services[0].vip: 2001:db8::2 is local_address6: a vip must be an address of its own", false},
		{"ipv4-mapped", strings.Replace(svc, "10.1.0.12", "'::ffff:10.1.0.12'", 1), "9:18: services[0].backends[1].address: ::ffff:10.1.0.12 is an IPv4-mapped IPv6 address: write it as 10.1.0.12", false},
		{"zone", strings.Replace(svc, "10.1.0.12", "'fe80::1%eth0'", 1), "9:18: services[0].backends[1].address: fe80::1%eth0: an address with a zone cannot be used", false},

		// Health checks.
		{"health no type", svc + "    health: {port: 80}\n", "10:13: services[0].health.type: required (tcp, http or udp)", false},
		{"health bad type", svc + "    health: {type: icmp}\n", `10:20: services[0].health.type: unknown value "icmp" (expected tcp, http or udp)`, false},
		{"health unknown key", svc + "    health: {type: tcp, intervall: 1s}\n", "10:25: services[0].health.intervall: unknown key (did you mean interval?)", false},
		{"health path on tcp", svc + "    health: {type: tcp, path: /x}\n", "10:31: services[0].health.path: only http checks have a path (type is tcp)", false},
		{"health bad path", svc + "    health: {type: http, path: x}\n", `10:32: services[0].health.path: "x" must start with / and hold no spaces (e.g. /healthz)`, false},
		{"health bad status", svc + "    health: {type: http, status: 200-699}\n", `10:34: services[0].health.status: "200-699": HTTP statuses are 100 to 599`, false},
		{"health empty status", svc + "    health: {type: http, status: 300-200}\n", `10:34: services[0].health.status: "300-200": the range is empty (write low-high)`, false},
		{"health status word", svc + "    health: {type: http, status: ok}\n", `10:34: services[0].health.status: "ok" is not a status or a range of statuses (e.g. 200 or 200-399)`, false},
		{"health status on udp", svc + "    health: {type: udp, status: 200}\n", "10:33: services[0].health.status: only http checks have an expected status (type is udp)", false},
		{"health interval short", svc + "    health: {type: tcp, interval: 1ms}\n", "10:35: services[0].health.interval: 1ms is too short (at least 50ms)", false},
		{"health timeout long", svc + "    health: {type: tcp, interval: 1s, timeout: 2s}\n", "10:48: services[0].health.timeout: 2s is longer than the interval (1s): a check must end before the next one starts", false},
		{"health rise 0", svc + "    health: {type: tcp, rise: 0}\n", "10:31: services[0].health.rise: must be at least 1", false},
		{"health fall big", svc + "    health: {type: tcp, fall: 101}\n", "10:31: services[0].health.fall: 101 is too large (at most 100)", false},
		{"health port 0", svc + "    health: {type: tcp, port: 0}\n", "10:31: services[0].health.port: must be 1 to 65535", false},
		{"health port needed", strings.Replace(svc, "port: 80", "port: 0", 1) + "    health: {type: tcp}\n", "10:13: services[0].health.port: required: the service serves every port, so say which one to check (e.g. port: 80)", false},

		// The admin API.
		{"api unknown key", head + "api: {sockett: /x}\n", "2:7: api.sockett: unknown key (did you mean socket?)", false},
		{"api address needs token", head + "api: {address: 127.0.0.1:9701}\n", "2:16: api.address: a TCP listener needs api.token_file (a file holding the bearer token)", false},
		{"api bad address", head + "api: {address: nowhere, token_file: /t}\n", `2:16: api.address: "nowhere" is not host:port (e.g. 127.0.0.1:9700)`, false},
		{"api token without address", head + "api: {token_file: /t}\n", "2:19: warning: api.token_file: used only with api.address (the unix socket needs no token)", true},
		{"api empty socket", head + "api: {socket: ''}\n", "2:15: api.socket: must not be empty", false},
		{"unspecified", "local_address: 0.0.0.0\n", "1:16: local_address: 0.0.0.0 is the unspecified address", false},
		{"multicast vip", strings.Replace(svc, "192.0.2.10", "224.0.0.1", 1), "4:10: services[0].vip: 224.0.0.1 is a multicast address", false},
		{"loopback backend", strings.Replace(svc, "10.1.0.11", "127.0.0.1", 1), "8:18: services[0].backends[0].address: 127.0.0.1 is a loopback address: a backend must be another host", false},
		{"link-local backend", strings.Replace(svc, "10.1.0.12", "169.254.1.1", 1), "9:18: services[0].backends[1].address: 169.254.1.1 is a link-local address: a backend needs an address routable from this node", false},
		{"multicast backend", strings.Replace(svc, "10.1.0.12", "239.1.1.1", 1), "9:18: services[0].backends[1].address: 239.1.1.1 is a multicast address", false},
		{"unspecified backend", strings.Replace(svc, "10.1.0.12", "0.0.0.0", 1), "9:18: services[0].backends[1].address: 0.0.0.0 is the unspecified address", false},
		{"broadcast", "local_address: 255.255.255.255\n", "1:16: local_address: 255.255.255.255 is the broadcast address", false},
		{"address not a scalar", "local_address: [10.0.0.2]\n", "1:16: local_address: expected a single value, got a list", false},
		{"vip is local_address", strings.Replace(svc, "192.0.2.10", "10.0.0.2", 1), "4:10: services[0].vip: 10.0.0.2 is local_address: a vip must be an address of its own", false},
		{"backend is local_address", strings.Replace(svc, "10.1.0.12", "10.0.0.2", 1), "9:18: services[0].backends[1].address: 10.0.0.2 is local_address: a backend must be another host", false},
		{"backend is own vip", strings.Replace(svc, "10.1.0.12", "192.0.2.10", 1), "9:18: services[0].backends[1].address: 192.0.2.10 is the service's own vip", false},
		{"backend is another vip", svc + "  - {name: dns, vip: 10.1.0.11, port: 53, protocol: udp}\n",
			"8:18: services[0].backends[0].address: 10.1.0.11 is the vip of services[1]: a backend must not be a vip", false},

		// Numbers.
		{"port too large", strings.Replace(svc, "port: 80", "port: 65536", 1), "5:11: services[0].port: 65536 is too large (at most 65535)", false},
		{"negative port", strings.Replace(svc, "port: 80", "port: -1", 1), "5:11: services[0].port: -1 is negative (expected 0 to 65535)", false},
		{"port wrong type", strings.Replace(svc, "port: 80", "port: http", 1), `5:11: services[0].port: expected a whole number, got "http"`, false},
		{"port quoted", strings.Replace(svc, "port: 80", `port: "80"`, 1), `5:11: services[0].port: expected a number, got the string "80" (remove the quotes)`, false},
		{"port float", strings.Replace(svc, "port: 80", "port: 80.5", 1), "5:11: services[0].port: expected a whole number, got 80.5", false},
		{"negative weight", svc + "        weight: -3\n", "10:17: services[0].backends[1].weight: -3 is negative (expected 0 to 4294967295)", false},
		{"hash_seed too large", head + "hash_seed: 18446744073709551616\n", "2:12: hash_seed: 18446744073709551616 is too large (at most 18446744073709551615)", false},
		{"hash_seed list", head + "hash_seed: [1]\n", "2:12: hash_seed: expected a number, got a list", false},

		// Enums.
		{"xdp_mode", head + "xdp_mode: turbo\n", `2:11: xdp_mode: unknown value "turbo" (expected auto, native or generic)`, false},
		{"zero_copy", head + "zero_copy: maybe\n", `2:12: zero_copy: unknown value "maybe" (expected auto, on or off)`, false},
		{"protocol", strings.Replace(svc, "protocol: tcp", "protocol: sctp", 1), `6:15: services[0].protocol: unknown value "sctp" (expected tcp, udp or any)`, false},
		{"next_hop", head + "next_hop: router\n", `2:11: next_hop: "router" is neither ingress, kernel nor a MAC address such as aa:bb:cc:dd:ee:ff`, false},
		{"next_hop long mac", head + "next_hop: 00:00:5e:10:00:00:00:01\n", `2:11: next_hop: "00:00:5e:10:00:00:00:01" is neither ingress, kernel nor a MAC address such as aa:bb:cc:dd:ee:ff`, false},
		{"next_hop broadcast", head + "next_hop: ff:ff:ff:ff:ff:ff\n", "2:11: next_hop: ff:ff:ff:ff:ff:ff is a multicast or broadcast MAC address", false},
		{"next_hop zero", head + "next_hop: 00:00:00:00:00:00\n", "2:11: next_hop: 00:00:00:00:00:00 is the all-zero MAC address", false},

		// Strings.
		{"interface name", head + "interface: eth1/0\n", `2:12: interface: "eth1/0" is not a valid interface name`, false},
		{"interface too long", head + "interface: abcdefghijklmnop\n", `2:12: interface: "abcdefghijklmnop" is too long for an interface name (at most 15 bytes)`, false},
		{"metrics_address", head + "metrics_address: localhost\n", `2:18: metrics_address: "localhost" is not host:port (e.g. 127.0.0.1:9700)`, false},
		{"metrics port", head + "metrics_address: ':99999'\n", `2:18: metrics_address: ":99999": port must be 1 to 65535`, false},
		{"service name", strings.Replace(svc, "name: web", "name: web,1", 1), `3:11: services[0].name: "web,1" may contain only letters, digits, '-', '_' and '.'`, false},
		{"backend name", svc + "        name: b 2\n", `10:15: services[0].backends[1].name: "b 2" may contain only letters, digits, '-', '_' and '.'`, false},

		// Queues and CPUs.
		{"queues scalar", head + "queues: 4\n", "2:9: queues: expected all or a list of queue numbers such as [0, 1], got 4", false},
		{"queues word", head + "queues: some\n", `2:9: queues: expected all or a list of queue numbers such as [0, 1], got "some"`, false},
		{"queues empty", head + "queues: []\n", "2:9: queues: the list is empty", false},
		{"queues duplicate", head + "queues: [0, 1, 1]\n", "2:16: queues[2]: queue 1 is listed twice (also queues[1])", false},
		{"queues negative", head + "queues: [0, -1]\n", "2:13: queues[1]: -1 is negative (expected 0 to 65535)", false},
		{"cpus length", head + "queues: [0, 1]\ncpus: [2, 3, 4]\n", "3:7: cpus: 3 cpus for 2 queues: list one cpu per queue", false},
		{"cpus duplicate", head + "cpus: [2, 2]\n", "2:11: cpus[1]: cpu 2 is listed twice (also cpus[0]): each queue needs a cpu of its own", false},
		{"cpus all", head + "cpus: all\n", `2:7: cpus: expected a list of cpu numbers such as [0, 1], got "all"`, false},

		// Conntrack.
		{"entries not power of two", head + "conntrack:\n  entries_per_core: 1000000\n", "3:21: conntrack.entries_per_core: 1000000 is not a power of two (try 1048576)", false},
		{"entries zero", head + "conntrack:\n  entries_per_core: 0\n", "3:21: conntrack.entries_per_core: must be at least 1", false},
		{"entries too large", head + "conntrack:\n  entries_per_core: 4294967296\n", "3:21: conntrack.entries_per_core: 4294967296 is too large (at most 268435456)", false},
		{"duration no unit", head + "conntrack:\n  tcp_timeout: 3600\n", "3:16: conntrack.tcp_timeout: 3600 has no unit (e.g. 3600s)", false},
		{"duration bad", head + "conntrack:\n  udp_timeout: soon\n", `3:16: conntrack.udp_timeout: "soon" is not a duration (e.g. 30s, 5m, 1h)`, false},
		{"duration short", head + "conntrack:\n  udp_timeout: 500ms\n", "3:16: conntrack.udp_timeout: 500ms is too short (at least 1s)", false},
		{"duration negative", head + "conntrack:\n  udp_timeout: -5s\n", "3:16: conntrack.udp_timeout: -5s is too short (at least 1s)", false},

		// Table size.
		{"table not prime", strings.Replace(svc, "protocol: tcp", "protocol: tcp\n    table_size: 65536", 1), "7:17: services[0].table_size: 65536 is not prime (try 65537)", false},
		{"table one", strings.Replace(svc, "protocol: tcp", "protocol: tcp\n    table_size: 1", 1), "7:17: services[0].table_size: 1 is not prime (try 65537)", false},
		{"table too large", strings.Replace(svc, "protocol: tcp", "protocol: tcp\n    table_size: 16777259", 1), "7:17: services[0].table_size: 16777259 is too large (at most 16777216)", false},
		{"table smaller than backends", strings.Replace(svc, "protocol: tcp", "protocol: tcp\n    table_size: 2", 1) + "      - address: 10.1.0.13\n",
			"7:17: services[0].table_size: 2 is smaller than the number of backends (3); try 307", false},
		{"table small warning", strings.Replace(svc, "protocol: tcp", "protocol: tcp\n    table_size: 101", 1),
			"7:17: warning: services[0].table_size: 101 is small for 2 backends: Maglev spreads flows evenly only when table_size ≥ 100 × backends (try 211)", true},

		// Duplicates.
		{"duplicate service name", svc + "  - {name: web, vip: 192.0.2.11, port: 80, protocol: tcp}\n",
			`10:12: services[1].name: duplicate service name "web" (also services[0], line 3)`, false},
		{"duplicate service key", svc + "  - {name: web2, vip: 192.0.2.10, port: 80, protocol: tcp}\n",
			"10:5: services[1]: same vip, port and protocol as services[0] (line 3): 192.0.2.10 tcp port 80", false},
		{"duplicate backend address", svc + "      - address: 10.1.0.11\n",
			"10:18: services[0].backends[2].address: 10.1.0.11 is already services[0].backends[0] (line 8)", false},
		{"duplicate backend name", svc + "        name: b\n      - address: 10.1.0.13\n        name: b\n",
			`12:15: services[0].backends[2].name: Maglev key "b" is already used by services[0].backends[1] (line 9)`, false},
		{"backend name is another's address", svc + "      - address: 10.1.0.13\n        name: 10.1.0.11\n",
			`11:15: services[0].backends[2].name: Maglev key "10.1.0.11" is already used by services[0].backends[0] (line 8)`, false},

		// Warnings.
		{"no services", head, "1:1: warning: services: no services: every packet will be passed to the kernel", true},
		{"empty services", head + "services: []\n", "2:11: warning: services: no services: every packet will be passed to the kernel", true},
		{"no backends", head + "services:\n  - {name: a, vip: 192.0.2.1, port: 0, protocol: any}\n",
			"3:5: warning: services[0].backends: no backends: every packet will be dropped (no_backend)", true},
		{"all drained", strings.Replace(svc, "      - address: 10.1.0.12\n", "        weight: 0\n", 1),
			"3:5: warning: services[0].backends: every backend has weight 0: new flows will be dropped (no_backend)", true},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if seen[tt.name] {
				t.Fatalf("duplicate case name")
			}
			seen[tt.name] = true
			c, probs := Parse([]byte(tt.in), "t.yaml")
			want := "t.yaml:" + tt.want
			var got []string
			found := false
			for _, p := range probs {
				got = append(got, p.String())
				if p.String() == want {
					found = true
				}
			}
			if !found {
				t.Errorf("missing problem\n want %s\n got  %s", want, strings.Join(got, "\n      "))
			}
			if tt.warn != (c != nil) {
				t.Errorf("config returned = %v, want %v (problems: %v)", c != nil, tt.warn, got)
			}
			if tt.warn && HasError(probs) {
				t.Errorf("want only warnings, got %v", got)
			}
		})
	}
}

// TestAllProblems checks that parsing goes on after the first problem.
func TestAllProblems(t *testing.T) {
	c, probs := Load("testdata/invalid.yaml")
	if c != nil {
		t.Fatal("invalid.yaml gave a config")
	}
	if len(probs) < 20 {
		t.Errorf("got %d problems, want every one of them (at least 20)", len(probs))
	}
	for i := 1; i < len(probs); i++ {
		if probs[i].Line < probs[i-1].Line {
			t.Errorf("problems not sorted by line: %v before %v", probs[i-1], probs[i])
		}
	}
}

// TestGolden compares the problems of every testdata/*.yaml file with the
// .golden file next to it: what `raild check` prints.
func TestGolden(t *testing.T) {
	files, _ := filepath.Glob("testdata/*.yaml")
	if len(files) == 0 {
		t.Fatal("no testdata")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			c, probs := Load(f)
			var b strings.Builder
			for _, p := range probs {
				b.WriteString(p.String() + "\n")
			}
			if c != nil {
				b.WriteString("valid\n")
			} else {
				b.WriteString("invalid\n")
			}
			golden := strings.TrimSuffix(f, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update)", err)
			}
			if b.String() != string(want) {
				t.Errorf("problems differ from %s\ngot:\n%s\nwant:\n%s", golden, b.String(), want)
			}
		})
	}
}

func TestExample(t *testing.T) {
	c, probs := Parse([]byte(Example()), "example.yaml")
	if len(probs) != 0 {
		t.Fatalf("Example() has problems: %v", probs)
	}
	a := netip.MustParseAddr
	want := &Config{
		Interface:      "eth1",
		XDPMode:        rings.XDPAuto,
		ZeroCopy:       rings.ZeroCopyAuto,
		LocalAddress:   a("10.0.0.2"),
		NextHop:        NextHopIngress,
		HashSeed:       0,
		MetricsAddress: "127.0.0.1:9700",
		Conntrack:      Conntrack{EntriesPerCore: 1 << 20, TCPTimeout: time.Hour, UDPTimeout: 30 * time.Second},
		API:            API{Socket: "/run/rail/raild.sock"},
		HTTP:           DefaultHTTPLimits,
		Memory:         Memory{Policy: MemoryGC, GCPercent: 100, Limit: 512 << 20},
		BusyPoll:       true,
		Services: []Service{
			{Name: "web", VIP: a("192.0.2.10"), Port: 80, Protocol: TCP, TableSize: 65537, WhenDown: DownWithdraw, Backends: []Backend{
				{Address: a("10.1.0.11"), Weight: 1, State: StateActive},
				{Address: a("10.1.0.12"), Weight: 1, Name: "b2", State: StateActive},
			}, Health: &Health{Type: HealthHTTP, Port: 80, Path: "/healthz", StatusMin: 200, StatusMax: 399,
				Interval: 2 * time.Second, Timeout: time.Second, Rise: 2, Fall: 3, Via: ViaDirect}},
			{Name: "dns", VIP: a("192.0.2.53"), Port: 53, Protocol: UDP, TableSize: 65537, WhenDown: DownWithdraw, Backends: []Backend{
				{Address: a("10.1.0.21"), Weight: 1, State: StateActive},
				{Address: a("10.1.0.22"), Weight: 2, State: StateActive},
			}},
		},
		file: "example.yaml",
	}
	// Where each service and backend starts is checked by the problem
	// tests; here only that it is known, so that editing the example's
	// comments does not break this test.
	for i := range c.Services {
		if c.Services[i].Line == 0 {
			t.Errorf("service %d: no line", i)
		}
		c.Services[i].Line = 0
		for j := range c.Services[i].Backends {
			if c.Services[i].Backends[j].Line == 0 {
				t.Errorf("service %d backend %d: no line", i, j)
			}
			c.Services[i].Backends[j].Line = 0
		}
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Example() parsed to\n%+v\nwant\n%+v", c, want)
	}
	if p := c.RequireInterface(); p != nil {
		t.Errorf("RequireInterface: %v", p)
	}
}

// TestExampleFile keeps testdata/example.yaml equal to Example().
func TestExampleFile(t *testing.T) {
	const f = "testdata/example.yaml"
	if *update {
		if err := os.WriteFile(f, []byte(Example()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(f)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != Example() {
		t.Errorf("%s differs from Example() (run go test -update)", f)
	}
}

func TestFullConfig(t *testing.T) {
	c, probs := Load("testdata/full.yaml")
	if c == nil || len(probs) != 0 {
		t.Fatalf("full.yaml: %v", probs)
	}
	if !reflect.DeepEqual(c.Queues, []int{0, 1}) || !reflect.DeepEqual(c.CPUs, []int{4, 6}) {
		t.Errorf("queues %v cpus %v", c.Queues, c.CPUs)
	}
	if c.XDPMode != rings.XDPNative || c.ZeroCopy != rings.ZeroCopyOn {
		t.Errorf("xdp_mode %v zero_copy %v", c.XDPMode, c.ZeroCopy)
	}
	if c.NextHop != NextHopMAC || c.NextHopMAC != [6]byte{0x02, 0, 0x5e, 0x10, 0, 1} {
		t.Errorf("next hop %v %x", c.NextHop, c.NextHopMAC)
	}
	if c.HashSeed != 0xdeadbeefcafef00d {
		t.Errorf("hash_seed %#x", c.HashSeed)
	}
	if c.MetricsAddress != "[::1]:9100" {
		t.Errorf("metrics_address %q", c.MetricsAddress)
	}
	if c.Conntrack != (Conntrack{EntriesPerCore: 65536, TCPTimeout: 5 * time.Minute, UDPTimeout: 10 * time.Second}) {
		t.Errorf("conntrack %+v", c.Conntrack)
	}
	if len(c.Services) != 4 {
		t.Fatalf("%d services", len(c.Services))
	}
	if c.LocalAddress6 != netip.MustParseAddr("2001:db8::2") {
		t.Errorf("local_address6 %v", c.LocalAddress6)
	}
	if c.API != (API{Socket: "/tmp/rail.sock", Address: "127.0.0.1:9701", TokenFile: "/etc/rail/token"}) {
		t.Errorf("api %+v", c.API)
	}
	if h := c.Services[0].Health; h == nil || *h != (Health{Type: HealthHTTP, Port: 443, Path: "/healthz", StatusMin: 200, StatusMax: 204,
		Interval: 500 * time.Millisecond, Timeout: 200 * time.Millisecond, Rise: 1, Fall: 5, Via: ViaDirect}) {
		t.Errorf("web health %+v", h)
	}
	if h := c.Services[2].Health; h == nil || *h != (Health{Type: HealthUDP, Port: 53, Interval: DefaultHealthInterval, Timeout: DefaultHealthTimeout,
		Rise: DefaultHealthRise, Fall: DefaultHealthFall, Via: ViaDirect}) {
		t.Errorf("all-ports health %+v", h)
	}
	if c.Services[1].Health != nil {
		t.Errorf("web-udp has health %+v", c.Services[1].Health)
	}
	v6 := c.Services[3]
	if v6.VIP != netip.MustParseAddr("2001:db8:100::10") || v6.Backends[0].Address != netip.MustParseAddr("2001:db8:1::11") || v6.Health.Port != 80 {
		t.Errorf("v6 service %+v", v6)
	}
	s := c.Services[2]
	if s.Name != "all-ports" || s.Port != 0 || s.Protocol != Any || s.TableSize != 1009 {
		t.Errorf("service %+v", s)
	}
	// The anchored pool is shared.
	if !reflect.DeepEqual(c.Services[0].Backends[0].Address, c.Services[1].Backends[0].Address) {
		t.Errorf("alias not followed: %+v", c.Services[1].Backends)
	}
	if s.Backends[0].Weight != 0 || s.Backends[1].Weight != 3 {
		t.Errorf("weights %+v", s.Backends)
	}
}

func TestZeroCopyBool(t *testing.T) {
	for in, want := range map[string]rings.ZeroCopy{"true": rings.ZeroCopyOn, "false": rings.ZeroCopyOff, "on": rings.ZeroCopyOn, "off": rings.ZeroCopyOff, "auto": rings.ZeroCopyAuto} {
		c, probs := Parse([]byte(head+"zero_copy: "+in+"\nservices: []\n"), "")
		if c == nil || c.ZeroCopy != want {
			t.Errorf("zero_copy: %s gave %v %v, want %s", in, c, probs, want)
		}
	}
}

func TestDefaults(t *testing.T) {
	c, _ := Parse([]byte(svc), "")
	if c == nil {
		t.Fatal("svc is invalid")
	}
	if c.Queues != nil || c.CPUs != nil || c.XDPMode != rings.XDPAuto || c.ZeroCopy != rings.ZeroCopyAuto || c.NextHop != NextHopIngress ||
		c.MetricsAddress != DefaultMetricsAddress || c.Conntrack.EntriesPerCore != 1048576 ||
		c.Conntrack.TCPTimeout != time.Hour || c.Conntrack.UDPTimeout != 30*time.Second {
		t.Errorf("defaults: %+v", c)
	}
	if c.Services[0].TableSize != 65537 || c.Services[0].Backends[0].Weight != 1 {
		t.Errorf("service defaults: %+v", c.Services[0])
	}
	if p := c.RequireInterface(); len(p) != 1 || p[0].String() != "config: interface: required by `raild run` (e.g. interface: eth1)" {
		t.Errorf("RequireInterface: %v", p)
	}
}

func TestProblemString(t *testing.T) {
	tests := []struct {
		p    Problem
		want string
	}{
		{Problem{File: "rail.yaml", Line: 14, Column: 17, Path: "services[1].table_size", Msg: "65536 is not prime (try 65537)"},
			"rail.yaml:14:17: services[1].table_size: 65536 is not prime (try 65537)"},
		{Problem{File: "rail.yaml", Line: 3, Path: "services", Msg: "no services", Warning: true},
			"rail.yaml:3: warning: services: no services"},
		{Problem{File: "rail.yaml", Msg: "cannot open: no such file or directory"},
			"rail.yaml: cannot open: no such file or directory"},
		{Problem{Line: 2, Column: 1, Msg: "x"}, "config:2:1: x"},
	}
	for _, tt := range tests {
		if got := tt.p.String(); got != tt.want {
			t.Errorf("got  %s\nwant %s", got, tt.want)
		}
		if tt.p.Error() != tt.want {
			t.Errorf("Error() = %s", tt.p.Error())
		}
	}
}

func TestLoadMissing(t *testing.T) {
	c, probs := Load("testdata/does-not-exist.yaml")
	if c != nil || len(probs) != 1 || probs[0].String() != "testdata/does-not-exist.yaml: cannot open: no such file or directory" {
		t.Errorf("Load: %v %v", c, probs)
	}
}

func TestBackendKey(t *testing.T) {
	a := netip.MustParseAddr("10.1.0.1")
	if k := (Backend{Address: a}).Key(); k != "10.1.0.1" {
		t.Errorf("Key() = %q", k)
	}
	if k := (Backend{Address: a, Name: "b1"}).Key(); k != "b1" {
		t.Errorf("Key() = %q", k)
	}
}

func TestStrings(t *testing.T) {
	if TCP.String() != "tcp" || UDP.String() != "udp" || Any.String() != "any" || Protocol(1).String() != "Protocol(1)" {
		t.Error("Protocol.String")
	}
	if NextHopIngress.String() != "ingress" || NextHopKernel.String() != "kernel" || NextHopMAC.String() != "mac" {
		t.Error("NextHopMode.String")
	}
}

func TestPrimes(t *testing.T) {
	var primes []uint64
	for n := uint64(0); n < 60; n++ {
		if isPrime(n) {
			primes = append(primes, n)
		}
	}
	want := []uint64{2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59}
	if !reflect.DeepEqual(primes, want) {
		t.Errorf("isPrime: %v", primes)
	}
	for _, tt := range []struct{ n, next, near uint64 }{
		{0, 2, 2}, {2, 2, 2}, {4, 5, 5}, {65536, 65537, 65537}, {65537, 65537, 65537},
		{MaxTableSize, 16777259, 16777213}, {1 << 40, 0, 16777213},
	} {
		if tt.next != 0 && nextPrime(tt.n) != tt.next {
			t.Errorf("nextPrime(%d) = %d, want %d", tt.n, nextPrime(tt.n), tt.next)
		}
		if primeNear(tt.n) != tt.near {
			t.Errorf("primeNear(%d) = %d, want %d", tt.n, primeNear(tt.n), tt.near)
		}
	}
}

// TestAliasBomb checks that aliases cannot make parsing do unbounded work.
func TestAliasBomb(t *testing.T) {
	var b strings.Builder
	b.WriteString(head + "pool: &p\n")
	for i := 0; i < 2000; i++ {
		b.WriteString("  - {address: 10.1.0.1}\n")
	}
	b.WriteString("services:\n")
	for i := 0; i < 2000; i++ {
		b.WriteString("  - {name: s, vip: 192.0.2.1, port: 1, protocol: tcp, backends: *p}\n")
	}
	start := time.Now()
	c, probs := Parse([]byte(b.String()), "")
	if c != nil || !HasError(probs) {
		t.Fatal("alias bomb accepted")
	}
	found := false
	for _, p := range probs {
		found = found || strings.Contains(p.Msg, "too many backends")
	}
	if !found {
		t.Errorf("no 'too many backends' problem among %d", len(probs))
	}
	t.Logf("%d problems in %v", len(probs), time.Since(start))
}

// TestLoadRefusesWhatIsNotAConfigFile: a FIFO would block a reload forever
// and a huge file is a mistake; both are one problem, at once.
func TestLoadRefusesWhatIsNotAConfigFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, bytes.Repeat([]byte("# padding\n"), MaxConfigBytes/10+1), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ file, want string }{
		{fifo, "not a regular file (a FIFO)"},
		{dir, "not a regular file (a directory)"},
		{big, "larger than the 1048576 bytes"},
	} {
		done := make(chan []Problem, 1)
		go func() { _, probs := Load(c.file); done <- probs }()
		select {
		case probs := <-done:
			if len(probs) != 1 || !strings.Contains(probs[0].Msg, c.want) {
				t.Errorf("Load(%s) = %v, want one problem containing %q", c.file, probs, c.want)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("Load(%s) blocked", c.file)
		}
	}
}
