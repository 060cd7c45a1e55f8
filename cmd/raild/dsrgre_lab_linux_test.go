package main

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestDSRHealthViaGRE: a backend loses the VIP on its loopback — its nginx
// still answers on its own address, but clients' packets (GRE to it, inner
// destination the VIP) find nothing. A plain http check (to the backend's
// own address) keeps it up and requests through the VIP fail; the same
// check `via: gre` (to the VIP, through the tunnel, as clients) takes it
// down within fall × interval and no request fails after that.
func TestDSRHealthViaGRE(t *testing.T) {
	l := dsrLabUp(t)
	be1 := dsrPrefix + "be1"
	dropVIP := func() { sh(t, "ip", "-n", be1, "addr", "del", dsrVIP+"/32", "dev", "lo") }
	restoreVIP := func() { sh(t, "ip", "-n", be1, "addr", "add", dsrVIP+"/32", "dev", "lo") }
	settle := time.Duration(dsrFall+2) * dsrInterval

	// The plain check cannot see it.
	dropVIP()
	time.Sleep(settle)
	plainUp := backendView(t, l.sock, dsrAddr(1)).Healthy
	_, plainFailed := tally(l.viaVIP(t, 60))
	t.Logf("plain http check, VIP gone from be1: be1 healthy=%v, %d of 60 requests through the VIP failed", plainUp, plainFailed)
	if !plainUp || plainFailed == 0 {
		t.Errorf("the scenario did not break clients under a plain check (healthy %v, %d failed): it proves nothing", plainUp, plainFailed)
	}
	restoreVIP()

	// The same check through the tunnel.
	if code := l.d.stop(t, 15); code != 0 { // SIGTERM
		t.Fatalf("raild exited %d", code)
	}
	cfg, err := os.ReadFile(l.cfg)
	if err != nil {
		t.Fatal(err)
	}
	gre := strings.Replace(string(cfg), "rise: ", "via: gre, rise: ", 1)
	if gre == string(cfg) {
		t.Fatal("could not add via: gre to the configuration")
	}
	os.WriteFile(l.cfg, []byte(gre), 0o644)
	l.start(t)
	// The tunnel opens with the first check via gre, which may come after
	// start has seen every backend healthy (a backend starts healthy).
	waitFor(t, 5*time.Second, "the tunnel's fwmark rule", func() bool {
		return strings.Contains(sh(t, "ip", "-n", lbNS, "rule", "show"), "fwmark 0x52430000/0xffff0000")
	})
	dropVIP()
	defer restoreVIP()
	down := waitFor(t, 5*time.Second, "be1 down via gre", func() bool { return !backendView(t, l.sock, dsrAddr(1)).Healthy })
	if max := time.Duration(dsrFall+1)*dsrInterval + 300*time.Millisecond; down > max {
		t.Errorf("be1 down after %v, want within %v (fall %d × interval %v)", down, max, dsrFall, dsrInterval)
	}
	per, failed := tally(l.viaVIP(t, 100))
	t.Logf("via gre: be1 down %v after losing the VIP (fall %d × %v); then 100 requests: %v, %d failed",
		down.Round(time.Millisecond), dsrFall, dsrInterval, per, failed)
	if failed != 0 || per["be1"] != 0 {
		t.Errorf("after be1 went down: %d failed, %d answered by be1", failed, per["be1"])
	}
	if code := l.d.stop(t, 15); code != 0 {
		t.Errorf("raild exited %d", code)
	}
	if out := sh(t, "ip", "-n", lbNS, "link", "show"); strings.Contains(out, "rail-probe") {
		t.Errorf("the tunnel's link is left after raild stopped:\n%s", out)
	}
}
