package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"github.com/rail-lb/rail/bench"
	"github.com/rail-lb/rail/internal/netnstest"
	"github.com/rail-lb/rail/internal/privtest"
)

// The lab: a generator namespace (standing in for the router) and a Rail
// node namespace joined by a veth pair. Names are unique to this test
// (variables: the control tests use a lab of their own names, useLab).
var (
	genNS = "rlt-gen"
	lbNS  = "rlt-lb"
	genIf = "rltgen0"
	lbIf  = "rltlb0"
)

var (
	genMAC      = [6]byte{2, 0, 0, 0, 0x10, 1}
	lbMAC       = [6]byte{2, 0, 0, 0, 0x10, 2}
	genAddr     = netip.MustParseAddr("10.0.0.1")
	lbAddr      = netip.MustParseAddr("10.0.0.2")
	labVIP      = netip.MustParseAddr("192.0.2.10")
	labBackends = []string{"10.1.0.11", "10.1.0.12", "10.1.0.13"}
)

func sh(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func labUp(t *testing.T) { labUpQueues(t, 1) }

// labUpQueues is labUp with n rx and n tx queues on each end.
func labUpQueues(t *testing.T, n int) {
	labDown()
	t.Cleanup(labDown)
	sh(t, "ip", "netns", "add", genNS)
	sh(t, "ip", "netns", "add", lbNS)
	q := strconv.Itoa(n)
	sh(t, "ip", "link", "add", genIf, "netns", genNS, "numrxqueues", q, "numtxqueues", q,
		"type", "veth", "peer", "name", lbIf, "netns", lbNS, "numrxqueues", q, "numtxqueues", q)
	sh(t, "ip", "-n", genNS, "link", "set", genIf, "address", net6(genMAC), "up")
	sh(t, "ip", "-n", lbNS, "link", "set", lbIf, "address", net6(lbMAC), "up")
	sh(t, "ip", "-n", genNS, "link", "set", "lo", "up")
	sh(t, "ip", "-n", lbNS, "link", "set", "lo", "up")
	sh(t, "ip", "-n", genNS, "addr", "add", genAddr.String()+"/24", "dev", genIf)
	sh(t, "ip", "-n", lbNS, "addr", "add", lbAddr.String()+"/24", "dev", lbIf)
}

func labDown() {
	exec.Command("ip", "netns", "del", genNS).Run()
	exec.Command("ip", "netns", "del", lbNS).Run()
}

func net6(m [6]byte) string {
	return fmt.Sprintf("%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5])
}

// buildRaild builds the daemon once per test binary.
var buildOnce struct {
	sync.Once
	path string
	err  error
}

func raildBinary(t *testing.T) string {
	buildOnce.Do(func() {
		// TestMain (privilege_lab_linux_test.go) removes dir after the tests.
		dir, err := os.MkdirTemp("", "raild-test")
		if err != nil {
			buildOnce.err = err
			return
		}
		buildOnce.path = filepath.Join(dir, "raild")
		out, err := exec.Command("go", "build", "-o", buildOnce.path, ".").CombinedOutput()
		if err != nil {
			buildOnce.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildOnce.err != nil {
		t.Fatal(buildOnce.err)
	}
	return buildOnce.path
}

const labMetrics = "127.0.0.1:9790"

// labConfig runs raild with the collector off (memory.policy off), so
// that TestLabForwardsGRE can see the policy hold: no cycle while the
// metrics scrapes make garbage.
func labConfig(t *testing.T) string {
	return writeLabConfig(t, "memory:\n  policy: off\n", "web", labVIP.String(), 65537, labBackends)
}

// writeLabConfig writes a configuration for raild on the lab's lb link with
// one TCP service on port 80 and its own admin socket (tests in other
// packages may run a raild at the same time); extra is more top-level keys.
func writeLabConfig(t *testing.T, extra, name, vip string, tableSize int, backends []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "interface: %s\nlocal_address: %s\n%smetrics_address: %s\nconntrack:\n  entries_per_core: 65536\n", lbIf, lbAddr, extra, labMetrics)
	fmt.Fprintf(&b, "services:\n  - name: %s\n    vip: %s\n    port: 80\n    protocol: tcp\n    table_size: %d\n    backends:\n", name, vip, tableSize)
	for _, a := range backends {
		fmt.Fprintf(&b, "      - address: %s\n", a)
	}
	dir := t.TempDir()
	fmt.Fprintf(&b, "api:\n  socket: %s\n", filepath.Join(dir, "raild.sock"))
	p := filepath.Join(dir, "rail.yaml")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// daemon is raild running in the lb namespace.
type daemon struct {
	cmd *exec.Cmd
	log *syncBuffer
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startCmd starts cmd and kills it when the test ends, if it still runs.
func startCmd(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
}

func startRaild(t *testing.T, cfg string, extra ...string) *daemon {
	t.Helper()
	d := &daemon{log: &syncBuffer{}}
	d.cmd = exec.Command("ip", append([]string{"netns", "exec", lbNS, raildBinary(t), "run", "--config", cfg}, extra...)...)
	d.cmd.Stdout, d.cmd.Stderr = d.log, d.log
	startCmd(t, d.cmd)
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(d.log.String(), "msg=metrics") {
		if time.Now().After(deadline) || d.exited() {
			t.Fatalf("raild did not start:\n%s", d.log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return d
}

func (d *daemon) exited() bool {
	return d.cmd.ProcessState != nil || d.cmd.Process.Signal(syscall.Signal(0)) != nil
}

// stop signals raild and returns its exit code.
func (d *daemon) stop(t *testing.T, sig syscall.Signal) int {
	t.Helper()
	d.cmd.Process.Signal(sig)
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		d.cmd.Process.Kill()
		<-done
		t.Fatalf("raild did not stop on %v:\n%s", sig, d.log)
	}
	return d.cmd.ProcessState.ExitCode()
}

// xdpAttached reports whether an XDP program is attached to the lb link.
func xdpAttached(t *testing.T) bool {
	out := sh(t, "ip", "-n", lbNS, "-d", "link", "show", "dev", lbIf)
	return strings.Contains(out, "prog/xdp") || strings.Contains(out, "xdpgeneric") || strings.Contains(out, " xdp ")
}

// inNetns runs fn on an OS thread switched into the named namespace.
func inNetns(t *testing.T, name string, fn func()) {
	t.Helper()
	if err := netnstest.Do(name, fn); err != nil {
		t.Error(err)
	}
}

// scrape fetches the metrics from inside the lb namespace.
func scrape(t *testing.T) map[string]float64 {
	t.Helper()
	m := map[string]float64{}
	var conn net.Conn
	inNetns(t, lbNS, func() {
		// The socket must be made on this thread, inside the namespace;
		// http.Transport would dial from another goroutine.
		var err error
		if conn, err = net.DialTimeout("tcp", labMetrics, 5*time.Second); err != nil {
			t.Error(err)
		}
	})
	if conn == nil {
		return m
	}
	func() {
		tr := &http.Transport{DialContext: func(context.Context, string, string) (net.Conn, error) { return conn, nil }}
		c := &http.Client{Timeout: 5 * time.Second, Transport: tr}
		resp, err := c.Get("http://" + labMetrics + "/metrics")
		if err != nil {
			t.Error(err)
			return
		}
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			var v float64
			line := sc.Text()
			i := strings.LastIndexByte(line, ' ')
			if i < 0 || strings.HasPrefix(line, "#") {
				continue
			}
			fmt.Sscan(line[i+1:], &v)
			m[line[:i]] = v
		}
	}()
	return m
}

func sum(m map[string]float64, prefix string) float64 {
	var s float64
	for k, v := range m {
		if strings.HasPrefix(k, prefix) {
			s += v
		}
	}
	return s
}

// greFrames builds flows×reps GRE frames to the VIP, flow by flow
// interleaved, plus extra frames that are not ours.
func greFrames(t *testing.T, flows, reps int) [][]byte {
	var frames [][]byte
	for r := 0; r < reps; r++ {
		for i := 0; i < flows; i++ {
			f, err := bench.AppendGRE(nil, bench.GRESpec{
				RouterMAC: genMAC, NodeMAC: lbMAC, Router: genAddr, Local: lbAddr,
				Flow: bench.FlowN(i*67, labVIP, 80), Payload: 18 + r,
			})
			if err != nil {
				t.Fatal(err)
			}
			frames = append(frames, f)
		}
	}
	return frames
}

// capture runs tcpdump in the generator namespace until stopped.
type capture struct {
	cmd  *exec.Cmd
	file string
	errb *syncBuffer
}

func startCapture(t *testing.T, filter string) *capture {
	c := &capture{file: filepath.Join(t.TempDir(), "cap.pcap"), errb: &syncBuffer{}}
	c.cmd = exec.Command("ip", "netns", "exec", genNS, "tcpdump", "--immediate-mode", "-i", genIf, "-nn", "-U", "-s", "2048", "-w", c.file, filter)
	c.cmd.Stderr = c.errb
	if err := c.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(c.errb.String(), "listening on") {
		if time.Now().After(deadline) {
			t.Fatalf("tcpdump did not start: %s", c.errb)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return c
}

func (c *capture) stop(t *testing.T) [][]byte {
	time.Sleep(500 * time.Millisecond)
	c.cmd.Process.Signal(syscall.SIGINT)
	c.cmd.Wait()
	return readFrames(t, c.file)
}

// readFrames returns every frame of a pcap file.
func readFrames(t *testing.T, path string) [][]byte {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	var frames [][]byte
	for {
		data, _, err := r.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		frames = append(frames, append([]byte(nil), data...))
	}
	return frames
}

// sendTrafgen sends frames once each, in order, with trafgen from the
// generator namespace.
func sendTrafgen(t *testing.T, frames [][]byte) {
	cfg := filepath.Join(t.TempDir(), "frames.cfg")
	f, err := os.Create(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := bench.WriteTrafgen(f, frames); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// -t: a small gap so that the copy-mode veth path never overruns the
	// rx ring in this correctness test (throughput is measured elsewhere).
	sh(t, "ip", "netns", "exec", genNS, "trafgen", "--dev", genIf, "--conf", cfg,
		"-n", fmt.Sprint(len(frames)), "-t", "200us", "--no-sock-mem", "-q")
}

func outerDst(f []byte) netip.Addr {
	if len(f) < 34 || binary.BigEndian.Uint16(f[12:]) != 0x0800 {
		return netip.Addr{}
	}
	return netip.AddrFrom4([4]byte(f[30:34]))
}

func TestLabForwardsGRE(t *testing.T) {
	privtest.Require(t, "ip", "tcpdump", "trafgen", "ping")
	labUp(t)
	d := startRaild(t, labConfig(t))
	if !xdpAttached(t) {
		t.Fatalf("no XDP program on %s after start:\n%s", lbIf, d.log)
	}

	const flows, reps = 60, 4
	sent := greFrames(t, flows, reps)
	gcBefore, ok := scrape(t)["rail_gc_cycles_total"]
	if !ok {
		t.Fatal("no rail_gc_cycles_total in the metrics")
	}
	// Frames that are not ours: GRE to the VIP on a port with no service,
	// and plain UDP to the node's own address. The steering program must
	// leave them to the kernel and count them.
	noService, notOurs := otherFrames(t, 10)
	capt := startCapture(t, "ip proto 47")
	sendTrafgen(t, append(append(append([][]byte(nil), sent...), noService...), notOurs...))

	// ping (and the ARP it needs, no static neighbours here) must keep
	// working while raild runs: the steering program passes what is not ours.
	if out, err := exec.Command("ip", "netns", "exec", genNS, "ping", "-c", "3", "-i", "0.2", "-W", "2", lbAddr.String()).CombinedOutput(); err != nil {
		t.Errorf("ping to the node failed while raild runs: %v\n%s", err, out)
	}
	frames := capt.stop(t)

	var in, out [][]byte
	for _, f := range frames {
		if outerDst(f) == lbAddr {
			in = append(in, f)
		} else {
			out = append(out, f)
		}
	}
	if len(in) != len(sent)+len(noService) {
		t.Fatalf("capture saw %d of %d sent GRE frames", len(in), len(sent)+len(noService))
	}
	if len(out) != len(sent) {
		t.Fatalf("%d frames sent, %d came back from raild\n%s", len(sent), len(out), d.log)
	}
	checkForwarded(t, sent, out)

	m := scrape(t)
	if got := sum(m, "rail_tx_packets_total"); got != float64(len(sent)) {
		t.Errorf("rail_tx_packets_total = %v, want %d", got, len(sent))
	}
	if got := sum(m, "rail_service_backend_packets_total"); got != float64(len(sent)) {
		t.Errorf("per-backend counters sum to %v, want %d", got, len(sent))
	}
	if got := passes(m, "no_service"); got != float64(len(noService)) {
		t.Errorf("rail_pass_packets_total{reason=no_service} = %v, want %d", got, len(noService))
	}
	if got := passes(m, "not_ours"); got < float64(len(notOurs)) {
		t.Errorf("rail_pass_packets_total{reason=not_ours} = %v, want at least %d", got, len(notOurs))
	}
	// memory.policy off: once started, raild runs no GC cycle (that the
	// data path allocates nothing is pipeline's TestLoopPollNoAllocs).
	if gc := m["rail_gc_cycles_total"]; gc != gcBefore {
		t.Errorf("%v garbage-collection cycles while forwarding", gc-gcBefore)
	}
	if got := sum(m, `rail_umem_frames{queue="0"`); got != 4096 {
		t.Errorf("UMEM frames add up to %v, want 4096", got)
	}

	// Replay the frames that went in: the offline pipeline must produce
	// exactly the frames the live path sent.
	replayed := replayFrames(t, in)
	if len(replayed) != len(out) {
		t.Fatalf("replay forwarded %d frames, live %d", len(replayed), len(out))
	}
	for i := range out {
		if !bytes.Equal(replayed[i], out[i]) {
			t.Fatalf("frame %d: replay and live differ:\nreplay %x\nlive   %x", i, replayed[i], out[i])
		}
	}

	if code := d.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("raild exited %d on SIGTERM:\n%s", code, d.log)
	}
	if xdpAttached(t) {
		t.Errorf("XDP program still attached after SIGTERM")
	}
	if !strings.Contains(d.log.String(), "detached") {
		t.Errorf("raild did not log the detach:\n%s", d.log)
	}

	// A crashed daemon (SIGKILL) must leave the NIC to the kernel too: the
	// program is attached through a bpf_link that dies with the process.
	d = startRaild(t, labConfig(t))
	d.stop(t, syscall.SIGKILL)
	deadline := time.Now().Add(5 * time.Second)
	for xdpAttached(t) {
		if time.Now().After(deadline) {
			t.Fatal("XDP program still attached 5 s after SIGKILL")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// passes sums rail_pass_packets_total for one reason over queues and CPUs.
func passes(m map[string]float64, reason string) float64 {
	return sumWith(m, "rail_pass_packets_total", `reason="`+reason+`"`)
}

// sumWith sums the series of metric that carry label (e.g. reason="x")
// over the other labels.
func sumWith(m map[string]float64, metric, label string) float64 {
	var s float64
	for k, v := range m {
		if strings.HasPrefix(k, metric+"{") && strings.Contains(k, label) {
			s += v
		}
	}
	return s
}

// otherFrames returns n GRE frames to the VIP on a port no service has and
// n plain UDP frames to the node's own address (port 9, discard).
func otherFrames(t *testing.T, n int) (noService, notOurs [][]byte) {
	for i := 0; i < n; i++ {
		f, err := bench.AppendGRE(nil, bench.GRESpec{
			RouterMAC: genMAC, NodeMAC: lbMAC, Router: genAddr, Local: lbAddr,
			Flow: bench.FlowN(i, labVIP, 8080), Payload: 18,
		})
		if err != nil {
			t.Fatal(err)
		}
		noService = append(noService, f)
		ip := &layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolUDP, SrcIP: genAddr.AsSlice(), DstIP: lbAddr.AsSlice()}
		udp := &layers.UDP{SrcPort: layers.UDPPort(30000 + i), DstPort: 9}
		udp.SetNetworkLayerForChecksum(ip)
		buf := gopacket.NewSerializeBuffer()
		if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
			&layers.Ethernet{SrcMAC: genMAC[:], DstMAC: lbMAC[:], EthernetType: layers.EthernetTypeIPv4}, ip, udp, gopacket.Payload("not ours")); err != nil {
			t.Fatal(err)
		}
		notOurs = append(notOurs, append([]byte(nil), buf.Bytes()...))
	}
	return noService, notOurs
}

// checkForwarded checks every returned frame against the egress frame of
// docs/reference.md (Packet model) and the flow it came from.
func checkForwarded(t *testing.T, sent, out [][]byte) {
	t.Helper()
	inner := map[string]bool{}
	for _, f := range sent {
		inner[string(f[38:])] = true
	}
	flowBackend := map[string]netip.Addr{}
	perBackend := map[netip.Addr]int{}
	for i, f := range out {
		p := gopacket.NewPacket(f, layers.LayerTypeEthernet, gopacket.Default)
		eth, _ := p.Layer(layers.LayerTypeEthernet).(*layers.Ethernet)
		ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		gre, _ := p.Layer(layers.LayerTypeGRE).(*layers.GRE)
		if eth == nil || ip == nil || gre == nil {
			t.Fatalf("frame %d does not decode as Ethernet/IPv4/GRE: %x", i, f)
		}
		if !bytes.Equal(eth.DstMAC, genMAC[:]) || !bytes.Equal(eth.SrcMAC, lbMAC[:]) {
			t.Errorf("frame %d: MACs %v → %v, want back to the router", i, eth.SrcMAC, eth.DstMAC)
		}
		src, _ := netip.AddrFromSlice(ip.SrcIP)
		dst, _ := netip.AddrFromSlice(ip.DstIP)
		if src != lbAddr || ip.TTL != 64 || ip.Protocol != layers.IPProtocolGRE {
			t.Errorf("frame %d: outer %v → %v ttl %d proto %v", i, src, dst, ip.TTL, ip.Protocol)
		}
		if !strings.HasPrefix(dst.String(), "10.1.0.1") {
			t.Errorf("frame %d: outer destination %v is not a backend", i, dst)
		}
		if gre.Version != 0 || gre.ChecksumPresent || gre.KeyPresent || gre.SeqPresent || gre.Protocol != layers.EthernetTypeIPv4 {
			t.Errorf("frame %d: GRE %+v", i, gre)
		}
		var cs uint32
		for j := 14; j < 34; j += 2 {
			cs += uint32(binary.BigEndian.Uint16(f[j:]))
		}
		for cs>>16 != 0 {
			cs = cs&0xffff + cs>>16
		}
		if cs != 0xffff {
			t.Errorf("frame %d: bad outer checksum", i)
		}
		body := f[38:]
		if !inner[string(body)] {
			t.Errorf("frame %d: inner packet is not one that was sent", i)
		}
		flow := string(body[12:20]) + string(body[20:24]) // addresses and ports
		if b, ok := flowBackend[flow]; ok && b != dst {
			t.Errorf("frame %d: flow moved from %v to %v", i, b, dst)
		}
		flowBackend[flow] = dst
		perBackend[dst]++
	}
	if len(perBackend) != len(labBackends) {
		t.Errorf("backends used: %v, want all %d", perBackend, len(labBackends))
	}
	t.Logf("per backend: %v", perBackend)
}

// replayFrames runs frames through `raild replay` with the lab
// configuration and returns its output.
func replayFrames(t *testing.T, frames [][]byte) [][]byte {
	return replayFramesWith(t, labConfig(t), frames)
}

// replayFramesWith runs frames through `raild replay --config cfg`.
func replayFramesWith(t *testing.T, cfg string, frames [][]byte) [][]byte {
	dir := t.TempDir()
	inPath, outPath := filepath.Join(dir, "in.pcap"), filepath.Join(dir, "out.pcap")
	f, err := os.Create(inPath)
	if err != nil {
		t.Fatal(err)
	}
	w := pcapgo.NewWriter(f)
	w.WriteFileHeader(65535, layers.LinkTypeEthernet)
	for _, fr := range frames {
		w.WritePacket(gopacket.CaptureInfo{Timestamp: time.Now(), CaptureLength: len(fr), Length: len(fr)}, fr)
	}
	f.Close()
	sh(t, raildBinary(t), "replay", "--config", cfg, "--in", inPath, "--out", outPath)
	return readFrames(t, outPath)
}
