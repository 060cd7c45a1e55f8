//go:build linux

package tools

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rail-lb/rail/internal/privtest"
)

func run(t *testing.T, env []string, name string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func must(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := run(t, nil, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// lab makes namespace rh-tools-PID-N holding a veth pair gen0/lb0 with 4
// rx and tx queues each, GRO on for lb0 (so that there is an offload to
// turn off), and deletes it when the test ends.
func lab(t *testing.T) string {
	t.Helper()
	ns := fmt.Sprintf("rh-tools-%d-%s", os.Getpid(), strings.ToLower(strings.ReplaceAll(t.Name(), "/", "-")))
	if len(ns) > 60 {
		ns = ns[:60]
	}
	exec.Command("ip", "netns", "del", ns).Run()
	must(t, "ip", "netns", "add", ns)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v %s", ns, err, out)
		}
	})
	must(t, "ip", "-n", ns, "link", "add", "gen0", "numrxqueues", "4", "numtxqueues", "4",
		"type", "veth", "peer", "name", "lb0", "numrxqueues", "4", "numtxqueues", "4")
	must(t, "ip", "-n", ns, "link", "set", "lb0", "up")
	must(t, "ip", "-n", ns, "link", "set", "gen0", "up")
	must(t, "ip", "netns", "exec", ns, "ethtool", "-K", "lb0", "gro", "on")
	return ns
}

// nicState is what setup-nic.sh may change on a veth, as ethtool and
// sysfs report it.
func nicState(t *testing.T, ns string) string {
	t.Helper()
	var b strings.Builder
	l := must(t, "ip", "netns", "exec", ns, "ethtool", "-l", "lb0")
	_, cur, _ := strings.Cut(l, "Current hardware settings:")
	b.WriteString(strings.Join(strings.Fields(cur), " "))
	k := must(t, "ip", "netns", "exec", ns, "ethtool", "-k", "lb0")
	for line := range strings.Lines(k) {
		for _, f := range []string{"generic-receive-offload:", "rx-vlan-offload:", "large-receive-offload:", "rx-gro-list:"} {
			if strings.HasPrefix(line, f) {
				b.WriteString("; " + strings.TrimSpace(line))
			}
		}
	}
	for _, f := range []string{"napi_defer_hard_irqs", "gro_flush_timeout"} {
		b.WriteString("; " + f + "=" + strings.TrimSpace(must(t, "ip", "netns", "exec", ns, "cat", "/sys/class/net/lb0/"+f)))
	}
	return b.String()
}

func contains(t *testing.T, what, out string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("%s: output lacks %q:\n%s", what, w, out)
		}
	}
}

func TestHelp(t *testing.T) {
	for _, s := range []string{"setup-nic.sh", "tune-host.sh"} {
		out, err := run(t, nil, "./"+s, "--help")
		if err != nil || !strings.Contains(out, "--dry-run") || !strings.Contains(out, "--undo") {
			t.Errorf("%s --help: %v\n%s", s, err, out)
		}
		if out, err := run(t, nil, "./"+s, "--bogus"); err == nil || !strings.Contains(out, "unknown") {
			t.Errorf("%s --bogus: %v\n%s", s, err, out)
		}
	}
	if out, err := run(t, nil, "./setup-nic.sh", "--dry-run", "lb0", "zero"); err == nil || !strings.Contains(out, "QUEUES: 'zero' is not a positive number") {
		t.Errorf("setup-nic.sh bad QUEUES: %v\n%s", err, out)
	}
}

