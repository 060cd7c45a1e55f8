package pipeline

import (
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/rail-lb/rail/internal/privtest"
	"github.com/rail-lb/rail/rings"
)

// inOwnNetns re-runs the calling test inside a fresh network namespace and
// reports its result; it returns true in the child, where the test body
// should run.
func inOwnNetns(t *testing.T) bool {
	t.Helper()
	if os.Getenv("RAIL_TEST_IN_NETNS") == "1" {
		return true
	}
	privtest.Require(t)
	ns := "rpt-" + strconv.Itoa(os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	defer exec.Command("ip", "netns", "del", ns).Run()
	cmd := exec.Command("ip", "netns", "exec", ns, os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "RAIL_TEST_IN_NETNS=1")
	out, err := cmd.CombinedOutput()
	t.Logf("in namespace %s:\n%s", ns, out)
	if err != nil {
		t.Fatalf("test in namespace failed: %v", err)
	}
	return false
}

func ipLink(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %v: %v %s", args, err, out)
	}
}

// TestLoopPollNoAllocs drives a real AF_XDP socket on a veth pair with the
// worker loop and checks that a batch — receive, process, transmit,
// recycle, flush — allocates nothing, and that every frame is accounted for.
func TestLoopPollNoAllocs(t *testing.T) {
	if !inOwnNetns(t) {
		return
	}
	ipLink(t, "link", "add", "rpa", "address", "02:00:00:00:00:02", "type", "veth", "peer", "name", "rpb", "address", "02:00:00:00:00:01")
	ipLink(t, "link", "set", "rpa", "up")
	ipLink(t, "link", "set", "rpb", "up")
	a, err := net.InterfaceByName("rpa")
	if err != nil {
		t.Fatal(err)
	}
	b, err := net.InterfaceByName("rpb")
	if err != nil {
		t.Fatal(err)
	}
	c := testConfig()
	steer, err := rings.LoadSteer()
	if err != nil {
		t.Fatal(err)
	}
	defer steer.Close()
	var keys []rings.ServiceKey
	for _, s := range c.Services {
		if s.VIP.Is4() { // this test sends IPv4 only
			keys = append(keys, rings.ServiceKey{VIP: s.VIP, Port: s.Port, Proto: s.Proto})
		}
	}
	if err := steer.SetLocals([]netip.Addr{c.Local}); err != nil {
		t.Fatal(err)
	}
	if err := steer.SetServices(keys); err != nil {
		t.Fatal(err)
	}
	opts := rings.DefaultOpts()
	opts.FrameCount = 1024
	sock, err := rings.Open(a.Index, 0, opts)
	if err != nil {
		t.Fatal(err)
	}
	defer sock.Close()
	if err := steer.Register(0, sock); err != nil {
		t.Fatal(err)
	}
	if _, err := steer.Attach(a.Index, rings.XDPAuto); err != nil {
		t.Fatal(err)
	}

	// An AF_PACKET socket on the peer sends GRE frames into rpa.
	ps, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ps)
	if err := unix.Bind(ps, &unix.SockaddrLinklayer{Protocol: 0x0300, Ifindex: b.Index}); err != nil {
		t.Fatal(err)
	}
	frame := greFrame(t, defaultInner(), nil)
	l := newTestLoop(t, sock)
	hub := NewCapture()
	l.Tap = hub.NewTap(0, 0)

	const perBatch = 16
	sent := 0
	batch := func() {
		for range perBatch {
			if _, err := unix.Write(ps, frame); err != nil {
				t.Fatal(err)
			}
			sent++
		}
		got := 0
		for spins := 0; got < perBatch && spins < 1_000_000; spins++ {
			got += l.Poll()
		}
		if got != perBatch {
			t.Fatalf("received %d of %d frames", got, perBatch)
		}
	}
	allocs := testing.AllocsPerRun(200, batch)
	if allocs != 0 {
		t.Errorf("a batch of %d frames allocates %v times", perBatch, allocs)
	}
	// The same with a capture running that nobody reads: its ring fills,
	// then drops; still nothing allocated, every frame forwarded.
	cs, err := hub.Start(CaptureFilter{Service: "web"})
	if err != nil {
		t.Fatal(err)
	}
	if allocs := testing.AllocsPerRun(200, batch); allocs != 0 {
		t.Errorf("capturing: a batch of %d frames allocates %v times", perBatch, allocs)
	}
	if cs.Dropped() == 0 || l.Tap.Captured() != CaptureSlots {
		t.Errorf("capture: %d copied, %d dropped; want %d copied and some dropped", l.Tap.Captured(), cs.Dropped(), CaptureSlots)
	}
	cs.Stop()
	// Let completions come back, then every frame must be free or on the fill ring.
	for range 1000 {
		l.Poll()
	}
	st := l.W.Stats()
	if tx := st.Reasons[ReasonNone].Load(); tx != uint64(sent) {
		t.Errorf("forwarded %d of %d frames (%v)", tx, sent, st.Packets())
	}
	fc := sock.Frames()
	if fc.Sum() != opts.FrameCount || fc.Held != 0 || fc.Rx != 0 {
		t.Errorf("frames at rest: %+v (sum %d, want %d)", fc, fc.Sum(), opts.FrameCount)
	}
	t.Logf("sent %d frames; frames at rest %+v", sent, fc)
}
