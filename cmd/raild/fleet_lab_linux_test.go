package main

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/gopacket/pcapgo"

	"github.com/rail-lb/rail/control"
	"github.com/rail-lb/rail/internal/privtest"
)

// The fleet lab (tools/fleet-lab.sh, docs/FLEET.md) under test: a client,
// a bird2 router that merges the nodes' BGP routes for the VIP into one
// multipath route (L4 hashing), Rail nodes on a bridge behind it and nginx
// backends behind `raild decap`, replies straight to the client. Each test
// builds its own lab in its own temporary directory, with namespaces
// ft<pid>- (fleetPrefix): it never meets a lab someone runs by hand
// (fl-, /tmp/fl-lab), nor one of another test process running at the same
// time (two people, or go test twice).
const (
	fleetVIP = "192.0.2.10"
	// nginx's limit_rate of /slow/: the 4.7 MB file takes about 9 s, which
	// spans a node's loss or drain. (A client-side limit would not do: the
	// file fits in the socket buffers at once, and the flow goes quiet.)
	fleetRate = "512k"
	// The downloads under way while a node dies or drains.
	fleetConns = 60
	fleetHold  = 3 * time.Second // the hold time the nodes propose (lab's --hold-time)
)

// fleetPrefix is this process's namespace prefix: ft, its pid in base 36
// (five digits: fleet-lab.sh takes 8 characters) and a dash.
var fleetPrefix = fmt.Sprintf("ft%05s-", strconv.FormatInt(int64(os.Getpid()), 36))

var fleetStale = regexp.MustCompile(`^(ft([0-9a-z]{5})-)(client|router|node[1-9]|be[1-9])$`)

// fleetSweep removes the labs of test processes that died before their
// cleanup ran (their namespaces and what runs in them), found by the pid
// in their prefix; once per process.
var fleetSweep = sync.OnceFunc(func() {
	script, err := filepath.Abs("../../tools/fleet-lab.sh")
	if err != nil {
		return
	}
	out, _ := exec.Command("ip", "netns", "list").Output()
	dead := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(line, " ")
		m := fleetStale.FindStringSubmatch(name)
		if m == nil || m[1] == fleetPrefix {
			continue
		}
		pid, err := strconv.ParseInt(m[2], 36, 32)
		if err != nil || syscall.Kill(int(pid), 0) == nil {
			continue // alive: another test's lab
		}
		dead[m[1]] = true
	}
	for p := range dead {
		// No such directory: down sweeps the namespaces all the same.
		exec.Command(script, "down", "--prefix", p, "--dir", filepath.Join(os.TempDir(), "fleet-lab-gone-"+strings.TrimSuffix(p, "-"))).Run()
	}
})

func fleetNodeAddr(i int) string { return fmt.Sprintf("10.0.0.%d", i+1) }

type fleetLab struct {
	script, dir, raild string
	nodes              int
}

// fleetUp builds a lab of n nodes (up and extra arguments, e.g.
// --start-raild) and removes it when the test ends, failed or not.
func fleetUp(t *testing.T, n int, extra ...string) *fleetLab {
	t.Helper()
	privtest.Require(t, "ip", "ethtool", "mount", "setsid", "bird", "birdc", "nginx", "curl", "tcpdump")
	script, err := filepath.Abs("../../tools/fleet-lab.sh")
	if err != nil {
		t.Fatal(err)
	}
	built := time.Now()
	l := &fleetLab{script: script, dir: t.TempDir(), raild: raildBinary(t), nodes: n}
	if d := time.Since(built); d > time.Second {
		t.Logf("raild built in %v", d.Round(time.Millisecond))
	}
	fleetSweep()
	// A lab of an earlier test of this process that stopped half-way would
	// stand in the way (its bird): down sweeps every namespace of the prefix
	// whatever its directory.
	down := func() { exec.Command(script, "down", "--prefix", fleetPrefix, "--dir", l.dir).Run() }
	down()
	t.Cleanup(down)
	t.Cleanup(func() { // runs before down
		if t.Failed() {
			l.dump(t)
		}
	})
	start := time.Now()
	args := []string{"up", "--nodes", strconv.Itoa(n), "--raild", l.raild, "--slow-rate", fleetRate,
		"--hold-time", fmt.Sprintf("%ds", int(fleetHold.Seconds()))}
	l.run(t, append(args, extra...)...)
	t.Logf("fleet-lab.sh up (%d nodes%s): %v", n, strings.Join(append([]string{""}, extra...), " "), time.Since(start).Round(time.Millisecond))
	return l
}

// run runs fleet-lab.sh with the lab's prefix and directory.
func (l *fleetLab) run(t *testing.T, args ...string) string {
	t.Helper()
	return sh(t, append([]string{l.script}, append(args, "--prefix", fleetPrefix, "--dir", l.dir)...)...)
}

func (l *fleetLab) command(args ...string) *exec.Cmd {
	return exec.Command(l.script, append(args, "--prefix", fleetPrefix, "--dir", l.dir)...)
}

func (l *fleetLab) ns(name string) string { return fleetPrefix + name }

func (l *fleetLab) node(i int) string { return l.ns("node" + strconv.Itoa(i)) }
func (l *fleetLab) sock(i int) string { return l.nodeFile(i, "raild.sock") }
func (l *fleetLab) nodeFile(i int, name string) string {
	return filepath.Join(l.dir, fmt.Sprintf("node%d", i), name)
}

// dump logs what a failed test leaves to look at.
func (l *fleetLab) dump(t *testing.T) {
	out, _ := l.command("status").CombinedOutput()
	t.Logf("fleet-lab.sh status:\n%s", out)
	for i := 1; i <= l.nodes; i++ {
		b, _ := os.ReadFile(l.nodeFile(i, "raild.log"))
		lines := strings.Split(strings.TrimSpace(string(b)), "\n")
		t.Logf("the end of node%d's raild.log:\n%s", i, strings.Join(lines[max(0, len(lines)-25):], "\n"))
	}
	b, _ := os.ReadFile(filepath.Join(l.dir, "bird.log"))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	t.Logf("the end of bird.log:\n%s", strings.Join(lines[max(0, len(lines)-25):], "\n"))
}

// hops are the next hops of the router's kernel route to the VIP, in the
// route's order (none: no route).
func (l *fleetLab) hops(t *testing.T) []string {
	t.Helper()
	out := sh(t, "ip", "-n", l.ns("router"), "route", "show", fleetVIP)
	var hops []string
	for _, f := range regexp.MustCompile(`via ([0-9.]+)`).FindAllStringSubmatch(out, -1) {
		hops = append(hops, f[1])
	}
	return hops
}

