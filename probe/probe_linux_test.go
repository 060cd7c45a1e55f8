package probe

import (
	"fmt"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/rail-lb/rail/decap"
	"github.com/rail-lb/rail/internal/netnstest"
	"github.com/rail-lb/rail/internal/privtest"
)

const (
	nodeNS, beNS = "pt-node", "pt-be"
	nodeIf, beIf = "ptn0", "ptb0"
)

var (
	local   = netip.MustParseAddr("10.0.0.2")
	backend = netip.MustParseAddr("10.0.0.11")
	vip     = netip.MustParseAddr("192.0.2.10")
)

func sh(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// in runs fn on a thread inside namespace name.
func in(t *testing.T, name string, fn func()) {
	t.Helper()
	if err := netnstest.Do(name, fn); err != nil {
		t.Error(err)
	}
}

// TestTunnel: a probe to the VIP, marked, reaches a backend that
// decapsulates (raild decap) and has the VIP on its loopback — in GRE, as
// client traffic does — and the backend's answer from the VIP comes back
// to the probe's socket. Take the VIP off the backend's loopback and the
// same probe fails, while a plain connection to the backend's own address
// still succeeds: only the tunnelled check sees that clients would fail.
func TestTunnel(t *testing.T) {
	privtest.Require(t, "ip")
	down := func() {
		exec.Command("ip", "netns", "del", nodeNS).Run()
		exec.Command("ip", "netns", "del", beNS).Run()
	}
	down()
	t.Cleanup(down)
	sh(t, "ip", "netns", "add", nodeNS)
	sh(t, "ip", "netns", "add", beNS)
	sh(t, "ip", "link", "add", nodeIf, "netns", nodeNS, "type", "veth", "peer", "name", beIf, "netns", beNS)
	for _, c := range [][]string{
		{"-n", nodeNS, "link", "set", "lo", "up"}, {"-n", beNS, "link", "set", "lo", "up"},
		{"-n", nodeNS, "link", "set", nodeIf, "up"}, {"-n", beNS, "link", "set", beIf, "up"},
		{"-n", nodeNS, "addr", "add", local.String() + "/24", "dev", nodeIf},
		{"-n", beNS, "addr", "add", backend.String() + "/24", "dev", beIf},
		{"-n", beNS, "addr", "add", vip.String() + "/32", "dev", "lo"},
	} {
		sh(t, append([]string{"ip"}, c...)...)
	}
	sh(t, "ip", "netns", "exec", beNS, "sysctl", "-qw", "net.ipv4.conf.all.rp_filter=0", "net.ipv4.conf."+beIf+".rp_filter=0")

	var ln net.Listener
	var prog *decap.Program
	in(t, beNS, func() {
		var err error
		if prog, err = decap.Load(); err != nil {
			t.Error(err)
			return
		}
		if err = prog.SetAddrs([]netip.Addr{backend}); err != nil {
			t.Error(err)
			return
		}
		ifi, _ := net.InterfaceByName(beIf)
		if _, err = prog.Attach(ifi.Index, decap.ModeAuto); err != nil {
			t.Error(err)
			return
		}
		if ln, err = net.Listen("tcp", "0.0.0.0:8080"); err != nil {
			t.Error(err)
		}
	})
	if t.Failed() {
		return
	}
	defer prog.Close()
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fmt.Fprintf(c, "hello from %s\n", c.LocalAddr())
			c.Close()
		}
	}()

	var tun *Tunnel
	in(t, nodeNS, func() {
		var err error
		if tun, err = Open(nodeIf, local); err != nil {
			t.Error(err)
		}
	})
	if t.Failed() {
		return
	}
	defer func() { in(t, nodeNS, func() { tun.Close() }) }()
	mark, err := tun.Mark(backend)
	if err != nil {
		t.Fatal(err)
	}
	// dial connects from inside the node's namespace, marked or not.
	dial := func(to netip.Addr, mark uint32) (string, error) {
		var got string
		var derr error
		in(t, nodeNS, func() {
			d := net.Dialer{Timeout: time.Second}
			if mark != 0 {
				d.Control = Control(mark)
			}
			c, err := d.Dial("tcp", netip.AddrPortFrom(to, 8080).String())
			if err != nil {
				derr = err
				return
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(time.Second))
			b := make([]byte, 100)
			n, err := c.Read(b)
			got, derr = string(b[:n]), err
		})
		return got, derr
	}
	got, err := dial(vip, mark)
	if err != nil || !strings.Contains(got, vip.String()) {
		tc, _ := tun.Counts()
		dc, _ := prog.Counts()
		t.Fatalf("probe through the tunnel: %q, %v; want the backend answering on the VIP (tunnel %+v, decap %+v)", got, err, tc, dc)
	}
	t.Logf("through the tunnel: %q", strings.TrimSpace(got))
	if c, _ := prog.Counts(); c.Decapsulated == 0 {
		t.Errorf("the backend decapsulated nothing: %+v", c)
	}

	// The backend loses the VIP on its loopback: clients would fail.
	sh(t, "ip", "-n", beNS, "addr", "del", vip.String()+"/32", "dev", "lo")
	if got, err := dial(vip, mark); err == nil {
		t.Errorf("probe through the tunnel succeeded without the VIP on the backend: %q", got)
	}
	if got, err := dial(backend, 0); err != nil {
		t.Errorf("a plain check to the backend's address: %v", err)
	} else {
		t.Logf("a plain check still passes (%q): it cannot see the problem", strings.TrimSpace(got))
	}
	c, err := tun.Counts()
	if err != nil || c.Sent == 0 {
		t.Errorf("tunnel counts %+v, %v: want probes sent", c, err)
	}
	t.Logf("tunnel counts: %+v", c)
}
