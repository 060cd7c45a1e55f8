package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rail-lb/rail/internal/privtest"
)

// TestLabDecapAttach runs `raild decap` as an operator would, in a
// namespace of its own (rd-dc) with a veth: with --mode tc the filter is
// there while it runs and gone after SIGTERM; with --pin (tcx, then tc) the
// program stays after the command exits, its counters readable with
// --stats, until --detach --pin.
func TestLabDecapAttach(t *testing.T) {
	privtest.Require(t, "ip", "tc", "mount")
	const ns = "rd-dc"
	exec.Command("ip", "netns", "del", ns).Run()
	sh(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	sh(t, "ip", "-n", ns, "link", "add", "dc0", "type", "veth", "peer", "name", "dc1")
	sh(t, "ip", "-n", ns, "addr", "add", "10.1.0.11/24", "dev", "dc0")
	sh(t, "ip", "-n", ns, "link", "set", "dc0", "up")
	bin := raildBinary(t)

	// tc: attached while running, removed on SIGTERM.
	log := &syncBuffer{}
	cmd := exec.Command("ip", "netns", "exec", ns, bin, "decap", "--interface", "dc0", "--mode", "tc")
	cmd.Stdout, cmd.Stderr = log, log
	startCmd(t, cmd)
	waitFor(t, 5*time.Second, "decap attached", func() bool { return strings.Contains(log.String(), "msg=attached") })
	if !strings.Contains(log.String(), "addresses=[10.1.0.11]") || !strings.Contains(log.String(), "mode=tc") {
		t.Errorf("log: %s", log)
	}
	if out := sh(t, "ip", "netns", "exec", ns, "tc", "filter", "show", "dev", "dc0", "ingress"); !strings.Contains(out, "rail_decap") {
		t.Errorf("no rail_decap filter while running:\n%s", out)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("raild decap: %v\n%s", err, log)
	}
	if out := sh(t, "ip", "netns", "exec", ns, "tc", "filter", "show", "dev", "dc0", "ingress"); strings.Contains(out, "rail_decap") {
		t.Errorf("rail_decap filter left after SIGTERM:\n%s", out)
	}
	if !strings.Contains(log.String(), "msg=detached") || !strings.Contains(log.String(), "decapsulated=0") {
		t.Errorf("log: %s", log)
	}

	// tcx + --pin: stays after exit, --detach --pin removes it.
	dir := filepath.Join(t.TempDir(), "bpffs")
	os.Mkdir(dir, 0o700)
	sh(t, "mount", "-t", "bpf", "rail-test", dir)
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	pin := filepath.Join(dir, "decap")
	sh(t, "ip", "netns", "exec", ns, bin, "decap", "--interface", "dc0", "--mode", "tcx", "--address", "10.1.0.11,10.1.0.12", "--pin", pin)
	// The pinned link is the attachment (tools/dsr-lab.sh relies on it:
	// its backends decapsulate through pinned links).
	if _, err := os.Stat(pin); err != nil {
		t.Fatalf("no pin after --pin exited: %v", err)
	}
	// The counters are pinned next to it, for --stats --pin.
	if out := sh(t, "ip", "netns", "exec", ns, bin, "decap", "--interface", "dc0", "--stats", "--pin", pin); !strings.Contains(out, "handed_on ") || !strings.Contains(out, "delivered ") {
		t.Errorf("--stats --pin:\n%s", out)
	}
	sh(t, "ip", "netns", "exec", ns, bin, "decap", "--interface", "dc0", "--detach", "--pin", pin)
	for _, p := range []string{pin, pin + "_counts"} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("pin %s still there after --detach: %v", p, err)
		}
	}

	// tc + --pin: the program and the counters are pinned, the filter
	// stays; --detach --pin removes all three.
	sh(t, "ip", "netns", "exec", ns, bin, "decap", "--interface", "dc0", "--mode", "tc", "--pin", pin)
	if out := sh(t, "ip", "netns", "exec", ns, "tc", "filter", "show", "dev", "dc0", "ingress"); !strings.Contains(out, "rail_decap") {
		t.Errorf("no rail_decap filter after --mode tc --pin:\n%s", out)
	}
	sh(t, "ip", "netns", "exec", ns, bin, "decap", "--interface", "dc0", "--stats")
	sh(t, "ip", "netns", "exec", ns, bin, "decap", "--stats", "--pin", pin) // pinned counters: no --interface needed
	sh(t, "ip", "netns", "exec", ns, bin, "decap", "--interface", "dc0", "--detach", "--pin", pin)
	if out := sh(t, "ip", "netns", "exec", ns, "tc", "filter", "show", "dev", "dc0", "ingress"); strings.Contains(out, "rail_decap") {
		t.Errorf("rail_decap filter left after --detach --pin:\n%s", out)
	}
	for _, p := range []string{pin, pin + "_counts"} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("pin %s still there after --detach: %v", p, err)
		}
	}
	// Nothing attached: --stats says so.
	if out, err := exec.Command("ip", "netns", "exec", ns, bin, "decap", "--interface", "dc0", "--stats").CombinedOutput(); err == nil || !strings.Contains(string(out), "no decap program") {
		t.Errorf("--stats with nothing attached: %v\n%s", err, out)
	}
}