// waitHops waits until the route has n next hops and returns how long that
// took, polling every 5 ms.
func (l *fleetLab) waitHops(t *testing.T, n int, within time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for len(l.hops(t)) != n {
		if time.Since(start) > within {
			t.Fatalf("the router's route to %s has next hops %v after %v, want %d", fleetVIP, l.hops(t), within, n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return time.Since(start)
}

// metrics scrapes node i's metrics (127.0.0.1:971I inside its namespace).
func (l *fleetLab) metrics(t *testing.T, i int) map[string]float64 {
	t.Helper()
	out := sh(t, "ip", "netns", "exec", l.node(i), "curl", "-sS", "-m", "3", fmt.Sprintf("http://127.0.0.1:%d/metrics", 9710+i))
	m := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := sc.Text()
		k := strings.LastIndexByte(line, ' ')
		if k < 0 || strings.HasPrefix(line, "#") {
			continue
		}
		v, err := strconv.ParseFloat(line[k+1:], 64)
		if err == nil {
			m[line[:k]] = v
		}
	}
	return m
}

func (l *fleetLab) rx(t *testing.T, i int) float64 {
	return sum(l.metrics(t, i), "rail_rx_packets_total{")
}

// bgp is GET /v1/bgp on node i's admin socket.
func (l *fleetLab) bgp(t *testing.T, i int) control.BGPView {
	t.Helper()
	var v control.BGPView
	apiGet(t, l.sock(i), "/v1/bgp", &v)
	return v
}

// announced reports node i's announcement of the VIP and why.
func (l *fleetLab) announced(t *testing.T, i int) (bool, string) {
	t.Helper()
	for _, a := range l.bgp(t, i).Announcements {
		if a.Prefix.Addr().String() == fleetVIP {
			return a.Announced, a.Why
		}
	}
	return false, "no announcement of " + fleetVIP
}

func (l *fleetLab) hup(t *testing.T, i int) {
	t.Helper()
	b, err := os.ReadFile(l.nodeFile(i, "raild.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
}

// editConfig replaces from by to in node i's configuration.
func (l *fleetLab) editConfig(t *testing.T, i int, from, to string) {
	t.Helper()
	p := l.nodeFile(i, "raild.yaml")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(from)) {
		t.Fatalf("%q not in %s", from, p)
	}
	if err := os.WriteFile(p, bytes.Replace(b, []byte(from), []byte(to), 1), 0o644); err != nil {
		t.Fatal(err)
	}
}

// xdpOn reports whether node i's lb0 has an XDP program.
func (l *fleetLab) xdpOn(t *testing.T, i int) bool {
	out := sh(t, "ip", "-n", l.node(i), "-d", "link", "show", "dev", "lb0")
	return strings.Contains(out, "prog/xdp") || strings.Contains(out, "xdpgeneric") || strings.Contains(out, " xdp ")
}

// requests makes n requests through the VIP from the client, a new
// connection each, and counts the answers per backend and the failures.
// The timeouts leave room for a retransmitted SYN on a loaded machine
// (refused connections fail at once).
func (l *fleetLab) requests(t *testing.T, n int) (per map[string]int, failed int) {
	t.Helper()
	out, _ := exec.Command("ip", "netns", "exec", l.ns("client"), "curl", "-s", "--connect-timeout", "3", "-m", "5",
		"-H", "Connection: close", "-w", `%{http_code}\n`, fmt.Sprintf("http://%s/?r=[1-%d]", fleetVIP, n)).Output()
	per = map[string]int{}
	got, name := 0, ""
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(line, "be"):
			name = line
		case line != "":
			got++
			if line == "200" && name != "" {
				per[name]++
			} else {
				failed++
			}
			name = ""
		}
	}
	if got != n {
		t.Fatalf("%d results from curl, want %d:\n%s", got, n, out)
	}
	return per, failed
}

// A download is a paced /slow/big through the VIP from a fixed client
// port (the port names the flow in the captures).
type fleetDownload struct {
	port int
	cmd  *exec.Cmd
	out  string
	errb *syncBuffer
	done chan struct{}
	err  error
}

func (l *fleetLab) startDownloads(t *testing.T, n, firstPort int) []*fleetDownload {
	t.Helper()
	d := t.TempDir()
	var dls []*fleetDownload
	t.Cleanup(func() {
		for _, dl := range dls {
			dl.cmd.Process.Kill()
			<-dl.done
		}
	})
	// Started from a thread in the client's namespace (a child inherits
	// it), not through `ip netns exec`: on a loaded machine 60 of those
	// take seconds, and the first downloads would end before the last begin.
	start := time.Now()
	var err error
	inNetns(t, l.ns("client"), func() {
		for k := 0; k < n && err == nil; k++ {
			dl := &fleetDownload{port: firstPort + k, out: filepath.Join(d, strconv.Itoa(k)), errb: &syncBuffer{}, done: make(chan struct{})}
			dl.cmd = exec.Command("curl", "-sS", "-m", "60", "--connect-timeout", "3",
				"--local-port", strconv.Itoa(dl.port), "-o", dl.out, "http://"+fleetVIP+"/slow/big")
			dl.cmd.Stderr = dl.errb
			if err = dl.cmd.Start(); err == nil {
				go func() { dl.err = dl.cmd.Wait(); close(dl.done) }()
				dls = append(dls, dl)
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(dls) != n {
		t.Fatalf("%d of %d downloads started", len(dls), n)
	}
	if d := time.Since(start); d > time.Second {
		t.Logf("starting %d downloads took %v", n, d.Round(time.Millisecond))
	}
	return dls
}

// fleetActive are the client ports of the downloads still under way.
func fleetActive(dls []*fleetDownload) map[int]bool {
	active := map[int]bool{}
	for _, dl := range dls {
		select {
		case <-dl.done:
		default:
			active[dl.port] = true
		}
	}
	return active
}

func (dl *fleetDownload) received() int64 {
	fi, err := os.Stat(dl.out)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// fleetUnderWay waits until every download has at least min bytes.
func fleetUnderWay(t *testing.T, dls []*fleetDownload, min int64) {
	t.Helper()
	waitFor(t, 15*time.Second, "every download under way", func() bool {
		for _, dl := range dls {
			if dl.received() < min {
				return false
			}
		}
		return true
	})
}

// finish waits for every download and checks it byte for byte against
// the file nginx serves: kept are those that arrived whole and identical.
func (l *fleetLab) finish(t *testing.T, dls []*fleetDownload) (kept int, broken []string, took time.Duration) {
	t.Helper()
	start := time.Now()
	big, err := os.ReadFile(filepath.Join(l.dir, "big"))
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(big)
	for _, dl := range dls {
		select {
		case <-dl.done:
		case <-time.After(70*time.Second - time.Since(start)):
			t.Fatalf("download from port %d still runs after 70 s", dl.port)
		}
		got, _ := os.ReadFile(dl.out)
		switch {
		case dl.err != nil:
			broken = append(broken, fmt.Sprintf("port %d: curl: %v: %s (%d of %d bytes)", dl.port, dl.err, strings.TrimSpace(dl.errb.String()), len(got), len(big)))
		case len(got) != len(big) || sha256.Sum256(got) != want:
			broken = append(broken, fmt.Sprintf("port %d: %d bytes, want %d; identical: false", dl.port, len(got), len(big)))
		default:
			kept++
		}
	}
	return kept, broken, time.Since(start)
}

// A capture is tcpdump on the router's bridge port into node i: the
// client's packets to the VIP that the router hands to that node, the GRE
// packets the node sends back (what it forwarded) and the FIN or RST of
// the node's BGP session.
type fleetCapture struct {
	node int
	cmd  *exec.Cmd
	file string
	errb *syncBuffer
}

func (l *fleetLab) startCaptures(t *testing.T) []*fleetCapture {
	t.Helper()
	d := t.TempDir()
	var caps []*fleetCapture
	for i := 1; i <= l.nodes; i++ {
		c := &fleetCapture{node: i, file: filepath.Join(d, fmt.Sprintf("n%d.pcap", i)), errb: &syncBuffer{}}
		c.cmd = exec.Command("ip", "netns", "exec", l.ns("router"), "tcpdump", "-i", fmt.Sprintf("n%d", i),
			"--immediate-mode", "-U", "-nn", "-B", "16384", "-s", "96", "-w", c.file,
			fmt.Sprintf("(ip dst %s and tcp dst port 80) or (ip proto 47 and src host %s) or (tcp port 179 and tcp[tcpflags] & (tcp-fin|tcp-rst) != 0)",
				fleetVIP, fleetNodeAddr(i)))
		c.cmd.Stderr = c.errb
		startCmd(t, c.cmd)
		caps = append(caps, c)
	}
	for _, c := range caps {
		waitFor(t, 10*time.Second, "tcpdump listening", func() bool { return strings.Contains(c.errb.String(), "listening on") })
	}
	return caps
}

// What a captured packet is.
const (
	pktIn     = iota // from the client to the VIP, handed to the node
	pktOut           // GRE from the node: a packet it forwarded
	pktBGPEnd        // the node's FIN or RST on its BGP session
)

// fleetPacket is one captured packet; port is the client's port (of the
// inner packet, for GRE).
type fleetPacket struct {
	at   time.Time
	port int
	kind int
}

// fleetStopCaptures ends the captures and returns each node's packets in
// order, and how many the kernel dropped.
func fleetStopCaptures(t *testing.T, caps []*fleetCapture) (map[int][]fleetPacket, int) {
	t.Helper()
	time.Sleep(200 * time.Millisecond)
	pkts := map[int][]fleetPacket{}
	dropped := 0
	for _, c := range caps {
		c.cmd.Process.Signal(syscall.SIGINT)
		c.cmd.Wait()
		if m := regexp.MustCompile(`([0-9]+) packets dropped by kernel`).FindStringSubmatch(c.errb.String()); m != nil {
			n, _ := strconv.Atoi(m[1])
			dropped += n
		}
		f, err := os.Open(c.file)
		if err != nil {
			t.Fatal(err)
		}
		r, err := pcapgo.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		for {
			data, ci, err := r.ReadPacketData()
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			if p, ok := fleetParse(data, c.node); ok {
				p.at = ci.Timestamp
				pkts[c.node] = append(pkts[c.node], p)
			}
		}
		f.Close()
	}
	return pkts, dropped
}

// fleetParse reads what the capture of node's port took.
func fleetParse(data []byte, node int) (fleetPacket, bool) {
	var p fleetPacket
	if len(data) < 34 || binary.BigEndian.Uint16(data[12:]) != 0x0800 {
		return p, false
	}
	ip := data[14:]
	hl := int(ip[0]&0xf) * 4
	src := netip.AddrFrom4([4]byte(ip[12:16])).String()
	switch ip[9] {
	case 47: // GRE from the node: the inner packet's source port
		gre := ip[hl:]
		if src != fleetNodeAddr(node) || len(gre) < 4 {
			return p, false
		}
		gl := 4
		if gre[0]&0x20 != 0 { // a key (second chance)
			gl += 4
		}
		if len(gre) < gl+20 || binary.BigEndian.Uint16(gre[2:]) != 0x0800 {
			return p, false
		}
		in := gre[gl:]
		ihl := int(in[0]&0xf) * 4
		if in[9] != 6 || len(in) < ihl+4 {
			return p, false
		}
		p.kind, p.port = pktOut, int(binary.BigEndian.Uint16(in[ihl:]))
	case 6:
		if len(ip) < hl+4 {
			return p, false
		}
		sport, dport := int(binary.BigEndian.Uint16(ip[hl:])), int(binary.BigEndian.Uint16(ip[hl+2:]))
		switch {
		case sport == 179 || dport == 179:
			if src != fleetNodeAddr(node) {
				return p, false
			}
			p.kind = pktBGPEnd
		default:
			p.kind, p.port = pktIn, sport
		}
	default:
		return p, false
	}
	return p, true
}

// fleetSpan is when a flow was seen on one node.
type fleetSpan struct {
	first, last time.Time
	n           int
}

// fleetFlowSpans maps each client port of ports to the nodes the router
// handed it to.
func fleetFlowSpans(pkts map[int][]fleetPacket, ports map[int]bool) map[int]map[int]*fleetSpan {
	out := map[int]map[int]*fleetSpan{}
	for node, ps := range pkts {
		for _, p := range ps {
			if p.kind != pktIn || !ports[p.port] {
				continue
			}
			if out[p.port] == nil {
				out[p.port] = map[int]*fleetSpan{}
			}
			s := out[p.port][node]
			if s == nil {
				s = &fleetSpan{first: p.at}
				out[p.port][node] = s
			}
			s.last = p.at
			s.n++
		}
	}
	return out
}

// fleetMoves is what the captures say about the flows around the moment
// a node left the route.
type fleetMoves struct {
	before     map[int]int // node → flows it carried first
	fromGone   int         // flows on the node that left, and on another after
	stayedGone int         // flows on it, under way, that never showed up anywhere else
	between    int         // flows that moved from one of the others to another
	lastIn     time.Time   // the router's last packet to the node that left
	lastOut    time.Time   // the last packet that node forwarded (its GRE)
	bgpEnd     time.Time   // its BGP session's FIN or RST, if any
	// firstElse are the moved flows' first packets on another node.
	firstElse []time.Time
}

// fleetAnalyse reads the captures around the moment node gone left the
// route; active are the downloads still under way then (the others
// cannot move).
func fleetAnalyse(pkts map[int][]fleetPacket, dls []*fleetDownload, gone int, active map[int]bool) fleetMoves {
	ports := map[int]bool{}
	for _, dl := range dls {
		ports[dl.port] = true
	}
	m := fleetMoves{before: map[int]int{}}
	for _, p := range pkts[gone] {
		switch {
		case p.kind == pktIn && ports[p.port] && p.at.After(m.lastIn):
			m.lastIn = p.at
		case p.kind == pktOut && ports[p.port] && p.at.After(m.lastOut):
			m.lastOut = p.at
		case p.kind == pktBGPEnd && m.bgpEnd.IsZero():
			m.bgpEnd = p.at
		}
	}
	for port, nodes := range fleetFlowSpans(pkts, ports) {
		var order []int // the nodes of a flow, by their first packet
		for n := range nodes {
			order = append(order, n)
		}
		sort.Slice(order, func(a, b int) bool { return nodes[order[a]].first.Before(nodes[order[b]].first) })
		m.before[order[0]]++
		switch {
		case order[0] == gone && len(order) > 1:
			m.fromGone++
			m.firstElse = append(m.firstElse, nodes[order[1]].first)
		case order[0] == gone && active[port]:
			m.stayedGone++
		case len(order) > 1 && !slices.Contains(order, gone):
			m.between++
		}
	}
	slices.SortFunc(m.firstElse, func(a, b time.Time) int { return a.Compare(b) })
	return m
}

// since says when each moved flow reached another node, from t0.
func (m fleetMoves) since(t0 time.Time) string {
	if len(m.firstElse) == 0 {
		return "none"
	}
	d := func(x time.Time) time.Duration { return x.Sub(t0).Round(time.Millisecond) }
	return fmt.Sprintf("first %v, median %v, last %v", d(m.firstElse[0]), d(m.firstElse[len(m.firstElse)/2]), d(m.firstElse[len(m.firstElse)-1]))
}

// fleetRouteEvent is a change of the router's route to the VIP, as ip
// monitor reported it: its next hops after (none: deleted).
type fleetRouteEvent struct {
	at   time.Time
	hops []string
}

// monitorRoute runs `ip -ts monitor route` in the router; the returned
// stop ends it and gives the changes of the route to the VIP.
func (l *fleetLab) monitorRoute(t *testing.T) (stop func() []fleetRouteEvent) {
	t.Helper()
	var out syncBuffer
	cmd := exec.Command("ip", "-n", l.ns("router"), "-ts", "monitor", "route")
	cmd.Stdout, cmd.Stderr = &out, &out
	startCmd(t, cmd)
	time.Sleep(100 * time.Millisecond) // (it prints nothing when ready)
	return func() []fleetRouteEvent {
		time.Sleep(100 * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
		var evs []fleetRouteEvent
		head := regexp.MustCompile(`^\[([0-9T:.-]+)\] (Deleted )?` + regexp.QuoteMeta(fleetVIP) + ` `)
		var cur *fleetRouteEvent
		for _, line := range strings.Split(out.String(), "\n") {
			if strings.HasPrefix(line, "[") {
				cur = nil
				m := head.FindStringSubmatch(line)
				if m == nil {
					continue
				}
				at, err := time.ParseInLocation("2006-01-02T15:04:05.000000", m[1], time.Local)
				if err != nil {
					t.Errorf("ip monitor: %q: %v", line, err)
					continue
				}
				evs = append(evs, fleetRouteEvent{at: at})
				cur = &evs[len(evs)-1]
				if m[2] != "" {
					cur = nil // deleted: no next hops
					continue
				}
			}
			if cur != nil {
				if v := regexp.MustCompile(`via ([0-9.]+)`).FindStringSubmatch(line); v != nil {
					cur.hops = append(cur.hops, v[1])
				}
			}
		}
		return evs
	}
}

// fleetWithout is the first change after t0 that leaves node i out.
func fleetWithout(evs []fleetRouteEvent, t0 time.Time, i int) (time.Time, bool) {
	for _, e := range evs {
		if e.at.After(t0) && !slices.Contains(e.hops, fleetNodeAddr(i)) {
			return e.at, true
		}
	}
	return time.Time{}, false
}

// TestFleetECMP: bird learns the VIP from three nodes and installs one
// route with three next hops; a node whose only service loses its last
// healthy backend withdraws (when_down: withdraw), and comes back.
func TestFleetECMP(t *testing.T) {
	l := fleetUp(t, 3, "--start-raild")
	took := l.waitHops(t, 3, 15*time.Second)
	hops := l.hops(t)
	t.Logf("after up, the router's route to %s has next hops %v (%v later)", fleetVIP, hops, took.Round(time.Millisecond))
	if want := []string{fleetNodeAddr(1), fleetNodeAddr(2), fleetNodeAddr(3)}; !slices.Equal(hops, want) {
		t.Errorf("next hops %v, want %v", hops, want)
	}
	protos := sh(t, "birdc", "-s", filepath.Join(l.dir, "bird.ctl"), "show", "protocols")
	for i := 1; i <= 3; i++ {
		if !regexp.MustCompile(fmt.Sprintf(`(?m)^node%d\s+BGP\s.*\sup\s.*Established`, i)).MatchString(protos) {
			t.Errorf("bird's protocol node%d is not up and Established:\n%s", i, protos)
		}
		m := l.metrics(t, i)
		if m[`rail_bgp_session_up{peer="10.0.0.1"}`] != 1 || m[`rail_bgp_announced{prefix="192.0.2.10/32"}`] != 1 {
			t.Errorf("node%d: rail_bgp_session_up %v, rail_bgp_announced %v, want 1 and 1", i,
				m[`rail_bgp_session_up{peer="10.0.0.1"}`], m[`rail_bgp_announced{prefix="192.0.2.10/32"}`])
		}
	}

	// Requests spread over the nodes (the router hashes each connection's
	// 5-tuple) and over the backends (Maglev, the same on every node).
	spread := func(what string, n int, want []int) {
		t.Helper()
		var rx0 []float64
		for i := 1; i <= 3; i++ {
			rx0 = append(rx0, l.rx(t, i))
		}
		per, failed := l.requests(t, n)
		var got []string
		for i := 1; i <= 3; i++ {
			d := l.rx(t, i) - rx0[i-1]
			got = append(got, fmt.Sprintf("node%d %.0f", i, d))
			if slices.Contains(want, i) != (d > 0) {
				t.Errorf("%s: node%d received %.0f packets, want %s", what, i, d, map[bool]string{true: "some", false: "none"}[slices.Contains(want, i)])
			}
		}
		t.Logf("%s: %d requests through the VIP, %d failed; per backend %v; packets received per node: %s", what, n, failed, per, strings.Join(got, ", "))
		if failed != 0 || len(per) != 3 {
			t.Errorf("%s: %d of %d requests failed, answers from %v (want be1..be3)", what, failed, n, per)
		}
	}
	spread("3 nodes", 300, []int{1, 2, 3})

	// One node alone loses its backends: node3's health checks ask for a
	// page nginx does not have (404), the others' still pass.
	t.Run("one node withdraws", func(t *testing.T) {
		l.editConfig(t, 3, "path: /healthz", "path: /no-such-page")
		l.hup(t, 3)
		took := l.waitHops(t, 2, 10*time.Second)
		hops := l.hops(t)
		ok, why := l.announced(t, 3)
		t.Logf("node3's health checks fail (404): the route has next hops %v %v after its SIGHUP; node3 announces: %v (%s)", hops, took.Round(time.Millisecond), ok, why)
		if !slices.Equal(hops, []string{fleetNodeAddr(1), fleetNodeAddr(2)}) {
			t.Errorf("next hops %v, want node1's and node2's", hops)
		}
		if ok || !strings.Contains(why, "when_down: withdraw") {
			t.Errorf("node3's /v1/bgp: announced %v (%s), want withdrawn for when_down: withdraw", ok, why)
		}
		if m := l.metrics(t, 3); m[`rail_bgp_announced{prefix="192.0.2.10/32"}`] != 0 || m[`rail_bgp_session_up{peer="10.0.0.1"}`] != 1 {
			t.Errorf("node3: rail_bgp_announced %v, session up %v, want 0 and 1 (withdrawn, session kept)",
				m[`rail_bgp_announced{prefix="192.0.2.10/32"}`], m[`rail_bgp_session_up{peer="10.0.0.1"}`])
		}
		spread("node3 withdrawn", 200, []int{1, 2})

		l.editConfig(t, 3, "path: /no-such-page", "path: /healthz")
		l.hup(t, 3)
		took = l.waitHops(t, 3, 10*time.Second)
		t.Logf("node3's health checks pass again: 3 next hops %v after its SIGHUP", took.Round(time.Millisecond))
	})

	// Every backend goes: every node withdraws, the route goes; they come
	// back: so does it.
	t.Run("all backends down and back", func(t *testing.T) {
		start := time.Now()
		for b := 1; b <= 3; b++ {
			l.run(t, "nginx", "stop", strconv.Itoa(b))
		}
		l.waitHops(t, 0, 10*time.Second)
		gone := time.Since(start)
		for i := 1; i <= 3; i++ {
			if ok, why := l.announced(t, i); ok {
				t.Errorf("node%d still announces with every backend down (%s)", i, why)
			}
		}
		start = time.Now()
		for b := 1; b <= 3; b++ {
			l.run(t, "nginx", "start", strconv.Itoa(b))
		}
		l.waitHops(t, 3, 10*time.Second)
		back := time.Since(start)
		t.Logf("nginx stopped on every backend: no route to %s after %v (health checks: fall 2 × 500 ms); nginx started: 3 next hops after %v",
			fleetVIP, gone.Round(time.Millisecond), back.Round(time.Millisecond))
		spread("after the return", 300, []int{1, 2, 3})
	})
}

// TestFleetNodeLoss: 60 paced downloads spread over three nodes; one node
// is killed (SIGKILL) mid-transfer. Its BGP session dies with it, bird
// drops its next hop, and the kernel's hash-threshold ECMP moves its
// flows onto the survivors — and some flows of one survivor onto the other. Every
// node picks the same backend for a flow, so every download completes
// byte-exact.
func TestFleetNodeLoss(t *testing.T) {
	l := fleetUp(t, 3, "--start-raild")
	l.waitHops(t, 3, 15*time.Second)
	// The last next hop: removing it shifts the hash-threshold boundaries
	// of the others too (killing the middle one would move only its own
	// flows).
	const victim = 3
	caps := l.startCaptures(t)
	routes := l.monitorRoute(t)
	dls := l.startDownloads(t, fleetConns, 42000)
	fleetUnderWay(t, dls, 512<<10)

	active := fleetActive(dls)
	killAt := time.Now()
	l.run(t, "node-kill", strconv.Itoa(victim))
	script := time.Since(killAt)
	l.waitHops(t, 2, fleetHold+5*time.Second)
	hops := l.hops(t)
	if slices.Contains(hops, fleetNodeAddr(victim)) {
		t.Errorf("next hops %v after the kill still have node%d", hops, victim)
	}
	if l.xdpOn(t, victim) {
		t.Errorf("node%d's lb0 still has an XDP program after the kill", victim)
	}
	mid := len(active)
	kept, broken, _ := l.finish(t, dls)
	ended := time.Since(killAt)
	pkts, dropped := fleetStopCaptures(t, caps)
	evs := routes()
	m := fleetAnalyse(pkts, dls, victim, active)
	left, ok := fleetWithout(evs, killAt, victim)
	if !ok {
		t.Fatalf("ip monitor saw no route without node%d: %v", victim, evs)
	}
	if m.bgpEnd.IsZero() {
		t.Errorf("no FIN or RST of node%d's BGP session in the capture", victim)
	}
	// t0: the last packet the dead node forwarded — its data path died then.
	t0 := m.lastOut
	d := func(x time.Time) string {
		if x.IsZero() {
			return "never"
		}
		return fmt.Sprintf("%+v", x.Sub(t0).Round(time.Millisecond))
	}
	moved := m.fromGone + m.between
	t.Logf("%d downloads of /slow/big (4.7 MB) at %s/s; node%d killed with %d of them under way; flows per node before: %v",
		len(dls), fleetRate, victim, mid, m.before)
	t.Logf("timeline from node%d's last forwarded packet (its last GRE, +0): node-kill invoked %s (the script took %v); its BGP session's FIN/RST %s; the router's route without it %s (bird's reaction: %v after the FIN; next hops then %v); the router's last packet to it %s",
		victim, d(killAt), script.Round(time.Millisecond), d(m.bgpEnd), d(left), left.Sub(m.bgpEnd).Round(time.Millisecond), hops, d(m.lastIn))
	t.Logf("failover: the %d flows of node%d reached a survivor at %s (from +0)", m.fromGone, victim, m.since(t0))
	t.Logf("connections: %d kept, %d broken, %d moved (%d off node%d, %d from one survivor to the other, %d on node%d seen nowhere else); captures dropped %d packets; the downloads ended %v after the kill",
		kept, len(broken), moved, m.fromGone, victim, m.between, m.stayedGone, victim, dropped, ended.Round(time.Millisecond))
	for _, b := range broken {
		t.Errorf("broken: %s", b)
	}
	for i := 1; i <= 3; i++ {
		if m.before[i] == 0 {
			t.Errorf("node%d carried no download before the kill (%v)", i, m.before)
		}
	}
	if m.fromGone == 0 || m.between == 0 {
		t.Errorf("%d flows moved off the dead node and %d between survivors: want some of each", m.fromGone, m.between)
	}
	if m.stayedGone != 0 && dropped == 0 {
		t.Errorf("%d flows of node%d never reached a survivor", m.stayedGone, victim)
	}
	if !m.bgpEnd.IsZero() && left.Sub(m.bgpEnd) > fleetHold {
		t.Errorf("the route lost the dead node %v after its session ended (hold time %v)", left.Sub(m.bgpEnd), fleetHold)
	}

	// bird takes the node back at once (error wait time 1 s).
	start := time.Now()
	l.run(t, "node-start", strconv.Itoa(victim))
	l.waitHops(t, 3, 15*time.Second)
	t.Logf("node%d restarted: the route has 3 next hops again %v after node-start", victim, time.Since(start).Round(time.Millisecond))
}

// fleetOwn is a node's raild started by the test rather than by node-start
// (the test is its parent and sees its exit status), with the same log
// and pid files, so that fleet-lab.sh node-stop and down find it.
type fleetOwn struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
	log  string
}

func (l *fleetLab) startOwn(t *testing.T, i int) *fleetOwn {
	t.Helper()
	o := &fleetOwn{log: l.nodeFile(i, "raild.log"), done: make(chan struct{})}
	f, err := os.Create(o.log)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	o.cmd = exec.Command("ip", "netns", "exec", l.node(i), l.raild, "run", "--config", l.nodeFile(i, "raild.yaml"))
	o.cmd.Stdout, o.cmd.Stderr = f, f
	o.cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := o.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { o.err = o.cmd.Wait(); close(o.done) }()
	t.Cleanup(func() {
		select {
		case <-o.done:
		default:
			o.cmd.Process.Kill()
			<-o.done
		}
	})
	// ip netns exec execs raild: the pid is raild's.
	if err := os.WriteFile(l.nodeFile(i, "raild.pid"), []byte(strconv.Itoa(o.cmd.Process.Pid)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, fmt.Sprintf("node%d's raild up", i), func() bool {
		b, _ := os.ReadFile(o.log)
		select {
		case <-o.done:
			t.Fatalf("node%d's raild exited at start: %v\n%s", i, o.err, b)
		default:
		}
		return bytes.Contains(b, []byte("msg=metrics"))
	})
	return o
}

// fleetBirdPath is node's path to the VIP in bird's `show route … all`: whether
// it is there and its communities.
func fleetBirdPath(out, node string) (present bool, communities string) {
	var cur string
	for _, line := range strings.Split(out, "\n") {
		if m := regexp.MustCompile(`unicast \[(node[0-9]+) `).FindStringSubmatch(line); m != nil {
			cur = m[1]
			if cur == node {
				present = true
			}
			continue
		}
		if cur == node {
			if _, c, ok := strings.Cut(line, "BGP.community:"); ok {
				communities = strings.TrimSpace(c)
			}
		}
	}
	return present, communities
}

// TestFleetDrain: SIGTERM to a node under load (fleet-lab.sh node-stop):
// it re-announces with GRACEFUL_SHUTDOWN, the router takes it out of the
// multipath route while its route still exists, it withdraws after
// drain_time, exits 0 and leaves lb0 to the kernel; every download
// completes byte-exact.
func TestFleetDrain(t *testing.T) {
	const drainTime = 3 * time.Second
	l := fleetUp(t, 3, "--drain-time", "3s")
	const victim = 2
	l.run(t, "node-start", "1")
	l.run(t, "node-start", "3")
	own := l.startOwn(t, victim)
	l.waitHops(t, 3, 15*time.Second)
	caps := l.startCaptures(t)
	routes := l.monitorRoute(t)
	dls := l.startDownloads(t, fleetConns, 43000)
	fleetUnderWay(t, dls, 512<<10)

	var stopOut syncBuffer
	stop := l.command("node-stop", strconv.Itoa(victim))
	stop.Stdout, stop.Stderr = &stopOut, &stopOut
	active := fleetActive(dls)
	termAt := time.Now()
	if err := stop.Start(); err != nil {
		t.Fatal(err)
	}
	// What bird holds, every 20 ms until raild has exited.
	const never = time.Duration(-1)
	sawGS, withdrawn, exited := never, never, never
	var gsLine string
	name := fmt.Sprintf("node%d", victim)
	sock := filepath.Join(l.dir, "bird.ctl")
	for exited == never {
		select {
		case <-own.done:
			exited = time.Since(termAt)
		default:
		}
		if time.Since(termAt) > 30*time.Second {
			t.Fatalf("node%d's raild still runs 30 s after SIGTERM", victim)
		}
		out, _ := exec.Command("birdc", "-s", sock, "show", "route", fleetVIP+"/32", "all").CombinedOutput()
		at := time.Since(termAt)
		present, comms := fleetBirdPath(string(out), name)
		if sawGS == never && strings.Contains(comms, "(65535,0)") {
			sawGS, gsLine = at, comms
		}
		if withdrawn == never && sawGS != never && !present {
			withdrawn = at
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := stop.Wait(); err != nil {
		t.Errorf("fleet-lab.sh node-stop: %v\n%s", err, stopOut.String())
	}
	code := own.cmd.ProcessState.ExitCode()
	kept, broken, _ := l.finish(t, dls)
	pkts, dropped := fleetStopCaptures(t, caps)
	evs := routes()
	m := fleetAnalyse(pkts, dls, victim, active)
	logb, _ := os.ReadFile(own.log)
	left, ok := fleetWithout(evs, termAt, victim)
	d := func(x time.Time) string {
		if x.IsZero() {
			return "never"
		}
		return fmt.Sprintf("+%v", x.Sub(termAt).Round(time.Millisecond))
	}
	r := func(x time.Duration) string {
		if x == never {
			return "never"
		}
		return fmt.Sprintf("+%v", x.Round(time.Millisecond))
	}

	t.Logf("SIGTERM to node%d (fleet-lab.sh node-stop, drain_time %v) with %d of %d downloads under way; flows per node before: %v", victim, drainTime, len(active), len(dls), m.before)
	t.Logf("timeline from node-stop (+0): bird shows node%d's path with BGP.community %q at %s; the kernel route leaves it out at %s (%v); the router's last packet to it at %s; its last forwarded packet at %s; bird has no path from it at %s; raild exits %d at %s (the drain time)",
		victim, gsLine, r(sawGS), d(left), fleetHopsAt(evs, left), d(m.lastIn), d(m.lastOut), r(withdrawn), code, r(exited))
	t.Logf("connections: %d kept, %d broken, %d moved off node%d (%d between the others; %d on node%d seen nowhere else), reaching another node at %s; captures dropped %d",
		kept, len(broken), m.fromGone, victim, m.between, m.stayedGone, victim, m.since(termAt), dropped)
	for _, b := range broken {
		t.Errorf("broken: %s", b)
	}
	switch {
	case sawGS == never:
		t.Errorf("bird never showed GRACEFUL_SHUTDOWN (65535,0) on node%d's path", victim)
	case withdrawn == never:
		t.Errorf("bird still had node%d's path when raild had exited", victim)
	}
	if !ok {
		t.Errorf("ip monitor saw no route without node%d: %v", victim, evs)
	} else if withdrawn != never && left.Sub(termAt) > withdrawn {
		t.Errorf("the kernel route dropped node%d at %s, bird lost its path at %s: want it out of the route while the path still exists (local pref 0)", victim, d(left), r(withdrawn))
	}
	if withdrawn != never && withdrawn < drainTime-200*time.Millisecond {
		t.Errorf("withdrawn %v after SIGTERM, before drain_time %v", withdrawn, drainTime)
	}
	if !m.lastIn.IsZero() && !m.lastOut.IsZero() && m.lastOut.Before(m.lastIn) {
		t.Errorf("node%d forwarded its last packet at %s but the router sent it one at %s: it stopped forwarding while it still got traffic", victim, d(m.lastOut), d(m.lastIn))
	}
	if code != 0 {
		t.Errorf("raild exited %d (%v) on SIGTERM", code, own.err)
	}
	if !bytes.Contains(logb, []byte("detached: the interface is back with the kernel")) {
		t.Errorf("raild's log does not say it detached")
	}
	if l.xdpOn(t, victim) {
		t.Errorf("node%d's lb0 still has an XDP program", victim)
	}
	if !strings.Contains(stopOut.String(), "ended by SIGTERM") {
		t.Errorf("node-stop said: %s", stopOut.String())
	}
	if m.before[victim] == 0 || m.fromGone == 0 {
		t.Errorf("node%d carried %d downloads before the drain, %d moved off it: want some", victim, m.before[victim], m.fromGone)
	}
	if m.stayedGone != 0 && dropped == 0 {
		t.Errorf("%d flows of node%d never reached another node", m.stayedGone, victim)
	}
}

// fleetHopsAt are the next hops the route has after the change at at.
func fleetHopsAt(evs []fleetRouteEvent, at time.Time) []string {
	for _, e := range evs {
		if e.at.Equal(at) {
			return e.hops
		}
	}
	return nil
}

// fleetNode is one node's configuration in a lab whose nodes differ.
type fleetNode struct {
	node      int
	backends  []int // be1 = 1, …
	whenDown  string
	forwardTo []int // nodes
	bgp       bool
}

func fleetConfig(dir string, n fleetNode) string {
	var b strings.Builder
	fmt.Fprintf(&b, "interface: lb0\nlocal_address: %s\nnext_hop: ingress\nhash_seed: 7\nmetrics_address: 127.0.0.1:%d\n", fleetNodeAddr(n.node), 9710+n.node)
	fmt.Fprintf(&b, "api:\n  socket: %s\n", filepath.Join(dir, fmt.Sprintf("node%d", n.node), "raild.sock"))
	b.WriteString("conntrack:\n  entries_per_core: 65536\n  tcp_timeout: 1h\n")
	fmt.Fprintf(&b, "services:\n  - name: web\n    vip: %s\n    port: 80\n    protocol: tcp\n    table_size: 65537\n", fleetVIP)
	if n.whenDown != "" {
		fmt.Fprintf(&b, "    when_down: %s\n", n.whenDown)
	}
	if len(n.forwardTo) > 0 {
		var to []string
		for _, j := range n.forwardTo {
			to = append(to, fleetNodeAddr(j))
		}
		fmt.Fprintf(&b, "    forward_to: [%s]\n", strings.Join(to, ", "))
	}
	b.WriteString("    health: {type: http, path: /healthz, interval: 500ms, timeout: 400ms, rise: 2, fall: 2}\n    backends:\n")
	for _, k := range n.backends {
		fmt.Fprintf(&b, "      - {address: 10.1.0.1%d, name: be%d}\n", k, k)
	}
	if n.bgp {
		fmt.Fprintf(&b, "bgp:\n  asn: 65010\n  router_id: %s\n  listen_port: 0\n  drain_time: 3s\n  peers:\n", fleetNodeAddr(n.node))
		fmt.Fprintf(&b, "    - address: 10.0.0.1\n      asn: 65000\n      hold_time: %ds\n", int(fleetHold.Seconds()))
	}
	return b.String()
}

// TestFleetTrombone: two clusters. A is node1 with be1 and be2, announcing
// the VIP, with when_down: forward to node2; B is node2 with be3 of its
// own, announcing nothing (another site's node: the router here never
// sends it the VIP). Every backend of A stops: once A's health checks
// notice, A forwards the VIP's packets in GRE to B, whose be3 answers;
// A keeps announcing (the router keeps sending to A). They return: A's own
// backends answer again.
func TestFleetTrombone(t *testing.T) {
	l := fleetUp(t, 2)
	for _, n := range []fleetNode{
		{node: 1, backends: []int{1, 2}, whenDown: "forward", forwardTo: []int{2}, bgp: true},
		{node: 2, backends: []int{3}},
	} {
		if err := os.WriteFile(l.nodeFile(n.node, "raild.yaml"), []byte(fleetConfig(l.dir, n)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l.run(t, "node-start", "1")
	l.run(t, "node-start", "2")
	l.waitHops(t, 1, 15*time.Second)
	a, b := l.sock(1), l.sock(2)
	healthy := func(sock string, bs ...int) func() bool {
		return func() bool {
			for _, k := range bs {
				if !backendView(t, sock, fmt.Sprintf("10.1.0.1%d", k)).Healthy {
					return false
				}
			}
			return true
		}
	}
	down := func(sock string, bs ...int) func() bool {
		return func() bool {
			for _, k := range bs {
				if backendView(t, sock, fmt.Sprintf("10.1.0.1%d", k)).Healthy {
					return false
				}
			}
			return true
		}
	}
	waitFor(t, 5*time.Second, "A's be1 and be2 healthy", healthy(a, 1, 2))
	waitFor(t, 5*time.Second, "B's be3 healthy", healthy(b, 3))
	fwd := func() float64 { return l.metrics(t, 1)[`rail_forwarded_remote_packets_total{service="web"}`] }
	be3 := func() float64 {
		return l.metrics(t, 2)[`rail_service_backend_packets_total{service="web",backend="10.1.0.13"}`]
	}
	checkRoute := func(when string) {
		t.Helper()
		if hops := l.hops(t); !slices.Equal(hops, []string{fleetNodeAddr(1)}) {
			t.Errorf("%s: the router's route to %s goes via %v, want A (%s) alone", when, fleetVIP, hops, fleetNodeAddr(1))
		}
		if ok, why := l.announced(t, 1); !ok {
			t.Errorf("%s: A does not announce %s (%s)", when, fleetVIP, why)
		}
	}

	per, failed := l.requests(t, 200)
	t.Logf("both clusters up: 200 requests through the VIP: %d failed, per backend %v", failed, per)
	if failed != 0 || per["be3"] != 0 || per["be1"] == 0 || per["be2"] == 0 {
		t.Errorf("want every request answered by A's be1 and be2: %d failed, %v", failed, per)
	}
	checkRoute("both up")
	fwd0, be30 := fwd(), be3()

	// A's backends stop. Requests in batches of 10 until A's health checks
	// have taken both out.
	stopAt := time.Now()
	l.run(t, "nginx", "stop", "1")
	l.run(t, "nginx", "stop", "2")
	total, fails := 0, 0
	firstB := time.Duration(0)
	for !down(a, 1, 2)() {
		if time.Since(stopAt) > 5*time.Second {
			t.Fatal("A's health checks did not take be1 and be2 out within 5 s")
		}
		per, failed := l.requests(t, 10)
		total, fails = total+10, fails+failed
		if per["be3"] > 0 && firstB == 0 {
			firstB = time.Since(stopAt)
		}
	}
	noticed := time.Since(stopAt)
	per, failed = l.requests(t, 200)
	if firstB == 0 && per["be3"] > 0 {
		firstB = time.Since(stopAt)
	}
	_, why := l.announced(t, 1)
	fwd1, be31 := fwd(), be3()
	t.Logf("A's be1 and be2 stopped: out after %v (%d of %d requests failed meanwhile); first answer from B's be3 %v after the stop",
		noticed.Round(time.Millisecond), fails, total, firstB.Round(time.Millisecond))
	t.Logf("then 200 requests: %d failed, per backend %v; A forwarded %.0f packets to B (rail_forwarded_remote_packets_total), B sent %.0f to be3; A announces: %s",
		failed, per, fwd1-fwd0, be31-be30, why)
	if failed != 0 || per["be3"] != 200 {
		t.Errorf("with A's backends down: %d of 200 failed, per backend %v; want all from be3", failed, per)
	}
	if fwd1 <= fwd0 || be31 <= be30 {
		t.Errorf("forwarded packets %v → %v on A, be3's packets %v → %v on B: want both to grow", fwd0, fwd1, be30, be31)
	}
	if !strings.Contains(why, "forward") {
		t.Errorf("A's announcement: %q, want it kept for when_down: forward", why)
	}
	checkRoute("A's backends down")

	// They return.
	startAt := time.Now()
	l.run(t, "nginx", "start", "1")
	l.run(t, "nginx", "start", "2")
	total, fails = 0, 0
	firstA := time.Duration(0)
	for !healthy(a, 1, 2)() {
		if time.Since(startAt) > 5*time.Second {
			t.Fatal("A's health checks did not bring be1 and be2 back within 5 s")
		}
		per, failed := l.requests(t, 10)
		total, fails = total+10, fails+failed
		if per["be1"]+per["be2"] > 0 && firstA == 0 {
			firstA = time.Since(startAt)
		}
	}
	back := time.Since(startAt)
	// The last connections that went to B end (FIN, ACK) by way of B: their
	// entries name it. Then nothing more is forwarded.
	time.Sleep(300 * time.Millisecond)
	fwd2 := fwd()
	per, failed = l.requests(t, 200)
	fwd3 := fwd()
	t.Logf("A's backends started: healthy after %v (%d of %d requests failed meanwhile, first answer from A's own %v after the start); then 200 requests: %d failed, per backend %v; forwarded to B meanwhile: %.0f packets",
		back.Round(time.Millisecond), fails, total, firstA.Round(time.Millisecond), failed, per, fwd3-fwd2)
	if failed != 0 || per["be3"] != 0 {
		t.Errorf("after A's backends returned: %d of 200 failed, per backend %v; want none from be3", failed, per)
	}
	if fails != 0 {
		t.Errorf("%d requests failed while A's backends came back", fails)
	}
	if fwd3 != fwd2 {
		t.Errorf("A still forwards: %v → %v", fwd2, fwd3)
	}
	checkRoute("A's backends back")
}

// TestFleetCheckBGP: `raild check` rejects an unknown key of the bgp block
// with its line and column (exit 1). No lab, no privileges.
func TestFleetCheckBGP(t *testing.T) {
	raild := raildBinary(t)
	dir := t.TempDir()
	good := fleetConfig(dir, fleetNode{node: 1, backends: []int{1, 2, 3}, bgp: true})
	for _, c := range []struct{ name, after, add, want string }{
		{"bgp", "  listen_port: 0\n", "  graceful: yes\n", "bgp.graceful: unknown key (expected one of asn, router_id, listen_port, drain_time, communities, med, next_hop, next_hop6, peers)"},
		{"peer", "      asn: 65000\n", "      hold: 3s\n", "bgp.peers[0].hold: unknown key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			at := strings.Index(good, c.after)
			if at < 0 {
				t.Fatalf("%q not in the configuration", c.after)
			}
			at += len(c.after)
			text := good[:at] + c.add + good[at:]
			line := strings.Count(text[:at], "\n") + 1
			col := len(c.add) - len(strings.TrimLeft(c.add, " ")) + 1
			p := filepath.Join(dir, c.name+".yaml")
			if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr bytes.Buffer
			cmd := exec.Command(raild, "check", "--config", p)
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := cmd.ProcessState.ExitCode()
			want := fmt.Sprintf("%s:%d:%d: %s", p, line, col, c.want)
			t.Logf("raild check: exit %d: %s", code, strings.TrimSpace(stderr.String()))
			if code != 1 || !strings.Contains(stderr.String(), want) {
				t.Errorf("exit %d (%v), stdout %q, stderr %q; want exit 1 and %q", code, err, stdout.String(), stderr.String(), want)
			}
		})
	}
	p := filepath.Join(dir, "good.yaml")
	if err := os.WriteFile(p, []byte(good), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(raild, "check", "--config", p).CombinedOutput(); err != nil {
		t.Errorf("raild check of the configuration without the bad key: %v\n%s", err, out)
	}
}
