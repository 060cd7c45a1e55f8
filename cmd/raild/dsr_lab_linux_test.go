package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/rail-lb/rail/internal/privtest"
)

// The direct-server-return lab (tools/dsr-lab.sh, prefix rd-t-): a client
// namespace, a router, the Rail node and four nginx backends with the decap
// program; raild serves be1..be3 (be4 is there to be added). Real curl and
// wrk in the client, real nginx on the backends, replies straight back.
const (
	dsrPrefix   = "rd-t-"
	dsrClient   = dsrPrefix + "client"
	dsrVIP      = "192.0.2.10"
	dsrMetrics  = "127.0.0.1:9792"
	dsrInterval = 200 * time.Millisecond
	dsrRise     = 2
	dsrFall     = 3
)

func dsrAddr(i int) string { return fmt.Sprintf("10.1.0.1%d", i) }

type dsrLab struct {
	dir, script, cfg, sock string
	d                      *daemon
	top                    *testing.T // raild lives as long as this test, not a subtest
	ports                  map[int]portUse
}

func dsrLabUp(t *testing.T) *dsrLab {
	t.Helper()
	privtest.Require(t, "nginx", "curl", "wrk")
	// /slow/ is paced by nginx itself (limit_rate): a download that lasts
	// about 4.8 s on the wire. A client-side limit (curl --limit-rate) would
	// not do: the whole file fits in the socket buffers within a second.
	l := dsrLabNet(t, "--backends", "4", "--slow-rate", "1m")
	var b strings.Builder
	fmt.Fprintf(&b, "interface: lb0\nlocal_address: 10.0.0.2\nnext_hop: ingress\nmetrics_address: %s\n", dsrMetrics)
	fmt.Fprintf(&b, "api:\n  socket: %s\nconntrack:\n  entries_per_core: 65536\n", l.sock)
	fmt.Fprintf(&b, "services:\n  - name: web\n    vip: %s\n    port: 80\n    protocol: tcp\n    table_size: 65537\n", dsrVIP)
	fmt.Fprintf(&b, "    health: {type: http, path: /healthz, interval: %v, timeout: 150ms, rise: %d, fall: %d}\n", dsrInterval, dsrRise, dsrFall)
	b.WriteString("    backends:\n")
	for i := 1; i <= 3; i++ {
		fmt.Fprintf(&b, "      - {address: %s, name: be%d}\n", dsrAddr(i), i)
	}
	l.cfg = filepath.Join(l.dir, "rail.yaml")
	if err := os.WriteFile(l.cfg, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	l.start(t)
	return l
}

// dsrLabNet builds the lab's network (tools/dsr-lab.sh up with args, torn
// down when t ends) and points startRaild at its node; raild is not
// started.
func dsrLabNet(t *testing.T, args ...string) *dsrLab {
	t.Helper()
	privtest.Require(t, "ip", "ethtool", "mount")
	script, err := filepath.Abs("../../tools/dsr-lab.sh")
	if err != nil {
		t.Fatal(err)
	}
	l := &dsrLab{dir: t.TempDir(), script: script, top: t, ports: map[int]portUse{}}
	down := func() { exec.Command(script, "down", "--prefix", dsrPrefix, "--dir", l.dir).Run() }
	down()
	t.Cleanup(down)
	sh(t, append([]string{script, "up", "--prefix", dsrPrefix, "--raild", raildBinary(t), "--dir", l.dir}, args...)...)

	// startRaild and friends work on lbNS/lbIf: point them at this lab.
	oldNS, oldIf := lbNS, lbIf
	lbNS, lbIf = dsrPrefix+"lb", "lb0"
	t.Cleanup(func() { lbNS, lbIf = oldNS, oldIf })
	l.sock = filepath.Join(l.dir, "raild.sock")
	return l
}

// start runs raild and waits until it has checked every backend healthy.
func (l *dsrLab) start(t *testing.T) {
	t.Helper()
	l.d = startRaild(l.top, l.cfg)
	for i := 1; i <= 3; i++ {
		waitFor(t, 3*time.Second, "be"+strconv.Itoa(i)+" healthy", func() bool { return backendView(t, l.sock, dsrAddr(i)).Healthy })
	}
}

func (l *dsrLab) nginx(t *testing.T, what string, i int) {
	t.Helper()
	sh(t, l.script, "nginx", what, strconv.Itoa(i), "--prefix", dsrPrefix, "--dir", l.dir)
}

// api sends a request with a JSON body to raild's admin socket.
func (l *dsrLab) api(t *testing.T, method, path string, body any, want int) {
	t.Helper()
	var rd *bytes.Reader
	if body != nil {
		j, _ := json.Marshal(body)
		rd = bytes.NewReader(j)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, "http://raild"+path, rd)
	c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: unixDialer(l.sock)}}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Fatalf("%s %s: %s, want %d", method, path, resp.Status, want)
	}
}

