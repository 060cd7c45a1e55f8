package control

import (
	"strings"
	"testing"
)

func TestConfigBusyPoll(t *testing.T) {
	base := "local_address: 10.0.0.2\n"
	for _, c := range []struct {
		yaml string
		want bool
		err  string
	}{
		{"", true, ""},
		{"busy_poll: true\n", true, ""},
		{"busy_poll: false\n", false, ""},
		{"busy_poll: off\n", false, ""},
		{"busy_poll: sometimes\n", false, `busy_poll: expected true or false, got "sometimes"`},
	} {
		cfg, probs := Parse([]byte(base+c.yaml+"services: []\n"), "test.yaml")
		if c.err != "" {
			if cfg != nil || len(probs) == 0 || !strings.Contains(probs[0].String(), c.err) {
				t.Errorf("%q: %v, want an error containing %q", c.yaml, probs, c.err)
			}
			continue
		}
		if cfg == nil {
			t.Fatalf("%q: %v", c.yaml, probs)
		}
		if cfg.BusyPoll != c.want {
			t.Errorf("%q: BusyPoll = %v, want %v", c.yaml, cfg.BusyPoll, c.want)
		}
	}
	a, _ := Parse([]byte(base+"busy_poll: true\n"), "a.yaml")
	b, _ := Parse([]byte(base+"busy_poll: false\n"), "b.yaml")
	if got, _ := restartKeys(a, b); len(got) != 1 || got[0] != "busy_poll" {
		t.Errorf("restartKeys = %v, want [busy_poll]", got)
	}
}
