package main

import (
	"strings"
	"testing"
)

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
	} {
		code, _, stderr := runRaild(append([]string{"decap"}, c.args...)...)
		if code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("raild decap %v: exit %d, stderr %q; want %d and %q", c.args, code, stderr, c.code, c.want)
		}
	}
}
