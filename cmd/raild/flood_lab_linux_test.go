package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/rail-lb/rail/control"
	"github.com/rail-lb/rail/internal/privtest"
)

// TestLabDescriptorFlood is the outage an attacker without a token could
// cause: thousands of idle keep-alive connections to the admin API's TCP
// listener (each sent one request, answered 401) and slow connections to
// the metrics port, against a raild limited to 1024 descriptors. Before
// the HTTP limits, raild ran out of descriptors: its health checks failed
// with EMFILE, took every backend down and new flows were dropped
// (no_backend); the unix-socket API and metrics stopped answering. Now the
// listeners hold at most http.max_connections each: the API still answers,
// the backends stay up and new flows are forwarded.
func TestLabDescriptorFlood(t *testing.T) {
	privtest.Require(t, "ip", "trafgen", "python3", "prlimit")
	controlLabUp(t)
	for _, a := range labBackends {
		startListener(t, a)
	}
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	os.WriteFile(tok, []byte("s3cret\n"), 0o600)
	apiTCP := net.JoinHostPort(lbAddr.String(), "9791")
	file, sock := ctlConfig(t, dir, ctlOpts{
		health: fmt.Sprintf("    health: {type: tcp, port: %d, interval: 100ms, timeout: 50ms, rise: 1, fall: 2}\n", hcPort),
		api:    fmt.Sprintf("  address: %s\n  token_file: %s\n", apiTCP, tok),
	})

	d := startRaild(t, file)
	pid := d.cmd.Process.Pid // ip netns exec execs raild: the same process
	const limit = 1024
	sh(t, "prlimit", "--pid", strconv.Itoa(pid), fmt.Sprintf("--nofile=%d:%d", limit, limit))
	for _, a := range labBackends {
		waitFor(t, 3*time.Second, a+" healthy", func() bool { return backendView(t, sock, a).Healthy })
	}

	// The flood, from inside the node's namespace.
	const apiConns, metricConns = 1500, 400
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	unauthorized := 0
	// A raild that stops answering must fail the test, not hang it: each
	// answer gets 300 ms, the whole flood 20 s.
	floodEnd := time.Now().Add(20 * time.Second)
	inNetns(t, lbNS, func() {
		for i := range apiConns {
			if time.Now().After(floodEnd) {
				t.Errorf("the flood took more than 20 s: raild stopped answering after %d connections", i)
				return
			}
			c, err := net.DialTimeout("tcp", apiTCP, 2*time.Second)
			if err != nil {
				t.Errorf("api connection %d: %v", i, err)
				return
			}
			conns = append(conns, c)
			c.SetDeadline(time.Now().Add(300 * time.Millisecond))
			io.WriteString(c, "GET /v1/services HTTP/1.1\r\nHost: raild\r\n\r\n")
			if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusUnauthorized {
					unauthorized++
				}
			}
		}
		for i := range metricConns {
			if time.Now().After(floodEnd) {
				return
			}
			c, err := net.DialTimeout("tcp", labMetrics, 2*time.Second)
			if err != nil {
				t.Errorf("metrics connection %d: %v", i, err)
				return
			}
			conns = append(conns, c)
			io.WriteString(c, "GET /metrics HTTP/1.1\r\n") // and never the rest
		}
	})
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	t.Logf("flood: %d API connections (%d answered 401), %d slow metrics connections; raild holds %d descriptors of %d",
		apiConns, unauthorized, metricConns, len(fds), limit)
	if len(fds) >= limit-10 {
		t.Errorf("raild holds %d descriptors of its %d", len(fds), limit)
	}

	// Two health intervals later (fall 2), every backend is still up, as
	// the unix-socket API tells at once.
	time.Sleep(300 * time.Millisecond)
	start := time.Now()
	var v []control.ServiceView
	apiGet(t, sock, "/v1/services", &v)
	t.Logf("the unix-socket API answered in %v", time.Since(start).Round(time.Millisecond))
	for _, b := range v[0].Backends {
		if !b.Healthy {
			t.Errorf("backend %s is down during the flood", b.Address)
		}
	}
	// New flows are forwarded, none dropped for want of a backend.
	before := scrape(t)
	sendTrafgen(t, greFrames(t, 200, 1))
	after := scrape(t)
	tx := sum(after, "rail_tx_packets_total") - sum(before, "rail_tx_packets_total")
	noBackend := after[`rail_drop_packets_total{queue="0",cpu="1",reason="no_backend"}`] + after[`rail_drop_packets_total{queue="0",cpu="0",reason="no_backend"}`]
	if tx < 200 || noBackend > 0 {
		t.Errorf("during the flood: %v of 200 new flows forwarded, %v dropped no_backend", tx, noBackend)
	}
	if n := sum(after, "rail_health_local_errors_total"); n > 0 {
		t.Errorf("%v health checks could not run on the node during the flood", n)
	}
	if d.exited() {
		t.Fatalf("raild exited:\n%s", d.log)
	}
}
