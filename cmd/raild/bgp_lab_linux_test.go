package main

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/rail-lb/rail/control"
	"github.com/rail-lb/rail/internal/privtest"
)

// The BGP lab: the router namespace (FRR's bgpd, or a server of the test)
// and the node namespace (raild, XDP on its veth) as in lab_linux_test.go,
// and a backend namespace behind the node with the backend's health port.
//
//	rb-router 10.0.0.1 rb-rt0 ── rb-nd0 10.0.0.2 rb-node rb-nd1 10.1.1.1 ── rb-be0 10.1.1.2, 10.1.0.11 rb-be
const (
	bgpBeNS      = "rb-be"
	bgpBeIf      = "rb-be0" // in rb-be
	bgpNodeBe    = "rb-nd1" // in rb-node
	bgpBackend   = "10.1.0.11"
	bgpPrefix    = "192.0.2.10/32"
	bgpRouterASN = 65000
	bgpNodeASN   = 65010
)

// bgpLabUp builds the lab with names of its own (rb-…), torn down at the
// end of the test whatever happens.
func bgpLabUp(t *testing.T) {
	useNames(t, "rb-router", "rb-node", "rb-rt0", "rb-nd0")
	backendLabUp(t, bgpBeNS, bgpNodeBe, bgpBeIf, []string{bgpBackend})
}

// healthPort is the backend's health port: a TCP listener of the test in
// the backend namespace that accepts and closes. Stop closes it (the
// node's checks then get a reset).
type healthPort struct {
	mu sync.Mutex
	ln net.Listener
}

func startHealthPort(t *testing.T) *healthPort {
	h := &healthPort{}
	h.start(t)
	t.Cleanup(h.stop)
	return h
}

func (h *healthPort) start(t *testing.T) {
	t.Helper()
	var ln net.Listener
	inNetns(t, bgpBeNS, func() {
		var err error
		if ln, err = net.Listen("tcp", fmt.Sprintf("%s:%d", bgpBackend, hcPort)); err != nil {
			t.Error(err)
		}
	})
	if ln == nil {
		t.FailNow()
	}
	h.mu.Lock()
	h.ln = ln
	h.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

func (h *healthPort) stop() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.ln != nil {
		h.ln.Close()
		h.ln = nil
	}
}

// bgpConfig writes raild's configuration: the lab's node, one service
// whose only backend is checked over TCP, and a bgp block with peers.
func bgpConfig(t *testing.T, drainTime string, peers ...string) (file, sock string) {
	dir := t.TempDir()
	sock = filepath.Join(dir, "raild.sock")
	var b strings.Builder
	fmt.Fprintf(&b, "interface: %s\nlocal_address: %s\nmetrics_address: %s\nconntrack:\n  entries_per_core: 65536\napi:\n  socket: %s\n", lbIf, lbAddr, labMetrics, sock)
	fmt.Fprintf(&b, "bgp:\n  asn: %d\n  router_id: %s\n  drain_time: %s\n  communities: [\"65010:100\"]\n  peers:\n", bgpNodeASN, lbAddr, drainTime)
	for _, p := range peers {
		fmt.Fprintf(&b, "    - %s\n", p)
	}
	fmt.Fprintf(&b, `services:
  - name: web
    vip: %s
    port: 80
    protocol: tcp
    when_down: withdraw
    health: {type: tcp, port: %d, interval: 100ms, timeout: 50ms, rise: 1, fall: 2}
    backends: [{address: %s}]
`, labVIP, hcPort, bgpBackend)
	file = filepath.Join(dir, "rail.yaml")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return file, sock
}

func bgpView(t *testing.T, sock string) control.BGPView {
	t.Helper()
	var v control.BGPView
	apiGet(t, sock, "/v1/bgp", &v)
	return v
}

func peerView(t *testing.T, sock, addr string) control.PeerView {
	t.Helper()
	for _, p := range bgpView(t, sock).Peers {
		if p.Address.String() == addr {
			return p
		}
	}
	t.Fatalf("/v1/bgp has no peer %s", addr)
	return control.PeerView{}
}

// frr is FRR's bgpd in the router namespace, with its configuration, pid
// file and vty socket in a directory of the test; no zebra (-Z), nothing
// installed in the kernel (-n), no vty on TCP (-P 0).
type frr struct {
	cmd *exec.Cmd
	dir string
	log *syncBuffer
}

