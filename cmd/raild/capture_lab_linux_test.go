package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket/pcapgo"

	"github.com/rail-lb/rail/internal/privtest"
)

// TestLabCapture: raild forwards traffic while `railctl capture` clients
// come and go. Three captures at once — one of the web service, one of
// drops, one by 5-tuple and reason piped into tshark — return what they were asked for, as pcapng tshark reads without
// an error; the transmitted copies are byte for byte what the generator
// side received; the comments name the backends the metrics count. A
// capture whose reader reads nothing for 2 s loses copies, counted, and
// raild forwards exactly as many packets as without a capture.
func TestLabCapture(t *testing.T) {
	privtest.Require(t, "ip", "tcpdump", "trafgen", "tshark")
	labUp(t)
	cfg := labConfig(t)
	d := startRaild(t, cfg)
	sock := filepath.Join(filepath.Dir(cfg), "raild.sock")
	ctl := railctlBinary(t)
	dir := t.TempDir()

	web := greFrames(t, 60, 1)
	// GRE version 1: the worker drops them (unsupported) before it knows
	// their service.
	var drops [][]byte
	for _, f := range greFrames(t, 10, 1) {
		f = append([]byte(nil), f...)
		f[35] |= 1
		drops = append(drops, f)
	}

	running := func(n float64) func() bool {
		return func() bool { return scrape(t)["rail_captures_running"] == n }
	}
	type client struct {
		cmd          *exec.Cmd
		file         string
		stdout, errb *syncBuffer
	}
	start := func(name string, args ...string) *client {
		c := &client{file: filepath.Join(dir, name+".pcapng"), stdout: &syncBuffer{}, errb: &syncBuffer{}}
		c.cmd = exec.Command(ctl, append([]string{"--socket", sock, "capture", "-w", c.file}, args...)...)
		c.cmd.Stdout, c.cmd.Stderr = c.stdout, c.errb
		startCmd(t, c.cmd)
		return c
	}
	wait := func(c *client) {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- c.cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("railctl capture: %v\n%s", err, c.errb)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("railctl capture did not finish:\n%s\nraild:\n%s", c.errb, d.log)
		}
	}

	// Both captures run before the traffic starts.
	webCap := start("web", "--service", "web", "--count", "100")
	dropCap := start("drops", "--verdict", "drop", "--count", "20")
	// A third, into tshark through a pipe.
	piped := exec.Command("bash", "-o", "pipefail", "-c", ctl+" --socket "+sock+
		" capture -w - --dport 80 --proto tcp --reason none --count 10 | tshark -r - -T fields -e frame.interface_id -e frame.comment")
	var pipedOut, pipedErr syncBuffer
	piped.Stdout, piped.Stderr = &pipedOut, &pipedErr
	startCmd(t, piped)
	waitFor(t, 5*time.Second, "three captures running", running(3))
	gen := startCapture(t, "ip proto 47 and src host "+lbAddr.String())
	traffic := trafgenBackground(t, append(append([][]byte(nil), web...), drops...), "200us", 40)
	wait(webCap)
	wait(dropCap)
	if err := piped.Wait(); err != nil {
		t.Errorf("railctl capture -w - | tshark -r -: %v\n%s", err, pipedErr.String())
	}
	lines := strings.Split(strings.TrimSpace(pipedOut.String()), "\n")
	if len(lines) != 20 || strings.Count(pipedOut.String(), "verdict=tx reason=- service=web") != 20 {
		t.Errorf("railctl capture -w - | tshark -r - printed %d lines, want 20 (10 received, 10 transmitted):\n%s", len(lines), pipedOut.String())
	}
	traffic()
	returned := gen.stop(t)
	m := scrape(t)

	// The web capture: 100 packets as received, each forwarded, so 100
	// transmitted copies, every one of them a frame the generator got.
	pkts := tsharkRead(t, webCap.file)
	var rx, tx int
	seen := map[string]int{}
	for _, p := range pkts {
		if p.iface == "0" {
			rx++
			continue
		}
		tx++
		found := false
		for _, f := range returned {
			found = found || bytes.Equal(f, p.data)
		}
		if !found {
			t.Errorf("transmitted copy %x is no frame the generator received", p.data)
		}
		b := field(p.comment, "backend")
		if dst := outerDst(p.data).String(); b != dst {
			t.Errorf("comment names backend %s, the frame goes to %s", b, dst)
		}
		if !strings.Contains(p.comment, "verdict=tx reason=- service=web") || !strings.Contains(p.comment, "queue=0") {
			t.Errorf("comment %q", p.comment)
		}
		seen[b]++
	}
	if rx != 100 || tx != 100 {
		t.Errorf("web capture: %d received, %d transmitted; want 100 and 100", rx, tx)
	}
	for b, n := range seen {
		if got := m[fmt.Sprintf(`rail_service_backend_packets_total{service="web",backend=%q}`, b)]; got < float64(n) {
			t.Errorf("the capture has %d packets to %s, the metrics %v", n, b, got)
		}
	}
	if len(seen) != len(labBackends) {
		t.Errorf("backends in the capture: %v, want all of %v", seen, labBackends)
	}
	if out, err := exec.Command("tshark", "-r", webCap.file, "-c", "4", "-T", "fields", "-e", "frame.interface_name", "-e", "ip.dst", "-e", "frame.comment").Output(); err == nil {
		t.Logf("railctl: %stshark -r web.pcapng:\n%s", webCap.errb, out)
	}
	if !strings.Contains(webCap.errb.String(), "100 packets captured, 0 lost") {
		t.Errorf("railctl said %q", webCap.errb)
	}

	// The drop capture: drops only.
	pkts = tsharkRead(t, dropCap.file)
	if len(pkts) != 20 {
		t.Errorf("drop capture: %d packets, want 20", len(pkts))
	}
	for _, p := range pkts {
		if p.iface != "0" || !strings.HasPrefix(p.comment, "verdict=drop reason=unsupported service=- backend=-") {
			t.Errorf("drop capture holds interface %s, %q", p.iface, p.comment)
		}
	}

	// A slow reader: the same burst with no capture, then with a capture
	// whose output nobody reads for 2 s.
	burst := web
	const loops = 170
	forwarded := func() float64 {
		before := sum(scrape(t), "rail_tx_packets_total")
		trafgenBackground(t, burst, "200us", loops)()
		var after float64
		waitFor(t, 5*time.Second, "the burst forwarded", func() bool {
			after = sum(scrape(t), "rail_tx_packets_total")
			return after-before >= float64(len(burst)*loops)
		})
		time.Sleep(200 * time.Millisecond)
		return sum(scrape(t), "rail_tx_packets_total") - before
	}
	without := forwarded()
	droppedBefore := sum(scrape(t), "rail_capture_dropped_total")
	slow := exec.Command(ctl, "--socket", sock, "capture", "-w", "-", "--service", "web", "--duration", "6s")
	out, err := slow.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	slowErr := &syncBuffer{}
	slow.Stderr = slowErr
	startCmd(t, slow)
	waitFor(t, 5*time.Second, "the slow capture running", running(1))
	stalled := time.Now()
	with := forwarded()
	if s := time.Since(stalled); s < 2*time.Second {
		time.Sleep(2*time.Second - s)
	}
	stream, err := io.ReadAll(out) // now read: to the end of the capture
	if err != nil {
		t.Fatal(err)
	}
	if err := slow.Wait(); err != nil {
		t.Fatalf("slow capture: %v\n%s", err, slowErr)
	}
	lost := sum(scrape(t), "rail_capture_dropped_total") - droppedBefore
	t.Logf("burst of %d: forwarded %v without a capture, %v with a stalled one; the capture lost %v copies (%s), streamed %d bytes",
		len(burst)*loops, without, with, lost, strings.TrimSpace(slowErr.String()), len(stream))
	if without != float64(len(burst)*loops) || with != without {
		t.Errorf("forwarded %v with a stalled capture, %v without; want %d both times", with, without, len(burst)*loops)
	}
	mm := regexp.MustCompile(`(\d+) packets captured, (\d+) lost`).FindStringSubmatch(slowErr.String())
	if lost == 0 || mm == nil || mm[2] != fmt.Sprint(lost) {
		t.Errorf("a reader stalled for 2 s lost %v copies (metric), railctl said %q", lost, slowErr)
	}
	// What it did stream is a valid capture too.
	f := filepath.Join(dir, "slow.pcapng")
	os.WriteFile(f, stream, 0o644)
	if n := len(tsharkRead(t, f)); n == 0 {
		t.Error("the slow capture holds nothing")
	}

	// Bad filters: one line, exit 1, no file.
	for _, args := range [][]string{{"--verdict", "maybe"}, {"--service", "nope"}, {"--src", "1.2.3"}} {
		bad := filepath.Join(dir, "bad.pcapng")
		cmd := exec.CommandContext(context.Background(), ctl, append([]string{"--socket", sock, "capture", "-w", bad}, args...)...)
		var errb bytes.Buffer
		cmd.Stderr = &errb
		err := cmd.Run()
		if err == nil || strings.Count(strings.TrimSpace(errb.String()), "\n") != 0 || !strings.HasPrefix(errb.String(), "railctl: ") {
			t.Errorf("railctl capture %v: %v, %q; want exit 1 and one line", args, err, errb.String())
		}
		if _, err := os.Stat(bad); err == nil {
			t.Errorf("railctl capture %v created %s", args, bad)
		}
	}
	if n := scrape(t)["rail_captures_running"]; n != 0 {
		t.Errorf("%v captures still running", n)
	}
}

