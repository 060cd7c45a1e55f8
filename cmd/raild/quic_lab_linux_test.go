package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/quic-go/quic-go/http3"
	"github.com/rail-lb/rail/internal/h3lab"
)

// The QUIC-LB lab: the direct-server-return lab (tools/dsr-lab.sh, no
// nginx) with an HTTP/3 server (internal/h3lab/h3server, quic-go) on the
// VIP's port 443 of be1..be3, each issuing QUIC-LB connection IDs with its
// server id. The client, this test, opens quicConns connections from the
// client namespace; each downloads a body, and after its first
// quicBeforeMove octets moves to a new local port — a new UDP socket, as a
// phone that changes network, probed and switched to with quic-go's path
// API — while the old socket goes dead. With the service's quic option
// every connection finishes byte for byte; without it, the same moves
// break most connections (their new tuple hashes to another backend).
const (
	quicConns      = 50
	quicBody       = 256 << 10
	quicBeforeMove = 64 << 10
	quicKeyHex     = "8f95f09245765f80256934e50c66207f"
	quicNonceLen   = 14
	quicConfigID   = 1
)

func quicSID(i int) string { return fmt.Sprintf("0a%02x", i) }

func TestQUICMigrationLab(t *testing.T) {
	l := dsrLabNet(t, "--backends", "3", "--no-nginx")
	h3 := buildH3Server(t)
	for i := 1; i <= 3; i++ {
		startH3Server(t, h3, i)
	}
	var kept [2]int
	for k, withLB := range []bool{true, false} {
		name := map[bool]string{true: "with_quic_lb", false: "without"}[withLB]
		t.Run(name, func(t *testing.T) {
			cfg := writeQUICConfig(t, l, withLB)
			d := startRaild(t, cfg)
			defer d.stop(t, syscall.SIGTERM)
			res := migrateMany(t, quicConns)
			per := map[string]int{}
			for _, r := range res {
				per[r.backend]++
				if r.err == nil {
					kept[k]++
				}
			}
			m := scrape(t)
			t.Logf("%s: %d of %d connections kept through the move; backends %v; rail_quic_packets_total routed %v, fallback %v",
				name, kept[k], len(res), per, sumQUIC(m, "routed"), sumQUIC(m, "fallback"))
			if withLB {
				for _, r := range res {
					if r.err != nil {
						t.Errorf("connection %d (%s): %v", r.i, r.backend, r.err)
					}
				}
				if len(per) < 2 {
					t.Errorf("every connection went to %v: the lab does not spread them", per)
				}
				if n := sumQUIC(m, "routed"); n == 0 {
					t.Error("no packet was routed by connection ID")
				}
			}
		})
	}
	t.Logf("migrations kept: %d/%d with QUIC-LB, %d/%d without", kept[0], quicConns, kept[1], quicConns)
	if kept[1] > quicConns*3/4 {
		t.Errorf("without QUIC-LB %d of %d moves kept their connection: the test does not exercise routing by connection ID", kept[1], quicConns)
	}
}

// sumQUIC adds up rail_quic_packets_total for one result over the workers.
func sumQUIC(m map[string]float64, result string) float64 {
	return sumWith(m, "rail_quic_packets_total", `result="`+result+`"`)
}

func buildH3Server(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "h3server")
	if out, err := exec.Command("go", "build", "-o", bin, "../../internal/h3lab/h3server").CombinedOutput(); err != nil {
		t.Fatalf("go build h3server: %v\n%s", err, out)
	}
	return bin
}

// startH3Server runs h3server on backend i's VIP until the test ends.
func startH3Server(t *testing.T, bin string, i int) {
	t.Helper()
	log := &syncBuffer{}
	cmd := exec.Command("ip", "netns", "exec", fmt.Sprintf("%sbe%d", dsrPrefix, i), bin,
		"-listen", dsrVIP+":443", "-name", fmt.Sprintf("be%d", i), "-server-id", quicSID(i),
		"-config-id", fmt.Sprint(quicConfigID), "-nonce-length", fmt.Sprint(quicNonceLen), "-key", quicKeyHex)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitFor(t, 10*time.Second, fmt.Sprintf("h3server on be%d", i), func() bool { return strings.Contains(log.String(), "serving HTTP/3") })
}

