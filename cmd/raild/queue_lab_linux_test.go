package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rail-lb/rail/internal/privtest"
)

// TestLabQueueOpenFailure makes the second queue of a two-queue plan fail
// after its socket is open (the steering program's socket map has 1024 slots;
// queue 1025 exists on this veth but cannot be registered). raild must
// report it in one line, exit 1, close the first queue's socket and leave
// the interface to the kernel — an error path that once indexed past the end
// of the worker list and panicked.
func TestLabQueueOpenFailure(t *testing.T) {
	privtest.Require(t, "ip")
	const ns, ifc, peer = "rq-lb", "rqlb0", "rqgen0"
	down := func() { exec.Command("ip", "netns", "del", ns).Run() }
	down()
	t.Cleanup(down)
	sh(t, "ip", "netns", "add", ns)
	sh(t, "ip", "-n", ns, "link", "add", ifc, "numrxqueues", "1030", "numtxqueues", "1030",
		"type", "veth", "peer", "name", peer, "numrxqueues", "1030", "numtxqueues", "1030")
	sh(t, "ip", "-n", ns, "link", "set", "lo", "up")
	sh(t, "ip", "-n", ns, "link", "set", ifc, "up")
	sh(t, "ip", "-n", ns, "link", "set", peer, "up")
	sh(t, "ip", "-n", ns, "addr", "add", "10.0.0.2/24", "dev", ifc)

	dir := t.TempDir()
	cfg := filepath.Join(dir, "raild.yaml")
	os.WriteFile(cfg, []byte(`interface: `+ifc+`
queues: [0, 1025]
cpus: [0, 1]
local_address: 10.0.0.2
metrics_address: 127.0.0.1:9795
api:
  socket: `+filepath.Join(dir, "api.sock")+`
conntrack:
  entries_per_core: 4096
services:
  - name: web
    vip: 192.0.2.10
    port: 80
    protocol: tcp
    backends:
      - address: 10.1.0.11
`), 0o644)
	cmd := exec.Command("ip", "netns", "exec", ns, raildBinary(t), "run", "--config", cfg)
	done := make(chan struct{})
	var out []byte
	var err error
	go func() { out, err = cmd.CombinedOutput(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-done
		t.Fatalf("raild did not exit after a queue failed to open:\n%s", out)
	}
	t.Logf("raild:\n%s", out)
	code := cmd.ProcessState.ExitCode()
	log := string(out)
	if strings.Contains(log, "panic") || strings.Contains(log, "goroutine ") {
		t.Fatalf("raild panicked on the error path:\n%s", log)
	}
	if code != 1 {
		t.Errorf("exit code %d, want 1 (err %v):\n%s", code, err, log)
	}
	if !strings.Contains(log, "queue 1025: rings: Register") {
		t.Errorf("the error does not name queue 1025 and the Register failure:\n%s", log)
	}
	if !strings.Contains(log, `msg="queue open" queue=0`) || !strings.Contains(log, `msg="queue closed" queue=0`) {
		t.Errorf("queue 0 was not opened and then closed:\n%s", log)
	}
	if link := sh(t, "ip", "-n", ns, "-d", "link", "show", "dev", ifc); strings.Contains(link, "prog/xdp") || strings.Contains(link, "xdpgeneric") {
		t.Errorf("an XDP program is left on %s:\n%s", ifc, link)
	}
}