// outcome of one HTTP request from the client: the status (0: no answer)
// and the backend that answered.
type outcome struct {
	code    int
	backend string
	port    int // the client's source port
	// The last earlier request through the VIP from the same port, if any
	// (viaVIP): the same flow to raild's connection table.
	prev    string
	prevAge time.Duration
}

type portUse struct {
	backend string
	at      time.Time
}

// viaVIP makes n requests through the VIP and notes, for each, the last
// earlier request from the same client port.
func (l *dsrLab) viaVIP(t *testing.T, n int) []outcome {
	t.Helper()
	res := requests(t, "http://"+dsrVIP+"/", n)
	now := time.Now()
	for i, o := range res {
		if u, ok := l.ports[o.port]; ok {
			res[i].prev, res[i].prevAge = u.backend, now.Sub(u.at)
		}
		if o.code == 200 {
			l.ports[o.port] = portUse{o.backend, now}
		}
	}
	return res
}

// requests makes n HTTP requests to url from the client with one curl, a
// new connection (a new flow) for each, and returns what each got.
func requests(t *testing.T, url string, n int) []outcome {
	t.Helper()
	// curl walks the [1-n] range in order; "Connection: close" makes nginx
	// end every connection, so the next request opens a new one from a new
	// port. Failed transfers print 000 and curl goes on.
	cmd := exec.Command("ip", "netns", "exec", dsrClient, "curl", "-s", "--connect-timeout", "1", "-m", "2",
		"-H", "Connection: close", "-w", `%{http_code} %{local_port}\n`, fmt.Sprintf("%s?r=[1-%d]", url, n))
	out, _ := cmd.Output() // non-zero when any transfer failed: counted below
	var res []outcome
	name := ""
	for _, line := range strings.Split(string(out), "\n") {
		switch {
		case strings.HasPrefix(line, "be"):
			name = line
		case line != "":
			var o outcome
			if _, err := fmt.Sscan(line, &o.code, &o.port); err != nil {
				t.Fatalf("curl printed %q", line)
			}
			o.backend = name
			res = append(res, o)
			name = ""
		}
	}
	if len(res) != n {
		t.Fatalf("%d results from curl, want %d:\n%s", len(res), n, out)
	}
	return res
}

// tally counts answers per backend and the requests that did not get 200.
func tally(res []outcome) (per map[string]int, failed int) {
	per = map[string]int{}
	for _, r := range res {
		if r.code != 200 {
			failed++
			continue
		}
		per[r.backend]++
	}
	return per, failed
}

// stream is a long download through the VIP: curl at a limited rate.
type stream struct {
	cmd       *exec.Cmd
	out, hdr  string
	errb      *syncBuffer
	started   time.Time
	want      [32]byte
	wantBytes int
}