// startFRR starts bgpd as AS 65000 (router id 10.0.0.1) with raild,
// 10.0.0.2, as its neighbour in AS nodeASN.
func startFRR(t *testing.T, nodeASN int, args ...string) *frr {
	t.Helper()
	f := &frr{dir: t.TempDir(), log: &syncBuffer{}}
	conf := fmt.Sprintf(`frr defaults traditional
hostname rb-router
log stdout informational
!
router bgp %d
 bgp router-id %s
 no bgp ebgp-requires-policy
 neighbor %s remote-as %d
 neighbor %s timers connect 1
!
`, bgpRouterASN, genAddr, lbAddr, nodeASN, lbAddr)
	cf := filepath.Join(f.dir, "bgpd.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	f.cmd = exec.Command("ip", "netns", "exec", genNS, "/usr/lib/frr/bgpd",
		"-f", cf, "-i", filepath.Join(f.dir, "bgpd.pid"), "-z", filepath.Join(f.dir, "zserv.api"),
		"--vty_socket", f.dir, "-Z", "-n", "-S", "-A", "127.0.0.1", "-P", "0")
	f.cmd.Args = append(f.cmd.Args, args...)
	f.cmd.Stdout, f.cmd.Stderr = f.log, f.log
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if f.cmd.ProcessState != nil {
			return
		}
		f.cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { f.cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			f.cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("bgpd:\n%s", f.log)
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := f.vtysh("show bgp summary json"); err == nil {
			return f
		}
		if time.Now().After(deadline) || f.cmd.Process.Signal(syscall.Signal(0)) != nil {
			t.Fatalf("bgpd did not start:\n%s", f.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (f *frr) vtysh(cmd string) ([]byte, error) {
	out, err := exec.Command("vtysh", "--vty_socket", f.dir, "-c", cmd).CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("vtysh -c %q: %v: %s", cmd, err, out)
	}
	return out, nil
}

func (f *frr) json(t *testing.T, cmd string, v any) {
	t.Helper()
	out, err := f.vtysh(cmd)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("vtysh -c %q: %v:\n%s", cmd, err, out)
	}
}

// peerState is FRR's state of its session with raild.
func (f *frr) peerState(t *testing.T) string {
	var v struct {
		IPv4Unicast struct {
			Peers map[string]struct {
				State string `json:"state"`
			} `json:"peers"`
		} `json:"ipv4Unicast"`
	}
	f.json(t, "show bgp summary json", &v)
	return v.IPv4Unicast.Peers[lbAddr.String()].State
}

// frrRoute is one path of `show bgp ipv4 unicast PREFIX json`.
type frrRoute struct {
	ASPath    string
	Community string
	NextHops  []string
	Valid     bool
}

// route returns FRR's paths to the VIP (none when it has no route).
func (f *frr) route(t *testing.T) []frrRoute {
	var v struct {
		Prefix string `json:"prefix"`
		Paths  []struct {
			ASPath struct {
				String string `json:"string"`
			} `json:"aspath"`
			Community struct {
				String string `json:"string"`
			} `json:"community"`
			NextHops []struct {
				IP string `json:"ip"`
			} `json:"nexthops"`
			Valid bool `json:"valid"`
		} `json:"paths"`
	}
	f.json(t, "show bgp ipv4 unicast "+bgpPrefix+" json", &v)
	var out []frrRoute
	for _, p := range v.Paths {
		r := frrRoute{ASPath: p.ASPath.String, Community: p.Community.String, Valid: p.Valid}
		for _, nh := range p.NextHops {
			r.NextHops = append(r.NextHops, nh.IP)
		}
		out = append(out, r)
	}
	return out
}

// gracefulShutdown says whether FRR's community string has 65535:0, which
// it prints by name.
func gracefulShutdown(community string) bool {
	for _, c := range strings.Fields(community) {
		switch c {
		case "65535:0", "graceful-shutdown", "gracefulShutdown":
			return true
		}
	}
	return false
}

// TestBGPInteropFRR: raild's speaker against FRR's bgpd. The session comes
// up, FRR learns the VIP with raild's next hop, AS path and community;
// the backend's failure withdraws it and its return announces it again;
// SIGTERM re-announces it with GRACEFUL_SHUTDOWN, then withdraws it, and
// raild exits 0 with its interface back to the kernel.
func TestBGPInteropFRR(t *testing.T) {
	privtest.Require(t, "ip", "vtysh", "/usr/lib/frr/bgpd")
	bgpLabUp(t)
	hp := startHealthPort(t)
	router := startFRR(t, bgpNodeASN)
	file, sock := bgpConfig(t, "2s", fmt.Sprintf("{address: %s, asn: %d, hold_time: 9s}", genAddr, bgpRouterASN))
	raildBinary(t) // built before the clock starts
	started := time.Now()
	d := startRaild(t, file)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("raild:\n%s", d.log)
		}
	})
	if !xdpAttached(t) {
		t.Fatalf("no XDP program on %s after start", lbIf)
	}

	waitFor(t, 10*time.Second, "session established (raild and FRR)", func() bool {
		return peerView(t, sock, genAddr.String()).State == "established" && router.peerState(t) == "Established"
	})
	up := time.Since(started)
	waitFor(t, 5*time.Second, "FRR learns "+bgpPrefix, func() bool { return len(router.route(t)) > 0 })
	announced := time.Since(started)
	r := router.route(t)
	if len(r) != 1 {
		t.Fatalf("FRR has %d paths to %s, want 1: %+v", len(r), bgpPrefix, r)
	}
	if len(r[0].NextHops) == 0 || r[0].NextHops[0] != lbAddr.String() || r[0].ASPath != fmt.Sprint(bgpNodeASN) ||
		!strings.Contains(" "+r[0].Community+" ", " 65010:100 ") || gracefulShutdown(r[0].Community) || !r[0].Valid {
		t.Errorf("FRR's route: %+v, want next hop %s, AS path %d, community 65010:100, valid", r[0], lbAddr, bgpNodeASN)
	}
	pv := peerView(t, sock, genAddr.String())
	if !pv.Up || pv.PrefixesOut != 1 || pv.LastError != "" {
		t.Errorf("raild's peer: %+v, want up with 1 prefix sent and no error", pv)
	}
	m := scrape(t)
	if m[`rail_bgp_session_up{peer="10.0.0.1"}`] != 1 || m[`rail_bgp_announced{prefix="192.0.2.10/32"}`] != 1 {
		t.Errorf("metrics: rail_bgp_session_up %v, rail_bgp_announced %v, want 1 and 1",
			m[`rail_bgp_session_up{peer="10.0.0.1"}`], m[`rail_bgp_announced{prefix="192.0.2.10/32"}`])
	}

	// The only backend fails: the VIP goes.
	hp.stop()
	failed := time.Now()
	waitFor(t, 5*time.Second, "FRR loses the route after the backend failed", func() bool { return len(router.route(t)) == 0 })
	withdrawn := time.Since(failed)
	if withdrawn > 2*time.Second { // fall 2 × interval 100 ms, then one UPDATE
		t.Errorf("withdrawn %v after the backend failed, want well within 2 s", withdrawn)
	}
	for _, a := range bgpView(t, sock).Announcements {
		if a.Announced {
			t.Errorf("raild still announces %+v", a)
		}
	}
	// It comes back: the VIP is announced again.
	hp.start(t)
	back := time.Now()
	waitFor(t, 5*time.Second, "FRR learns the route again", func() bool { return len(router.route(t)) > 0 })
	reannounced := time.Since(back)

	// SIGTERM: GRACEFUL_SHUTDOWN for drain_time, then the withdrawal.
	exited := make(chan error, 1)
	d.cmd.Process.Signal(syscall.SIGTERM)
	term := time.Now()
	go func() { exited <- d.cmd.Wait() }()
	var gshut, gone time.Duration
	for gone == 0 {
		if time.Since(term) > 8*time.Second {
			t.Fatalf("SIGTERM: route not withdrawn within 8 s (GRACEFUL_SHUTDOWN seen after %v)", gshut)
		}
		r := router.route(t)
		switch {
		case len(r) == 0:
			gone = time.Since(term)
		case gshut == 0 && gracefulShutdown(r[0].Community):
			gshut = time.Since(term)
			if !strings.Contains(r[0].Community, "65010:100") {
				t.Errorf("draining route lost its community 65010:100: %q", r[0].Community)
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	if gshut == 0 {
		t.Fatalf("the route went %v after SIGTERM without ever carrying GRACEFUL_SHUTDOWN", gone)
	}
	if gap := gone - gshut; gap < 1500*time.Millisecond || gap > 3500*time.Millisecond {
		t.Errorf("GRACEFUL_SHUTDOWN → withdrawal took %v, want about drain_time (2s)", gap)
	}
	select {
	case err := <-exited:
		if code := d.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("raild exited %d (%v) on SIGTERM", code, err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("raild did not exit within 10 s of SIGTERM")
	}
	stopped := time.Since(term)
	if xdpAttached(t) {
		t.Errorf("XDP program still attached to %s after raild exited", lbIf)
	}
	if !strings.Contains(d.log.String(), "detached") {
		t.Errorf("raild did not log the detach")
	}
	t.Logf("FRR interop: session up %v after start, route at FRR %v after start; backend failure → withdrawn at FRR %v; backend back → re-announced %v; "+
		"SIGTERM → GRACEFUL_SHUTDOWN at FRR %v, withdrawn %v (gap %v, drain_time 2s), raild exited %v after SIGTERM",
		up.Round(time.Millisecond), announced.Round(time.Millisecond), withdrawn.Round(time.Millisecond), reannounced.Round(time.Millisecond),
		gshut.Round(time.Millisecond), gone.Round(time.Millisecond), (gone - gshut).Round(time.Millisecond), stopped.Round(time.Millisecond))
}

// bgpLogLines returns the lines of raild's log, after the first skip
// bytes, that mention what.
func bgpLogLines(log string, skip int, what string) []string {
	var out []string
	for _, l := range strings.Split(log[min(skip, len(log)):], "\n") {
		if strings.Contains(l+" ", what) {
			out = append(out, l)
		}
	}
	return out
}

// checkForwards checks that raild forwards: GRE to the VIP comes back out,
// encapsulated to the backend.
func checkForwards(t *testing.T) {
	t.Helper()
	before := sum(scrape(t), "rail_tx_packets_total")
	sendTrafgen(t, greFrames(t, 10, 1))
	if got := sum(scrape(t), "rail_tx_packets_total") - before; got != 10 {
		t.Errorf("10 GRE frames to the VIP sent, %v forwarded", got)
	}
}

// garbagePeer is a "router" on port 179 that answers every connection with
// random bytes (never the all-ones marker) and records what raild does.
type garbagePeer struct {
	ln     net.Listener
	conns  atomic.Int32
	closed atomic.Int32 // connections raild closed after the garbage
	mu     sync.Mutex
	// replies are what raild sent on each connection.
	replies [][]byte
}

func startGarbagePeer(t *testing.T, addr string) *garbagePeer {
	g := &garbagePeer{}
	// The listening socket is made on a thread inside the router namespace.
	inNetns(t, genNS, func() {
		var err error
		if g.ln, err = net.Listen("tcp", addr+":179"); err != nil {
			t.Error(err)
		}
	})
	if g.ln == nil {
		t.FailNow()
	}
	t.Cleanup(func() { g.ln.Close() })
	go func() {
		for {
			c, err := g.ln.Accept()
			if err != nil {
				return
			}
			g.conns.Add(1)
			go g.serve(c)
		}
	}()
	return g
}

func (g *garbagePeer) serve(c net.Conn) {
	defer c.Close()
	junk := make([]byte, 64)
	rand.Read(junk)
	junk[0] = 0x42 // never the all-ones marker
	c.Write(junk)
	// raild sends its OPEN, then a NOTIFICATION, and must close.
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	got, err := io.ReadAll(c)
	var ne net.Error
	if !(errors.As(err, &ne) && ne.Timeout()) {
		g.closed.Add(1)
	}
	g.mu.Lock()
	g.replies = append(g.replies, got)
	g.mu.Unlock()
}

// bgpMessages splits a stream of BGP messages into their types (with the
// NOTIFICATION's error code as type*256+code); ok is false if b is not
// whole messages with all-ones markers.
func bgpMessages(b []byte) (types []int, ok bool) {
	for len(b) > 0 {
		if len(b) < 19 || !bytes.Equal(b[:16], bytes.Repeat([]byte{0xff}, 16)) {
			return types, false
		}
		n := int(binary.BigEndian.Uint16(b[16:]))
		if n < 19 || n > len(b) {
			return types, false
		}
		typ := int(b[18])
		if typ == 3 && n > 19 {
			typ = typ<<8 | int(b[19])
		}
		types = append(types, typ)
		b = b[n:]
	}
	return types, true
}

// Addresses of the bad peers in the router namespace: FRR (which knows raild
// under another AS) on 10.0.0.1, the garbage server on 10.0.0.3, nothing on
// 10.0.0.4.
const (
	garbageAddr = "10.0.0.3"
	silentAddr  = "10.0.0.4"
)

// TestBGPBadPeers: peers that refuse the session or talk garbage cost raild
// a few log lines and nothing else: it forwards, its API answers, its
// program stays attached. One raild has three bad peers: FRR configured
// with another AS for it (it answers every OPEN with a NOTIFICATION), a
// server of the test that writes random bytes, and an address where
// nothing listens. Bad bgp keys fail `raild check`.
func TestBGPBadPeers(t *testing.T) {
	t.Run("check", testBGPCheck)
	privtest.Require(t, "ip", "vtysh", "/usr/lib/frr/bgpd", "trafgen")
	bgpLabUp(t)
	for _, a := range []string{garbageAddr, silentAddr} {
		sh(t, "ip", "-n", genNS, "addr", "add", a+"/24", "dev", genIf)
	}
	startHealthPort(t)
	router := startFRR(t, 65099, "-l", genAddr.String()) // FRR on 10.0.0.1 only
	g := startGarbagePeer(t, garbageAddr)
	peer := func(a string) string { return fmt.Sprintf("{address: %s, asn: %d, hold_time: 9s}", a, bgpRouterASN) }
	file, sock := bgpConfig(t, "0", peer(genAddr.String()), peer(garbageAddr), peer(silentAddr))
	raildBinary(t)
	d := startRaild(t, file)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("raild:\n%s", d.log)
		}
	})
	skip := len(d.log.String())

	// At least 5 s, and until raild has reconnected to the garbage peer a
	// few times.
	start := time.Now()
	const minConns = 4
	waitFor(t, 20*time.Second, fmt.Sprintf("%d connections to the garbage peer", minConns), func() bool { return g.conns.Load() >= minConns })
	time.Sleep(5*time.Second - time.Since(start))
	window := time.Since(start).Round(100 * time.Millisecond)
	log := d.log.String()
	v := bgpView(t, sock)
	m := scrape(t)

	t.Run("still forwarding", func(t *testing.T) {
		if !v.Forwarding {
			t.Errorf("/v1/bgp: not forwarding")
		}
		if !xdpAttached(t) {
			t.Errorf("XDP program gone from %s", lbIf)
		}
		checkForwards(t)
		for _, p := range v.Peers {
			if p.Up || p.State == "established" {
				t.Errorf("peer %s is %s", p.Address, p.State)
			}
			if got, ok := m[`rail_bgp_session_up{peer="`+p.Address.String()+`"}`]; !ok || got != 0 {
				t.Errorf("rail_bgp_session_up{peer=%q} = %v (present %v), want 0", p.Address, got, ok)
			}
		}
		if len(v.Peers) != 3 {
			t.Errorf("/v1/bgp has %d peers, want 3", len(v.Peers))
		}
	})
	// Each peer: at most a few lines in the window, whatever it does.
	lines := func(t *testing.T, addr string, max int) {
		t.Helper()
		l := bgpLogLines(log, skip, "="+addr+" ")
		t.Logf("peer %s: %d log lines in %v:\n%s", addr, len(l), window, strings.Join(l, "\n"))
		if len(l) > max {
			t.Errorf("peer %s: %d log lines in %v, want at most %d", addr, len(l), window, max)
		}
	}

	t.Run("refused", func(t *testing.T) {
		pv := peerView(t, sock, genAddr.String())
		t.Logf("peer %s (FRR, wrong AS): state %s, last_error %q", genAddr, pv.State, pv.LastError)
		if pv.LastError == "" {
			t.Errorf("no last_error: %+v", pv)
		}
		if st := router.peerState(t); st == "Established" {
			t.Errorf("FRR says the session with the wrong AS is established")
		}
		lines(t, genAddr.String(), 3)
	})

	t.Run("garbage", func(t *testing.T) {
		conns, closed := g.conns.Load(), g.closed.Load()
		g.mu.Lock()
		replies := g.replies
		g.mu.Unlock()
		pv := peerView(t, sock, garbageAddr)
		t.Logf("garbage peer: %d connections in %v, %d closed by raild; /v1/bgp: state %s, last_error %q", conns, window, closed, pv.State, pv.LastError)
		if int(closed) < len(replies) || len(replies) == 0 {
			t.Errorf("raild closed %d of the %d sessions that got garbage", closed, len(replies))
		}
		for i, r := range replies {
			// raild's OPEN, then a NOTIFICATION: message header error (1).
			if types, ok := bgpMessages(r); !ok || len(types) < 2 || types[0] != 1 || types[len(types)-1] != 3<<8|1 {
				t.Errorf("connection %d: raild sent %x (%v), want OPEN then NOTIFICATION 1 (message header error)", i, r, types)
			}
		}
		if !strings.Contains(pv.LastError, "marker") {
			t.Errorf("last_error %q does not say what was wrong (the marker)", pv.LastError)
		}
		// The problem is the same every time: logged once.
		lines(t, garbageAddr, 1)
	})

	t.Run("nothing listening", func(t *testing.T) {
		pv := peerView(t, sock, silentAddr)
		t.Logf("peer %s (nothing listening): state %s, last_error %q", silentAddr, pv.State, pv.LastError)
		lines(t, silentAddr, 3)
	})

	t.Run("stop", func(t *testing.T) {
		var st control.Stats
		apiGet(t, sock, "/v1/stats", &st) // the API still answers
		if code := d.stop(t, syscall.SIGTERM); code != 0 {
			t.Errorf("raild exited %d on SIGTERM", code)
		}
		if xdpAttached(t) {
			t.Errorf("XDP program still attached after raild exited")
		}
	})
}

