package main

import (
	"strings"
	"testing"

	"github.com/rail-lb/rail/decap"
)

func TestDecapMetricsText(t *testing.T) {
	var b strings.Builder
	writeDecapMetrics(&b, decap.Counts{Delivered: 5, HandedOn: 2, NoSocketNoSecondHop: 1, Passed: 9})
	for _, want := range []string{
		"# TYPE rail_decap_packets_total counter\n",
		`rail_decap_packets_total{decision="delivered"} 5` + "\n",
		`rail_decap_packets_total{decision="handed_on"} 2` + "\n",
		`rail_decap_packets_total{decision="no_socket_no_second_hop"} 1` + "\n",
		`rail_decap_packets_total{decision="no_route"} 0` + "\n",
		`rail_decap_packets_total{decision="hand_on_failed"} 0` + "\n",
		`rail_decap_packets_total{decision="decap_failed"} 0` + "\n",
		`rail_decap_packets_total{decision="passed"} 9` + "\n",
	} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, b.String())
		}
	}
}

func TestDecapFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{nil, 2, "--interface IF is required"},
		{[]string{"--interface", "lo", "--mode", "xdp"}, 2, `mode "xdp"`},
		{[]string{"--interface", "lo", "--address", "10.1.0.300"}, 2, "not an IP address"},
		{[]string{"--interface", "rail-no-such-if0"}, 1, "interface rail-no-such-if0"},
		{[]string{"--interface", "lo", "extra"}, 2, `unexpected argument "extra"`},
		{[]string{"--interface", "lo", "--stats", "--detach"}, 2, "exclude each other"},
		{[]string{"--interface", "lo", "--stats", "--metrics-address", "127.0.0.1:9"}, 2, "exclude each other"},
		{[]string{"--interface", "lo", "--pin", "/sys/fs/bpf/x", "--metrics-address", "127.0.0.1:9"}, 2, "nothing would serve --metrics-address"},
		{[]string{"--interface", "lo", "--metrics-address", "9790"}, 2, "--metrics-address"},
		{[]string{"--interface", "rail-no-such-if0", "--stats"}, 1, "interface rail-no-such-if0"},
		{[]string{"--stats"}, 2, "--interface IF is required"},
		{[]string{"--stats", "--pin", "/nonexistent/rail-decap"}, 1, "open pinned counters /nonexistent/rail-decap_counts"},
	} {
		code, _, stderr := runRaild(append([]string{"decap"}, c.args...)...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("raild decap %v: exit %d, stderr %q; want %d and %q", c.args, code, stderr, c.code, c.want)
		}
	}
}