func (l *dsrLab) startStream(t *testing.T) *stream {
	t.Helper()
	big, err := os.ReadFile(filepath.Join(l.dir, "big"))
	if err != nil {
		t.Fatal(err)
	}
	d := t.TempDir()
	s := &stream{out: filepath.Join(d, "body"), hdr: filepath.Join(d, "headers"), errb: &syncBuffer{},
		want: sha256.Sum256(big), wantBytes: len(big)}
	s.cmd = exec.Command("ip", "netns", "exec", dsrClient, "curl", "-sS", "-m", "60",
		"-D", s.hdr, "-o", s.out, "http://"+dsrVIP+"/slow/big")
	s.cmd.Stderr = s.errb
	s.started = time.Now()
	startCmd(t, s.cmd)
	return s
}

var backendHeader = regexp.MustCompile(`(?i)x-backend: (be[0-9])`)

// backend waits for the response headers and returns who is sending.
func (s *stream) backend(t *testing.T) string {
	t.Helper()
	var who string
	waitFor(t, 3*time.Second, "stream headers", func() bool {
		h, _ := os.ReadFile(s.hdr)
		if m := backendHeader.FindSubmatch(h); m != nil {
			who = string(m[1])
			return true
		}
		return false
	})
	return who
}

// received is how many body bytes have arrived so far.
func (s *stream) received() int64 {
	fi, err := os.Stat(s.out)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// finish waits for the download and checks it byte for byte.
func (s *stream) finish(t *testing.T) time.Duration {
	t.Helper()
	if err := s.cmd.Wait(); err != nil {
		t.Fatalf("stream: curl: %v: %s (received %d of %d bytes)", err, s.errb, s.received(), s.wantBytes)
	}
	took := time.Since(s.started)
	got, err := os.ReadFile(s.out)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != s.wantBytes || sha256.Sum256(got) != s.want {
		t.Fatalf("stream: %d bytes received, want %d, identical: %v", len(got), s.wantBytes, sha256.Sum256(got) == s.want)
	}
	return took
}

// wrkRate runs wrk from the client for d and returns requests per second;
// non-2xx answers or socket errors fail the test.
func wrkRate(t *testing.T, url string, d time.Duration, close bool) float64 {
	t.Helper()
	args := []string{"netns", "exec", dsrClient, "timeout", "30", "wrk", "-t1", "-c16", "-d", fmt.Sprintf("%ds", int(d.Seconds()))}
	if close {
		args = append(args, "-H", "Connection: close")
	}
	out := sh(t, append([]string{"ip"}, append(args, url)...)...)
	if strings.Contains(out, "Non-2xx") || strings.Contains(out, "Socket errors") {
		t.Errorf("wrk %s: errors:\n%s", url, out)
	}
	m := regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("wrk printed no rate:\n%s", out)
	}
	r, _ := strconv.ParseFloat(m[1], 64)
	return r
}

