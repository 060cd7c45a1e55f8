package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rail-lb/rail/bench"
	"github.com/rail-lb/rail/control"
	"github.com/rail-lb/rail/internal/privtest"
)

// The control lab adds, to the lab of lab_linux_test.go, a backend
// namespace joined to the node by a second veth pair: the backends'
// addresses live there, with real listeners, so that health checks from
// the node reach them. Forwarded frames still go back to the generator.
const (
	beNS   = "rc-be"
	beIf   = "rcbe1" // in beNS
	lbBe   = "rcbe0" // in lbNS
	hcPort = 8080
)

// useLab gives the lab of this test names with the prefix rc-, so that it
// never meets the lab of lab_linux_test.go run by someone else at the same
// time.
func useLab(t *testing.T) { useNames(t, "rc-gen", "rc-lb", "rcgen0", "rclb0") }

// useNames gives the lab of lab_linux_test.go other names until the test
// ends, so that tests with labs of their own never meet.
func useNames(t *testing.T, gen, lb, genLink, lbLink string) {
	old := [4]string{genNS, lbNS, genIf, lbIf}
	genNS, lbNS, genIf, lbIf = gen, lb, genLink, lbLink
	t.Cleanup(func() { genNS, lbNS, genIf, lbIf = old[0], old[1], old[2], old[3] })
}

func controlLabUp(t *testing.T) {
	useLab(t)
	backendLabUp(t, beNS, lbBe, beIf, labBackends)
}

// backendLabUp adds to the lab (labUp, under the names in use) a backend
// namespace be joined to the node by a veth (lbEnd in the node, beEnd in
// be): the node at 10.1.1.1, be at 10.1.1.2 with the backend addresses
// addrs on it, routed from the node. Health checks from the node reach
// listeners on those addresses.
func backendLabUp(t *testing.T, be, lbEnd, beEnd string, addrs []string) {
	t.Helper()
	labUp(t)
	exec.Command("ip", "netns", "del", be).Run()
	t.Cleanup(func() { exec.Command("ip", "netns", "del", be).Run() })
	sh(t, "ip", "netns", "add", be)
	sh(t, "ip", "link", "add", lbEnd, "netns", lbNS, "type", "veth", "peer", "name", beEnd, "netns", be)
	sh(t, "ip", "-n", be, "link", "set", "lo", "up")
	sh(t, "ip", "-n", be, "link", "set", beEnd, "up")
	sh(t, "ip", "-n", lbNS, "link", "set", lbEnd, "up")
	sh(t, "ip", "-n", lbNS, "addr", "add", "10.1.1.1/24", "dev", lbEnd)
	sh(t, "ip", "-n", be, "addr", "add", "10.1.1.2/24", "dev", beEnd)
	for _, a := range addrs {
		sh(t, "ip", "-n", be, "addr", "add", a+"/32", "dev", beEnd)
	}
	sh(t, "ip", "-n", lbNS, "route", "add", "10.1.0.0/24", "via", "10.1.1.2", "dev", lbEnd)
}

// listener is a python3 HTTP server on one backend address.
type listener struct{ cmd *exec.Cmd }