// tsharkPacket is one record of a pcapng as tshark reads it.
type tsharkPacket struct {
	iface, comment string
	data           []byte
}

// tsharkRead reads a pcapng with tshark, failing on any error it
// reports; the frames' bytes come from gopacket's reader, record by
// record.
func tsharkRead(t *testing.T, file string) []tsharkPacket {
	t.Helper()
	var errb bytes.Buffer
	cmd := exec.Command("tshark", "-r", file, "-T", "fields", "-E", "separator=|", "-e", "frame.interface_id", "-e", "frame.comment")
	cmd.Stderr = &errb
	out, err := cmd.Output()
	for _, l := range strings.Split(strings.TrimSpace(errb.String()), "\n") {
		if l != "" && !strings.Contains(l, "Running as user") && !strings.Contains(l, "could be dangerous") {
			t.Errorf("tshark -r %s: %s", file, l)
		}
	}
	if err != nil {
		t.Fatalf("tshark -r %s: %v", file, err)
	}
	var pkts []tsharkPacket
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.SplitN(l, "|", 2); len(f) == 2 {
			pkts = append(pkts, tsharkPacket{iface: f[0], comment: f[1]})
		}
	}
	fh, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	r, err := pcapgo.NewNgReader(fh, pcapgo.DefaultNgReaderOptions)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; ; i++ {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			if i != len(pkts) {
				t.Fatalf("%s: tshark read %d packets, gopacket %d", file, len(pkts), i)
			}
			return pkts
		}
		if err != nil {
			t.Fatal(err)
		}
		if i >= len(pkts) || pkts[i].iface != fmt.Sprint(ci.InterfaceIndex) {
			t.Fatalf("%s: packet %d: tshark and gopacket disagree", file, i)
		}
		pkts[i].data = append([]byte(nil), data...)
	}
}

// field returns key's value in a capture comment "k=v k=v …".
func field(comment, key string) string {
	for _, kv := range strings.Fields(comment) {
		if v, ok := strings.CutPrefix(kv, key+"="); ok {
			return v
		}
	}
	return ""
}