// checkLine is a message of raild check after the file's name.
var checkLine = regexp.MustCompile(`^:[0-9]+:[0-9]+: (warning: )?bgp[.a-z_\[\]0-9]*: `)

// testBGPCheck: `raild check` on bad bgp keys exits 1 with one
// line-numbered message per problem (no privileges needed).
func testBGPCheck(t *testing.T) {
	base := testConfig + "bgp:\n  asn: 65010\n  peers:\n    - {address: 10.0.0.1, asn: 65000, hold_time: 9s}\n"
	for _, c := range []struct{ name, from, to, want string }{
		{"unknown key", "  asn: 65010\n", "  asn: 65010\n  colour: blue\n", "bad.yaml:13:3: bgp.colour: unknown key"},
		{"bad asn", "  asn: 65010\n", "  asn: 0\n", "bad.yaml:12:8: bgp.asn: AS 0 is reserved"},
		{"asn too big", "  asn: 65010\n", "  asn: 4294967296\n", "bad.yaml:12:8: bgp.asn"},
		{"AS_TRANS peer", "asn: 65000,", "asn: 23456,", "bad.yaml:14:32: bgp.peers[0].asn: AS 23456 is AS_TRANS"},
		{"hold time too short", "hold_time: 9s", "hold_time: 2s", "bad.yaml:14:50: bgp.peers[0].hold_time: 2s: a hold time is 0 or 3s to 65535s"},
		{"hold time not whole", "hold_time: 9s", "hold_time: 1500ms", "bad.yaml:14:50: bgp.peers[0].hold_time: 1.5s: BGP hold times are whole seconds"},
		{"hold time no unit", "hold_time: 9s", "hold_time: 9", "bad.yaml:14:50: bgp.peers[0].hold_time: 9 has no unit"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if !strings.Contains(base, c.from) {
				t.Fatalf("%q not in the base config", c.from)
			}
			bad := writeFile(t, "bad.yaml", strings.Replace(base, c.from, c.to, 1))
			code, out, errs := runRaild("check", "--config", bad)
			if code != 1 || !strings.Contains(errs, c.want) {
				t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant exit 1 and %q", code, out, errs, c.want)
			}
			for _, l := range strings.Split(strings.TrimSpace(errs), "\n") {
				if !checkLine.MatchString(strings.TrimPrefix(l, bad)) {
					t.Errorf("not a line-numbered message: %q", l)
				}
			}
		})
	}
	good := writeFile(t, "good.yaml", base)
	if code, out, errs := runRaild("check", "--config", good); code != 0 {
		t.Errorf("check of the base config: exit %d %q %q", code, out, errs)
	}
}