func startListener(t *testing.T, addr string) *listener {
	t.Helper()
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "index.html"), []byte("ok\n"), 0o644)
	cmd := exec.Command("ip", "netns", "exec", beNS, "python3", "-m", "http.server", "--bind", addr, "--directory", dir, fmt.Sprint(hcPort))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	l := &listener{cmd}
	t.Cleanup(l.stop)
	deadline := time.Now().Add(5 * time.Second)
	for {
		if exec.Command("ip", "netns", "exec", beNS, "bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/%s/%d", addr, hcPort)).Run() == nil {
			return l
		}
		if time.Now().After(deadline) {
			t.Fatalf("listener on %s did not start", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (l *listener) stop() {
	if l.cmd.ProcessState == nil {
		l.cmd.Process.Kill()
		l.cmd.Wait()
	}
}

type ctlOpts struct {
	health  string // a health block for web, indented for a service
	nextHop string
	extra   string // more services
	api     string // more keys of the api block, indented
}

// ctlConfig writes a config with an API socket of its own.
func ctlConfig(t *testing.T, dir string, o ctlOpts) (file, sock string) {
	sock = filepath.Join(dir, "raild.sock")
	var b strings.Builder
	fmt.Fprintf(&b, "interface: %s\nlocal_address: %s\nmetrics_address: %s\nconntrack:\n  entries_per_core: 65536\n", lbIf, lbAddr, labMetrics)
	if o.nextHop != "" {
		fmt.Fprintf(&b, "next_hop: %s\n", o.nextHop)
	}
	fmt.Fprintf(&b, "api:\n  socket: %s\n%s", sock, o.api)
	fmt.Fprintf(&b, "services:\n  - name: web\n    vip: %s\n    port: 80\n    protocol: tcp\n    table_size: 65537\n%s    backends:\n", labVIP, o.health)
	for _, a := range labBackends {
		fmt.Fprintf(&b, "      - address: %s\n", a)
	}
	b.WriteString(o.extra)
	file = filepath.Join(dir, "rail.yaml")
	if err := os.WriteFile(file, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return file, sock
}

// apiGet decodes GET path from raild's socket.
func apiGet(t *testing.T, sock, path string, v any) {
	t.Helper()
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	resp, err := c.Get("http://raild" + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func backendView(t *testing.T, sock, addr string) control.BackendView {
	var v []control.ServiceView
	apiGet(t, sock, "/v1/services", &v)
	for _, s := range v {
		for _, b := range s.Backends {
			if b.Address == addr {
				return b
			}
		}
	}
	t.Fatalf("no backend %s", addr)
	return control.BackendView{}
}

// waitFor polls cond every 10 ms and returns how long it took.
func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("%s: not within %v", what, within)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

// trafgenBackground sends frames in a loop (gap between frames) until the
// returned stop is called.
func trafgenBackground(t *testing.T, frames [][]byte, gap string, loops int) (wait func()) {
	cfg := filepath.Join(t.TempDir(), "frames.cfg")
	f, err := os.Create(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := bench.WriteTrafgen(f, frames); err != nil {
		t.Fatal(err)
	}
	f.Close()
	cmd := exec.Command("ip", "netns", "exec", genNS, "trafgen", "--dev", genIf, "--conf", cfg,
		"-n", fmt.Sprint(len(frames)*loops), "-t", gap, "--no-sock-mem", "-q")
	startCmd(t, cmd)
	return func() { cmd.Wait() }
}

// TestLabHealthFlap: a backend's HTTP listener stops and comes back. The
// node takes it out within fall × interval (plus one interval of phase),
// its flows go to the others, and it is back within rise × interval and
// then gets new flows.
func TestLabHealthFlap(t *testing.T) {
	privtest.Require(t, "ip", "trafgen", "python3")
	controlLabUp(t)
	var listeners []*listener
	for _, a := range labBackends {
		listeners = append(listeners, startListener(t, a))
	}
	victim := labBackends[0]
	const interval, rise, fall = 200 * time.Millisecond, 2, 3
	file, sock := ctlConfig(t, t.TempDir(), ctlOpts{health: fmt.Sprintf(
		"    health: {type: http, port: %d, path: /, interval: %v, timeout: 100ms, rise: %d, fall: %d}\n", hcPort, interval, rise, fall)})
	d := startRaild(t, file)
	waitFor(t, 2*time.Second, "all healthy", func() bool { return backendView(t, sock, victim).Healthy })

	// Kill the victim's listener (ip netns exec execs python: same PID).
	// A backend is assumed up until its first check, which decides at
	// once: let the first checks pass before the failure.
	time.Sleep(2 * interval)
	listeners[0].stop()
	down := waitFor(t, 3*time.Second, "victim down", func() bool { return !backendView(t, sock, victim).Healthy })
	// Bounds with slack for a loaded machine (one more interval and 400 ms):
	// a checker that ignored fall or rise, or waited twice as long, fails.
	if max := time.Duration(fall+2)*interval + 400*time.Millisecond; down > max {
		t.Errorf("down after %v, want within %v", down, max)
	}

	// Traffic while it is down: every flow goes to the others.
	before := backendView(t, sock, victim).Packets
	sendTrafgen(t, greFrames(t, 60, 1))
	if n := backendView(t, sock, victim).Packets; n != before {
		t.Errorf("%d packets went to the backend that is down", n-before)
	}

	listeners[0] = startListener(t, victim)
	returned := time.Now()
	up := waitFor(t, 3*time.Second, "victim up", func() bool { return backendView(t, sock, victim).Healthy })
	if max := time.Duration(rise+2)*interval + 400*time.Millisecond; up > max {
		t.Errorf("up after %v, want within %v", up, max)
	}
	// New flows reach it again: send new flows until its counter moves.
	frames := make([][]byte, 0, 300)
	for i := 0; i < 300; i++ {
		f, _ := bench.AppendGRE(nil, bench.GRESpec{RouterMAC: genMAC, NodeMAC: lbMAC, Router: genAddr, Local: lbAddr,
			Flow: bench.FlowN(100000+i*67, labVIP, 80), Payload: 18})
		frames = append(frames, f)
	}
	wait := trafgenBackground(t, frames, "1ms", 1)
	used := waitFor(t, 3*time.Second, "victim used", func() bool { return backendView(t, sock, victim).Packets > before })
	usedAfter := time.Since(returned)
	wait()
	t.Logf("health flap: failure → removal %v (fall %d × interval %v); return → healthy %v (rise %d), → first new flow %v",
		down.Round(time.Millisecond), fall, interval, up.Round(time.Millisecond), rise, usedAfter.Round(time.Millisecond))
	_ = used
	if !strings.Contains(d.log.String(), "backend health changed") {
		t.Errorf("no health change in the log:\n%s", d.log)
	}
	m := scrape(t)
	if m[fmt.Sprintf(`rail_health_transitions_total{service="web",backend="%s",to="down"}`, victim)] != 1 {
		t.Errorf("transition to down not counted")
	}

	// Every backend down: the service says so, and drops no_backend.
	for _, l := range listeners {
		l.stop()
	}
	waitFor(t, 3*time.Second, "service unavailable", func() bool {
		var v control.ServiceView
		apiGet(t, sock, "/v1/services/web", &v)
		return !v.Available
	})
	sendTrafgen(t, greFrames(t, 10, 1))
	m = scrape(t)
	if got := sum(m, `rail_drop_packets_total{queue="0",cpu`); got < 10 || m[`rail_service_available{service="web"}`] != 0 {
		t.Errorf("all down: drops %v, available %v", got, m[`rail_service_available{service="web"}`])
	}
	if !strings.Contains(d.log.String(), "service has no usable backend") {
		t.Errorf("no log line for the service with no backend")
	}
}

// TestLabReloadUnderTraffic: flows of an unchanged service keep their
// backends through reloads under traffic (SIGHUP and the API), with no
// drops, while another service changes.
func TestLabReloadUnderTraffic(t *testing.T) {
	privtest.Require(t, "ip", "tcpdump", "trafgen")
	useLab(t)
	labUp(t)
	dir := t.TempDir()
	other := "  - name: api\n    vip: 192.0.2.11\n    port: 80\n    protocol: tcp\n    table_size: 1009\n    backends:\n      - address: 10.1.0.21\n"
	file, sock := ctlConfig(t, dir, ctlOpts{extra: other})
	d := startRaild(t, file)

	const flows, loops = 200, 15
	frames := greFrames(t, flows, 1) // web only: the unchanged service
	capt := startCapture(t, "ip proto 47")
	start := time.Now()
	wait := trafgenBackground(t, frames, "500us", loops) // ≈ 1.5 s
	var reloads []time.Duration
	railctlBinary(t)
	for i := 0; i < 4; i++ {
		time.Sleep(250 * time.Millisecond)
		cfg, _ := os.ReadFile(file)
		os.WriteFile(file, append(cfg, fmt.Sprintf("      - address: 10.1.0.%d\n", 22+i)...), 0o644)
		t0 := time.Now()
		if i%2 == 0 {
			d.cmd.Process.Signal(syscall.SIGHUP)
			gen := uint64(i + 2)
			waitFor(t, 2*time.Second, "reload applied", func() bool {
				var st control.Stats
				apiGet(t, sock, "/v1/stats", &st)
				return st.Generation >= gen
			})
		} else {
			out, err := exec.Command(railctlBinary(t), "--socket", sock, "reload").CombinedOutput()
			if err != nil || !strings.Contains(string(out), "tables rebuilt: api") {
				t.Errorf("railctl reload: %v %s", err, out)
			}
		}
		reloads = append(reloads, time.Since(t0))
	}
	wait()
	elapsed := time.Since(start)
	time.Sleep(time.Second) // tcpdump hands over a block of a quiet ring only after its timeout
	got := capt.stop(t)

	sent := flows * loops
	var back [][]byte
	for _, f := range got {
		if outerDst(f) != lbAddr {
			back = append(back, f)
		}
	}
	moved := 0
	first := map[string]netip.Addr{}
	for _, f := range back {
		key := string(f[38+12 : 38+24])
		if b, ok := first[key]; ok && b != outerDst(f) {
			moved++
		}
		if _, ok := first[key]; !ok {
			first[key] = outerDst(f)
		}
	}
	m := scrape(t)
	drops := 0.0
	for k, v := range m {
		if strings.HasPrefix(k, "rail_drop_packets_total") {
			drops += v
		}
	}
	tx := sum(m, "rail_tx_packets_total")
	t.Logf("reload under traffic: %d packets of %d flows in %v, 4 reloads (2 SIGHUP, 2 railctl) took %v; forwarded %v (captured %d), dropped %v, flows moved %d",
		sent, flows, elapsed.Round(time.Millisecond), reloads, tx, len(back), drops, moved)
	if tx != float64(sent) || drops != 0 || moved != 0 {
		t.Errorf("sent %d, forwarded %v, dropped %v, moved %d: want all forwarded, none dropped or moved", sent, tx, drops, moved)
	}
	if len(back) < sent*95/100 {
		t.Errorf("captured only %d of %d forwarded frames", len(back), sent)
	}
	if m[`rail_reloads_total{result="ok"}`] != 4 || m[`rail_table_rebuilds_total{service="web"}`] != 1 {
		t.Errorf("reloads %v, web rebuilt %v times (want 4 and 1: only at start)", m[`rail_reloads_total{result="ok"}`], m[`rail_table_rebuilds_total{service="web"}`])
	}

	// An invalid file changes nothing and is reported.
	os.WriteFile(file, []byte("local_address: nope\n"), 0o644)
	out, err := exec.Command(railctlBinary(t), "--socket", sock, "reload").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "local_address") {
		t.Errorf("invalid reload: %v %s", err, out)
	}
	var v []control.ServiceView
	apiGet(t, sock, "/v1/services", &v)
	if len(v) != 2 || len(v[1].Backends) != 5 {
		t.Errorf("an invalid reload changed the services: %+v", v)
	}
}

// TestLabNextHopKernel: with next_hop: kernel the node resolves each
// backend's neighbour itself (nothing else sends to them) and follows a
// change of its MAC.
func TestLabNextHopKernel(t *testing.T) {
	privtest.Require(t, "ip", "tcpdump", "trafgen")
	useLab(t)
	labUp(t)
	// The backends are on-link behind the generator's side of the veth.
	for _, a := range labBackends {
		sh(t, "ip", "-n", genNS, "addr", "add", a+"/32", "dev", genIf)
	}
	sh(t, "ip", "-n", lbNS, "route", "add", "10.1.0.0/24", "dev", lbIf)
	file, sock := ctlConfig(t, t.TempDir(), ctlOpts{nextHop: "kernel"})
	d := startRaild(t, file)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("raild:\n%s", d.log)
		}
	})
	resolved := waitFor(t, 5*time.Second, "neighbours resolved", func() bool {
		for _, a := range labBackends {
			if backendView(t, sock, a).NextHop == "" {
				return false
			}
		}
		return true
	})
	t.Logf("next hop: all %d neighbours resolved %v after start", len(labBackends), resolved.Round(time.Millisecond))
	if nh := backendView(t, sock, labBackends[0]).NextHop; nh != net6(genMAC) {
		t.Fatalf("next hop of %s is %s, want %s", labBackends[0], nh, net6(genMAC))
	}

	sent := greFrames(t, 30, 1)
	capt := startCapture(t, "ip proto 47")
	sendTrafgen(t, sent)
	time.Sleep(time.Second) // tcpdump hands over a block of a quiet ring only after its timeout
	checkMACs(t, capt.stop(t), map[netip.Addr]string{})
	if t.Failed() {
		for k, v := range scrape(t) {
			if v != 0 && (strings.Contains(k, "drop") || strings.Contains(k, "tx_") || strings.Contains(k, "pass")) {
				t.Log(k, v)
			}
		}
	}

	// The neighbour's MAC changes: the node follows within a moment.
	newMAC := "02:00:00:00:10:99"
	changed := netip.MustParseAddr(labBackends[0])
	sh(t, "ip", "-n", lbNS, "neigh", "replace", changed.String(), "lladdr", newMAC, "dev", lbIf, "nud", "permanent")
	took := waitFor(t, 3*time.Second, "new MAC", func() bool { return backendView(t, sock, changed.String()).NextHop == newMAC })
	t.Logf("next hop: MAC change followed in %v", took.Round(time.Millisecond))
	capt = startCapture(t, "ip proto 47")
	sendTrafgen(t, sent)
	time.Sleep(time.Second)
	checkMACs(t, capt.stop(t), map[netip.Addr]string{changed: newMAC})
	m := scrape(t)
	if got := sum(m, `rail_backend_next_hop_resolved{`); got != float64(len(labBackends)) {
		t.Errorf("rail_backend_next_hop_resolved sums to %v", got)
	}
}

// checkMACs checks the destination MAC of every forwarded frame: want[b]
// for backend b, else the generator's.
func checkMACs(t *testing.T, frames [][]byte, want map[netip.Addr]string) {
	t.Helper()
	n := 0
	for _, f := range frames {
		dst := outerDst(f)
		if dst == lbAddr || !dst.IsValid() {
			continue
		}
		n++
		w, ok := want[dst]
		if !ok {
			w = net6(genMAC)
		}
		if got := net6([6]byte(f[0:6])); got != w {
			t.Errorf("frame to %v has MAC %s, want %s", dst, got, w)
			return
		}
	}
	if n == 0 {
		t.Errorf("no forwarded frames among %d", len(frames))
		for _, f := range frames {
			t.Logf("%x", f[:min(len(f), 40)])
		}
	}
}

var railctlBuilt string

// railctlBinary builds railctl once per test binary.
func railctlBinary(t *testing.T) string {
	if railctlBuilt == "" {
		p := filepath.Join(filepath.Dir(raildBinary(t)), "railctl")
		if out, err := exec.Command("go", "build", "-o", p, "../railctl").CombinedOutput(); err != nil {
			t.Fatalf("go build railctl: %v\n%s", err, out)
		}
		railctlBuilt = p
	}
	return railctlBuilt
}