// TestDSRLab: real clients through the load balancer, real servers behind
// it, direct return, and the failures a fleet lives through. One lab and
// one raild for the whole sequence (each step leaves the lab as it found
// it), which keeps it near 30 s.
func TestDSRLab(t *testing.T) {
	l := dsrLabUp(t)
	vipURL := "http://" + dsrVIP + "/"

	t.Run("2000 requests", func(t *testing.T) {
		per, failed := tally(l.viaVIP(t, 2000))
		t.Logf("2000 requests through the VIP, one connection each: %d failed, per backend %v", failed, per)
		if failed != 0 {
			t.Errorf("%d of 2000 requests did not get 200", failed)
		}
		for i := 1; i <= 3; i++ {
			n := per[fmt.Sprintf("be%d", i)]
			if even := 2000.0 / 3; float64(n) < 0.8*even || float64(n) > 1.2*even {
				t.Errorf("be%d answered %d, want within ±20%% of %.0f", i, n, even)
			}
		}
		if len(per) != 3 {
			t.Errorf("answers from %v, want be1..be3 only", per)
		}
	})

	t.Run("stream through add drain fail", func(t *testing.T) {
		s := l.startStream(t)
		own := s.backend(t)
		var others []int
		for i := 1; i <= 3; i++ {
			if fmt.Sprintf("be%d", i) != own {
				others = append(others, i)
			}
		}
		drained, failing := others[0], others[1]
		t.Logf("the stream comes from %s; be%d is drained, be%d fails, be4 is added", own, drained, failing)

		l.api(t, "POST", "/v1/services/web/backends", map[string]any{"address": dsrAddr(4), "name": "be4"}, http.StatusCreated)
		waitFor(t, 3*time.Second, "be4 healthy", func() bool { return backendView(t, l.sock, dsrAddr(4)).Healthy })
		l.api(t, "PUT", "/v1/services/web/backends/"+dsrAddr(drained), map[string]any{"weight": 0}, http.StatusOK)
		l.nginx(t, "stop", failing)
		waitFor(t, 3*time.Second, "failing backend down", func() bool { return !backendView(t, l.sock, dsrAddr(failing)).Healthy })
		mid := s.received()

		res := l.viaVIP(t, 300)
		per, failed := tally(res)
		// A drained backend keeps its flows but gets no new connection —
		// not even from a client reusing a port it served moments ago: a
		// SYN never rides an old connection entry.
		reused := 0
		for _, o := range res {
			if o.backend == fmt.Sprintf("be%d", drained) {
				t.Errorf("a new connection (port %d, last used: %q %v ago) went to the drained be%d", o.port, o.prev, o.prevAge, drained)
				reused++
			}
		}
		t.Logf("300 new requests while be%d is drained and be%d down: %d failed, per backend %v (be%d: %d)",
			drained, failing, failed, per, drained, reused)
		if failed != 0 || per[fmt.Sprintf("be%d", failing)] != 0 || per["be4"] == 0 {
			t.Errorf("want every request answered, none by be%d, some by be4: %d failed, %v", failing, failed, per)
		}
		if s.cmd.ProcessState != nil || s.received() <= mid && s.received() < int64(s.wantBytes) {
			t.Errorf("the stream did not move on (%d bytes)", s.received())
		}
		took := s.finish(t)
		t.Logf("stream: %d bytes from %s in %v, byte-exact", s.wantBytes, own, took.Round(time.Millisecond))

		// Back as it was.
		l.nginx(t, "start", failing)
		l.api(t, "PUT", "/v1/services/web/backends/"+dsrAddr(drained), map[string]any{"weight": 1}, http.StatusOK)
		l.api(t, "DELETE", "/v1/services/web/backends/"+dsrAddr(4), nil, http.StatusNoContent)
		waitFor(t, 3*time.Second, "failed backend back", func() bool { return backendView(t, l.sock, dsrAddr(failing)).Healthy })
	})

	t.Run("nginx stops and returns", func(t *testing.T) {
		const victim = 2
		name := fmt.Sprintf("be%d", victim)
		// The stop runs alongside: the requests start at once.
		stop := exec.Command(l.script, "nginx", "stop", strconv.Itoa(victim), "--prefix", dsrPrefix, "--dir", l.dir)
		stopped := time.Now()
		if err := stop.Start(); err != nil {
			t.Fatal(err)
		}
		defer stop.Wait()
		// Requests in batches of 10 until the node has taken the backend
		// out: the last failure bounds how long new requests still went to
		// it.
		var lastFail time.Duration
		total, fails := 0, 0
		for backendView(t, l.sock, dsrAddr(victim)).Healthy {
			if time.Since(stopped) > 3*time.Second {
				t.Fatal("backend not taken out within 3 s")
			}
			_, failed := tally(l.viaVIP(t, 10))
			total += 10
			if failed > 0 {
				fails += failed
				lastFail = time.Since(stopped)
			}
		}
		down := time.Since(stopped)
		// A connection refused is fast, so the batches after the check that
		// took it out may still have started before; allow one interval of
		// phase and one of batch time.
		limit := time.Duration(dsrFall+2) * dsrInterval
		t.Logf("%s stopped: out after %v (fall %d × interval %v); %d of %d requests failed meanwhile, the last %v after the stop",
			name, down.Round(time.Millisecond), dsrFall, dsrInterval, fails, total, lastFail.Round(time.Millisecond))
		if lastFail > limit {
			t.Errorf("a request failed %v after the stop, want within %v", lastFail, limit)
		}
		per, failed := tally(l.viaVIP(t, 300))
		if failed != 0 || per[name] != 0 {
			t.Errorf("after the node took %s out: %d of 300 failed, %d answered by it (%v)", name, failed, per[name], per)
		}

		l.nginx(t, "start", victim)
		back := waitFor(t, 3*time.Second, name+" healthy", func() bool { return backendView(t, l.sock, dsrAddr(victim)).Healthy })
		per, failed = tally(l.viaVIP(t, 300))
		t.Logf("%s back: healthy after %v (rise %d); then 300 requests: %d failed, per backend %v", name, back.Round(time.Millisecond), dsrRise, failed, per)
		if failed != 0 || per[name] < 50 {
			t.Errorf("after %s returned: %d failed, it answered %d of 300, want ≥ 50", name, failed, per[name])
		}
	})

	t.Run("raild restarts", func(t *testing.T) {
		s := l.startStream(t)
		own := s.backend(t)
		time.Sleep(500 * time.Millisecond)
		if code := l.d.stop(t, syscall.SIGTERM); code != 0 {
			t.Fatalf("raild exit %d:\n%s", code, l.d.log)
		}
		stoppedAt, stoppedBytes := time.Now(), s.received()
		// While it is down the node's kernel gets the packets to the VIP:
		// not its address, no forwarding: dropped. New connections time out.
		per, failed := tally(l.viaVIP(t, 2))
		if failed != 2 {
			t.Errorf("with raild stopped, %d of 2 requests were answered (%v)", 2-failed, per)
		}
		l.start(t)
		restarted := time.Since(stoppedAt)
		per, failed = tally(l.viaVIP(t, 100))
		if failed != 0 {
			t.Errorf("after the restart %d of 100 new requests failed (%v)", failed, per)
		}
		// The established download: its packets to the VIP (ACKs) get the
		// same backend from the same Maglev table, although the new
		// process's connection table is empty, so it resumes once TCP
		// retransmits.
		resumed := waitFor(t, 10*time.Second, "stream resumes", func() bool { return s.received() > stoppedBytes+64<<10 || s.cmd.ProcessState != nil })
		took := s.finish(t)
		t.Logf("raild down for %v (stop, 2 failed requests, start, first health checks); the stream from %s resumed %v after the restart and finished byte-exact in %v; 100 new requests after: %v",
			restarted.Round(time.Millisecond), own, resumed.Round(time.Millisecond), took.Round(time.Millisecond), per)
	})

	t.Run("requests per second", func(t *testing.T) {
		const d = 2 * time.Second
		for _, close := range []bool{true, false} {
			vip := wrkRate(t, vipURL, d, close)
			direct := wrkRate(t, "http://"+dsrAddr(1)+"/", d, close)
			kind := "keep-alive (16 connections)"
			if close {
				kind = "a new connection per request"
			}
			t.Logf("wrk -t1 -c16 -d%v, %s: through the VIP %.0f req/s, straight to be1 %.0f req/s: ratio %.2f",
				d, kind, vip, direct, vip/direct)
		}
	})

	// raild stopped cleanly, nothing left on lb0, and the decap programs
	// counted what they took apart.
	if code := l.d.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("raild exit %d", code)
	}
	if xdpAttached(t) {
		t.Error("lb0 still has an XDP program")
	}
}

// unixDialer is a DialContext for the admin socket.
func unixDialer(sock string) func(context.Context, string, string) (net.Conn, error) {
	return func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}
}