func TestSetupNIC(t *testing.T) {
	privtest.Require(t, "ip", "ethtool")
	ns := lab(t)
	state := t.TempDir()
	env := []string{"RAIL_STATE_DIR=" + state}
	stateFile := filepath.Join(state, "setup-nic", "lb0.state")
	script, _ := filepath.Abs("setup-nic.sh")
	nic := func(args ...string) string {
		t.Helper()
		out, err := run(t, env, "ip", append([]string{"netns", "exec", ns, script}, args...)...)
		if err != nil {
			t.Fatalf("setup-nic.sh %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		t.Logf("setup-nic.sh %s\n%s", strings.Join(args, " "), out)
		return out
	}
	apply := []string{"--busy-poll", "--rings", "512", "--steer-gre", "0", "--cpus", "1,1", "lb0", "2"}

	before := nicState(t, ns)
	if !strings.Contains(before, "RX: 4 TX: 4") || !strings.Contains(before, "generic-receive-offload: on") {
		t.Fatalf("lab veth: %s", before)
	}

	out := nic(append([]string{"--dry-run"}, apply...)...)
	contains(t, "dry run", out, "+ ethtool -L lb0 rx 2 tx 2", "+ ethtool -K lb0 generic-receive-offload off",
		"+ echo 2 > /sys/class/net/lb0/napi_defer_hard_irqs", "summary: lb0: 5 to change")
	if got := nicState(t, ns); got != before {
		t.Errorf("--dry-run changed the veth:\n%s\nto\n%s", before, got)
	}
	if _, err := os.Stat(filepath.Join(state, "setup-nic")); !os.IsNotExist(err) {
		t.Errorf("--dry-run saved state: %v", err)
	}

	out = nic(apply...)
	contains(t, "apply", out,
		"channels: changed: rx 2 tx 2 (was rx 4 tx 4)",
		"offload gro: changed: off (was on)",
		"offload rxvlan: changed: off (was on)",
		"offload lro: ok: off",
		"rings: n/a",
		"rss: n/a",
		"ntuple: refused by the hardware/kernel: lb0 has no ntuple filters (off fixed)",
		"irq: n/a: lb0 has no interrupts of its own",
		"napi napi_defer_hard_irqs: changed: 2 (was 0)",
		"napi gro_flush_timeout: changed: 200000 (was 0)",
		"summary: lb0: 5 changed")
	applied := nicState(t, ns)
	want := "RX: 2 TX: 2 Other: n/a Combined: n/a; generic-receive-offload: off; large-receive-offload: off [fixed]; rx-vlan-offload: off; rx-gro-list: off; napi_defer_hard_irqs=2; gro_flush_timeout=200000"
	if applied != want {
		t.Errorf("after apply, ethtool says\n %s\nwant\n %s", applied, want)
	}

	out = nic(apply...)
	contains(t, "apply again", out, "summary: lb0: 0 changed, 9 already set")
	if got := nicState(t, ns); got != applied {
		t.Errorf("second apply changed the veth: %s", got)
	}
	saved, err := os.ReadFile(stateFile)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(saved), "\n"); n != 5 {
		t.Errorf("state file has %d lines, want 5 (originals only, once):\n%s", n, saved)
	}

	out = nic("--undo", "--dry-run", "lb0")
	contains(t, "undo --dry-run", out, "+ ethtool -L lb0 rx 4 tx 4", "summary: lb0: 5 restored")
	if got := nicState(t, ns); got != applied {
		t.Errorf("undo --dry-run changed the veth: %s", got)
	}

	out = nic("--undo", "lb0")
	contains(t, "undo", out, "channels: restored: rx 4 tx 4", "summary: lb0: 5 restored, 0 refused")
	if got := nicState(t, ns); got != before {
		t.Errorf("after undo\n %s\nwant the original\n %s", got, before)
	}
	if _, err := os.Stat(stateFile); !os.IsNotExist(err) {
		t.Errorf("state file left after undo: %v", err)
	}
	contains(t, "undo again", nic("--undo", "lb0"), "nothing to undo")

	// --strict makes the refused ntuple rule an error.
	if out, err := run(t, env, "ip", "netns", "exec", ns, script, "--strict", "--steer-gre", "0", "lb0", "4"); err == nil {
		t.Errorf("--strict with a refused rule: exit 0\n%s", out)
	}
	nic("--undo", "lb0")
	if got := nicState(t, ns); got != before {
		t.Errorf("after --strict run and undo: %s", got)
	}
}

// sysctls reads the settings tune-host.sh may change, in the current
// namespace or (with ns) another one, as "name = value" lines. It reads
// /proc/sys itself: no procps needed.
func sysctls(t *testing.T, ns string) string {
	t.Helper()
	names := []string{"net.ipv4.conf.all.rp_filter", "net.ipv4.conf.default.rp_filter", "net.ipv4.tcp_rmem",
		"net.ipv4.tcp_wmem", "net.ipv4.tcp_tw_reuse", "net.ipv4.tcp_sack", "net.core.rmem_max", "net.core.wmem_max"}
	var b strings.Builder
	for _, n := range names {
		path := "/proc/sys/" + strings.ReplaceAll(n, ".", "/")
		args := []string{"cat", path}
		if ns != "" {
			args = append([]string{"ip", "netns", "exec", ns}, args...)
		}
		v := must(t, args[0], args[1:]...)
		fmt.Fprintf(&b, "%s = %s\n", n, strings.Join(strings.Fields(v), " "))
	}
	return b.String()
}

func TestTuneHostDryRun(t *testing.T) {
	state := t.TempDir()
	before := sysctls(t, "")
	out, err := run(t, nil, "./tune-host.sh", "--dry-run", "--state-dir", state)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	t.Logf("tune-host.sh --dry-run\n%s", out)
	contains(t, "dry run", out, "# loose reverse-path filter", "net.ipv4.conf.all.rp_filter: ", "kernel.numa_balancing: ", "cpufreq", "summary: ")
	if strings.Contains(out, "saved in") {
		t.Error("--dry-run claims to have saved state")
	}
	if got := sysctls(t, ""); got != before {
		t.Errorf("--dry-run changed the host:\n%s\nto\n%s", before, got)
	}
	if entries, _ := os.ReadDir(state); len(entries) > 0 {
		t.Errorf("--dry-run wrote %v", entries)
	}
}

// TestTuneHostNamespace applies the per-namespace settings inside a
// namespace of its own: the host's are untouched.
func TestTuneHostNamespace(t *testing.T) {
	privtest.Require(t, "ip", "ethtool")
	ns := lab(t)
	state := t.TempDir()
	script, _ := filepath.Abs("tune-host.sh")
	th := func(args ...string) string {
		t.Helper()
		out, err := run(t, nil, "ip", append([]string{"netns", "exec", ns, script, "--netns-only", "--state-dir", state}, args...)...)
		if err != nil {
			t.Fatalf("tune-host.sh %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		t.Logf("tune-host.sh --netns-only %s\n%s", strings.Join(args, " "), out)
		return out
	}
	host := sysctls(t, "")
	before := sysctls(t, ns)

	out := th()
	contains(t, "apply", out, "net.ipv4.conf.all.rp_filter: changed: 2")
	for _, host := range []string{"net.core.rmem_max", "kernel.numa_balancing", "cpufreq"} {
		if strings.Contains(out, host) {
			t.Errorf("--netns-only touched %s:\n%s", host, out)
		}
	}
	applied := sysctls(t, ns)
	contains(t, "sysctl in the namespace", applied, "net.ipv4.conf.all.rp_filter = 2", "net.ipv4.tcp_tw_reuse = 1")
	contains(t, "apply again", th(), " 0 changed")
	if got := sysctls(t, ns); got != applied {
		t.Errorf("second apply changed:\n%s", got)
	}
	contains(t, "undo", th("--undo"), "net.ipv4.conf.all.rp_filter: restored: ")
	if got := sysctls(t, ns); got != before {
		t.Errorf("after undo\n%s\nwant\n%s", got, before)
	}
	if got := sysctls(t, ""); got != host {
		t.Errorf("the host's settings changed:\n%s\nto\n%s", host, got)
	}
}
