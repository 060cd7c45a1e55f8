package netnstest

import (
	"net"
	"os/exec"
	"testing"

	"github.com/rail-lb/rail/internal/privtest"
)

// TestDo: code run by Do sees the namespace's links, not the test's.
func TestDo(t *testing.T) {
	privtest.Require(t, "ip")
	const ns = "nt-test"
	exec.Command("ip", "netns", "del", ns).Run()
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	defer exec.Command("ip", "netns", "del", ns).Run()
	var n int
	if err := Do(ns, func() {
		ifs, _ := net.Interfaces()
		n = len(ifs)
	}); err != nil {
		t.Fatal(err)
	}
	if n != 1 { // a new namespace has lo only
		t.Errorf("%d interfaces inside the namespace, want 1 (lo)", n)
	}
	if err := Do("nt-no-such-namespace", func() {}); err == nil {
		t.Error("Do in a namespace that does not exist succeeded")
	}
}