// writeQUICConfig is raild's file for the lab: one UDP service on the
// VIP's port 443, with the QUIC-LB option and server ids or without.
func writeQUICConfig(t *testing.T, l *dsrLab, withLB bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "interface: lb0\nlocal_address: 10.0.0.2\nnext_hop: ingress\nmetrics_address: %s\n", labMetrics)
	fmt.Fprintf(&b, "api:\n  socket: %s\nconntrack:\n  entries_per_core: 65536\n", l.sock)
	fmt.Fprintf(&b, "services:\n  - name: h3\n    vip: %s\n    port: 443\n    protocol: udp\n    table_size: 65537\n", dsrVIP)
	if withLB {
		fmt.Fprintf(&b, "    quic: {config_id: %d, server_id_length: 2, nonce_length: %d, key: %s}\n", quicConfigID, quicNonceLen, quicKeyHex)
	}
	b.WriteString("    backends:\n")
	for i := 1; i <= 3; i++ {
		fmt.Fprintf(&b, "      - {address: %s, name: be%d", dsrAddr(i), i)
		if withLB {
			fmt.Fprintf(&b, ", quic_server_id: %q", quicSID(i))
		}
		b.WriteString("}\n")
	}
	cfg := filepath.Join(l.dir, "rail-quic.yaml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// deadConn is a client socket that can be made to go dead, as a network a
// client leaves: nothing more is sent on it, and what arrives is dropped.
type deadConn struct {
	*net.UDPConn
	dead atomic.Bool
}

func (c *deadConn) WriteTo(p []byte, a net.Addr) (int, error) {
	if c.dead.Load() {
		return len(p), nil
	}
	return c.UDPConn.WriteTo(p, a)
}

func (c *deadConn) ReadFrom(p []byte) (int, net.Addr, error) {
	for {
		n, a, err := c.UDPConn.ReadFrom(p)
		if err != nil || !c.dead.Load() {
			return n, a, err
		}
	}
}

type moveResult struct {
	i       int
	backend string
	err     error // nil: the whole body arrived, byte for byte, after the move
}

// clientSockets opens n UDP sockets in the client namespace.
func clientSockets(t *testing.T, n int) []*net.UDPConn {
	t.Helper()
	var out []*net.UDPConn
	inNetns(t, dsrClient, func() {
		for range n {
			c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(10, 9, 0, 2)})
			if err != nil {
				t.Error(err)
				return
			}
			out = append(out, c)
		}
	})
	if len(out) != n {
		t.Fatalf("%d of %d client sockets", len(out), n)
	}
	return out
}

// migrateMany runs n connections at once, each moving once.
func migrateMany(t *testing.T, n int) []moveResult {
	socks := clientSockets(t, 2*n)
	res := make([]moveResult, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = migrateOne(i, socks[2*i], socks[2*i+1])
		}()
	}
	wg.Wait()
	return res
}

// migrateOne downloads one body over a connection from first, moving to
// second after quicBeforeMove octets.
func migrateOne(i int, first, second *net.UDPConn) moveResult {
	r := moveResult{i: i}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	old := &deadConn{UDPConn: first}
	tr1, tr2 := &quic.Transport{Conn: old}, &quic.Transport{Conn: second}
	defer tr1.Close()
	defer tr2.Close()
	// Small receive windows: the server cannot send ahead of the client,
	// so most of the body crosses the new path.
	qc := &quic.Config{DisablePathMTUDiscovery: true, MaxIdleTimeout: 5 * time.Second,
		InitialStreamReceiveWindow: 32 << 10, MaxStreamReceiveWindow: 32 << 10,
		InitialConnectionReceiveWindow: 64 << 10, MaxConnectionReceiveWindow: 64 << 10}
	vip := &net.UDPAddr{IP: net.ParseIP(dsrVIP), Port: 443}
	tc := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{http3.NextProtoH3}, ServerName: "rail-lab"}
	conn, err := tr1.Dial(ctx, vip, tc, qc)
	if err != nil {
		r.err = fmt.Errorf("dial: %w", err)
		return r
	}
	defer conn.CloseWithError(0, "")
	cc := (&http3.Transport{}).NewClientConn(conn)
	seed := uint64(1000 + i)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("https://rail-lab/bytes?n=%d&seed=%d", quicBody, seed), nil)
	resp, err := cc.RoundTrip(req)
	if err != nil {
		r.err = fmt.Errorf("request: %w", err)
		return r
	}
	defer resp.Body.Close()
	r.backend = resp.Header.Get("X-Backend")
	h := sha256.New()
	if _, err := io.CopyN(h, resp.Body, quicBeforeMove); err != nil {
		r.err = fmt.Errorf("before the move: %w", err)
		return r
	}
	// The move: a new socket (a new source port), probed, switched to;
	// the old one goes dead.
	p, err := conn.AddPath(tr2)
	if err != nil {
		r.err = fmt.Errorf("add path: %w", err)
		return r
	}
	pctx, pcancel := context.WithTimeout(ctx, 4*time.Second)
	err = p.Probe(pctx)
	pcancel()
	if err != nil {
		r.err = fmt.Errorf("probe of the new path: %w", err)
		return r
	}
	if err := p.Switch(); err != nil {
		r.err = fmt.Errorf("switch: %w", err)
		return r
	}
	old.dead.Store(true)
	n, err := io.Copy(h, resp.Body)
	if err != nil {
		r.err = fmt.Errorf("after the move, %d octets in: %w", quicBeforeMove+n, err)
		return r
	}
	if got, want := [32]byte(h.Sum(nil)), h3lab.Sum(seed, quicBody); quicBeforeMove+n != quicBody || got != want {
		r.err = fmt.Errorf("body of %d octets, want %d, or not byte for byte", quicBeforeMove+n, quicBody)
	}
	return r
}
