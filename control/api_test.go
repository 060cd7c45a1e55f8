package control

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rail-lb/rail/pipeline"
)

const apiConfig = `local_address: 10.0.0.2
services:
  - name: web
    vip: 192.0.2.10
    port: 80
    protocol: tcp
    table_size: 1009
    backends:
      - address: 10.1.0.11
      - address: 10.1.0.12
        weight: 2
  - name: dns
    vip: 192.0.2.53
    port: 53
    protocol: udp
    table_size: 1009
    health: {type: udp}
    backends:
      - address: 10.1.0.21
`

// apiLab is a State with fake worker counters behind an API on a real
// unix socket.
type apiLab struct {
	state  *State
	stats  *pipeline.Stats
	client *http.Client
	file   string
	socket string
}

func newAPILab(t *testing.T, config string) *apiLab {
	t.Helper()
	dir := t.TempDir()
	file := filepath.Join(dir, "rail.yaml")
	if err := os.WriteFile(file, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, probs := Load(file)
	if cfg == nil {
		t.Fatal(probs)
	}
	st, err := NewState(cfg, file, nil)
	if err != nil {
		t.Fatal(err)
	}
	stats := new(pipeline.Stats)
	st.SetQueues([]QueueStats{{Queue: 0, CPU: 3, Pipeline: stats}})
	sock := filepath.Join(dir, "run", "raild.sock")
	l, err := (&APIServer{State: st}).Serve(API{Socket: sock}, DefaultHTTPLimits)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	c := &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	return &apiLab{state: st, stats: stats, client: c, file: file, socket: sock}
}

// do sends a request and returns the status and body.
func (l *apiLab) do(t *testing.T, method, path, body string) (int, string) {
	t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, "http://rail"+path, r)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := l.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func (l *apiLab) services(t *testing.T) []ServiceView {
	t.Helper()
	code, body := l.do(t, "GET", "/v1/services", "")
	if code != 200 {
		t.Fatalf("GET /v1/services: %d %s", code, body)
	}
	var v []ServiceView
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func TestAPISocketMode(t *testing.T) {
	l := newAPILab(t, apiConfig)
	fi, err := os.Stat(l.socket)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v, want a socket with 0600", fi.Mode())
	}
	// A second server on a live socket is refused; the first keeps it.
	if _, err := (&APIServer{State: l.state}).Serve(API{Socket: l.socket}, DefaultHTTPLimits); err == nil || !strings.Contains(err.Error(), "another process") {
		t.Errorf("second server on a live socket: %v", err)
	}
}

func TestAPIServices(t *testing.T) {
	l := newAPILab(t, apiConfig)
	// Packets counted by the worker show per backend.
	id := l.state.ids.ids[backendRef{"web", "10.1.0.12"}]
	l.stats.Backends[id].Add(7)

	v := l.services(t)
	if len(v) != 2 || v[0].Name != "web" || v[0].VIP != "192.0.2.10" || v[0].Port != 80 || v[0].Protocol != "tcp" {
		t.Fatalf("services %+v", v)
	}
	b := v[0].Backends
	if len(b) != 2 || b[0].Address != "10.1.0.11" || b[0].Weight != 1 || !b[0].Healthy || b[1].Weight != 2 || b[1].Packets != 7 || b[1].Source != "config" {
		t.Errorf("web backends %+v", b)
	}
	if v[1].Health != "udp" || !v[1].Available {
		t.Errorf("dns %+v", v[1])
	}
	// The raw JSON has the documented field names.
	_, body := l.do(t, "GET", "/v1/services", "")
	for _, f := range []string{`"name"`, `"vip"`, `"port"`, `"protocol"`, `"backends"`, `"address"`, `"weight"`, `"healthy"`, `"packets"`} {
		if !strings.Contains(body, f) {
			t.Errorf("GET /v1/services has no %s field: %s", f, body)
		}
	}
	code, body := l.do(t, "GET", "/v1/services/dns", "")
	if code != 200 || !strings.Contains(body, `"10.1.0.21"`) {
		t.Errorf("GET /v1/services/dns: %d %s", code, body)
	}
}

func TestAPIChanges(t *testing.T) {
	l := newAPILab(t, apiConfig)
	gen := l.state.Generation()

	code, body := l.do(t, "POST", "/v1/services/web/backends", `{"address": "10.1.0.13", "weight": 3}`)
	if code != 201 || !strings.Contains(body, `"source": "api"`) {
		t.Fatalf("add: %d %s", code, body)
	}
	v := l.services(t)
	if n := len(v[0].Backends); n != 3 || v[0].Backends[2].Address != "10.1.0.13" || v[0].Backends[2].Weight != 3 {
		t.Fatalf("after add: %+v", v[0].Backends)
	}
	// Only web's table was rebuilt; the snapshot has the new backend.
	snap := l.state.Snap.Load()
	if r := snap.Rebuilt(); len(r) != 1 || r[0] != "web" {
		t.Errorf("rebuilt %v, want [web]", r)
	}
	if got := len(snap.Config().Services[0].Backends); got != 3 {
		t.Errorf("snapshot has %d web backends", got)
	}

	code, body = l.do(t, "PUT", "/v1/services/web/backends/10.1.0.11", `{"weight": 0}`)
	if code != 200 || !strings.Contains(body, `"config_weight": 1`) {
		t.Fatalf("drain: %d %s", code, body)
	}
	if w := l.services(t)[0].Backends[0].Weight; w != 0 {
		t.Errorf("weight after drain %d", w)
	}
	code, body = l.do(t, "DELETE", "/v1/services/web/backends/10.1.0.12", "")
	if code != 204 {
		t.Fatalf("delete: %d %s", code, body)
	}
	if n := len(l.services(t)[0].Backends); n != 2 {
		t.Errorf("%d backends after delete", n)
	}
	if l.state.Generation() != gen+3 {
		t.Errorf("generation %d, want %d", l.state.Generation(), gen+3)
	}

	// A reload puts the file back and says what it replaced.
	code, body = l.do(t, "POST", "/v1/reload", "")
	if code != 200 {
		t.Fatalf("reload: %d %s", code, body)
	}
	var res ReloadResult
	json.Unmarshal([]byte(body), &res)
	if len(res.Discarded) != 3 || !strings.Contains(res.Discarded[0], "added backend 10.1.0.13") {
		t.Errorf("reload discarded %q", res.Discarded)
	}
	v = l.services(t)
	if len(v[0].Backends) != 2 || v[0].Backends[0].Weight != 1 || v[0].Backends[1].Address != "10.1.0.12" {
		t.Errorf("after reload %+v", v[0].Backends)
	}
}

func TestAPIBadRequests(t *testing.T) {
	l := newAPILab(t, apiConfig+"  - name: small\n    vip: 192.0.2.80\n    port: 80\n    protocol: tcp\n    table_size: 3\n    backends: [{address: 10.1.0.31}, {address: 10.1.0.32}, {address: 10.1.0.33}]\n")
	gen := l.state.Generation()
	before := l.services(t)
	tests := []struct {
		method, path, body string
		code               int
		msg                string
	}{
		{"GET", "/v1/services/nope", "", 404, `no service \"nope\"`},
		{"GET", "/v1/nothing", "", 404, "no such endpoint: GET /v1/nothing"},
		{"GET", "/services", "", 404, "no such endpoint"},
		{"PATCH", "/v1/services", "", 405, "method not allowed (use GET)"},
		{"GET", "/v1/reload", "", 405, "use POST"},
		{"PUT", "/v1/bgp", "", 405, "use GET"},
		{"GET", "/v1/drain", "", 405, "use POST, DELETE"},
		{"GET", "/v1/bgp", "", 404, "bgp is not configured"},
		{"POST", "/v1/services/web/backends/10.1.0.11", "", 405, "use PUT, DELETE"},
		{"POST", "/v1/services/nope/backends", `{"address": "10.1.0.14"}`, 404, `no service \"nope\"`},
		{"POST", "/v1/services/web/backends", ``, 400, "the body is empty"},
		{"POST", "/v1/services/web/backends", `{}`, 400, "address is required"},
		{"POST", "/v1/services/web/backends", `{"address": 5}`, 400, "address: expected a string"},
		{"POST", "/v1/services/web/backends", `{"address": "10.1.0.14", "weight": -1}`, 400, "weight: expected a whole number from 0 to 4294967295"},
		{"POST", "/v1/services/web/backends", `{"address": "10.1.0.14", "weight": 4294967296}`, 400, "weight: expected a whole number"},
		{"POST", "/v1/services/web/backends", `{"address": "10.1.0.14", "wieght": 1}`, 400, `unknown field \"wieght\"`},
		{"POST", "/v1/services/web/backends", `{"address": "10.1.0.14"`, 400, "not a valid JSON object"},
		{"POST", "/v1/services/web/backends", `{"address": "10.1.0.14"} {}`, 400, "more than one JSON value"},
		{"POST", "/v1/services/web/backends", `[1]`, 400, "not a valid JSON object"},
		{"POST", "/v1/services/web/backends", `{"address": "10.1.0.300"}`, 400, `address: \"10.1.0.300\" is not an IP address`},
		{"POST", "/v1/services/web/backends", `{"address": "10.1.0.11"}`, 409, "already has backend 10.1.0.11"},
		{"POST", "/v1/services/web/backends", `{"address": "10.1.0.14", "name": "10.1.0.12"}`, 409, `Maglev key \"10.1.0.12\" is already used`},
		{"POST", "/v1/services/web/backends", `{"address": "10.1.0.14", "name": "a b"}`, 400, "name: "},
		{"POST", "/v1/services/web/backends", `{"address": "10.0.0.2"}`, 400, "this node's own address"},
		{"POST", "/v1/services/web/backends", `{"address": "192.0.2.53"}`, 400, `is the vip of service \"dns\"`},
		{"POST", "/v1/services/web/backends", `{"address": "224.0.0.1"}`, 400, "multicast"},
		{"POST", "/v1/services/web/backends", `{"address": "0.0.0.0"}`, 400, "unspecified"},
		{"POST", "/v1/services/web/backends", `{"address": "127.0.0.1"}`, 400, "loopback"},
		{"POST", "/v1/services/web/backends", `{"address": "::1"}`, 400, "loopback"},
		{"POST", "/v1/services/web/backends", `{"address": "169.254.0.7"}`, 400, "link-local"},
		{"POST", "/v1/services/web/backends", `{"address": "2001:db8::14"}`, 400, "no local_address6"},
		{"POST", "/v1/services/small/backends", `{"address": "10.1.0.34"}`, 409, "table_size 3 holds no more backends"},
		{"POST", "/v1/services/web/backends", strings.Repeat(" ", maxBody+1), 413, "larger than"},
		{"PUT", "/v1/services/web/backends/10.1.0.11", `{}`, 400, "weight or state is required"},
		{"PUT", "/v1/services/web/backends/10.1.0.11", `{"state": "leaving"}`, 400, "is not active, filling or draining"},
		{"PUT", "/v1/services/web/backends/10.1.0.11", `{"weight": "0"}`, 400, "weight: expected a whole number"},
		{"PUT", "/v1/services/web/backends/10.1.0.99", `{"weight": 0}`, 404, "has no backend 10.1.0.99"},
		{"PUT", "/v1/services/web/backends/nonsense", `{"weight": 0}`, 400, `\"nonsense\" is not an IP address`},
		{"PUT", "/v1/services/nope/backends/10.1.0.11", `{"weight": 0}`, 404, "no service"},
		{"DELETE", "/v1/services/web/backends/10.1.0.99", "", 404, "has no backend 10.1.0.99"},
		{"DELETE", "/v1/services/nope/backends/10.1.0.11", "", 404, "no service"},
	}
	for _, tt := range tests {
		code, body := l.do(t, tt.method, tt.path, tt.body)
		if code != tt.code || !strings.Contains(body, tt.msg) {
			t.Errorf("%s %s %.40q: %d %s, want %d with %q", tt.method, tt.path, tt.body, code, body, tt.code, tt.msg)
		}
		if code >= 400 {
			var e errorBody
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" || strings.Contains(e.Error, "\n") {
				t.Errorf("%s %s: error body %q is not one line of JSON", tt.method, tt.path, body)
			}
		}
	}
	// Nothing changed.
	if l.state.Generation() != gen {
		t.Errorf("bad requests changed the generation: %d → %d", gen, l.state.Generation())
	}
	after := l.services(t)
	b1, _ := json.Marshal(before)
	b2, _ := json.Marshal(after)
	if string(b1) != string(b2) {
		t.Errorf("bad requests changed the services:\n%s\n%s", b1, b2)
	}
}

func TestAPIReloadInvalid(t *testing.T) {
	l := newAPILab(t, apiConfig)
	l.do(t, "PUT", "/v1/services/web/backends/10.1.0.11", `{"weight": 5}`)
	gen := l.state.Generation()
	os.WriteFile(l.file, []byte("local_address: 10.0.0.2\nservices:\n  - name: web\n    vip: nope\n"), 0o644)
	code, body := l.do(t, "POST", "/v1/reload", "")
	if code != 422 || !strings.Contains(body, "vip") || !strings.Contains(body, "nothing changed") {
		t.Errorf("invalid reload: %d %s", code, body)
	}
	if l.state.Generation() != gen || l.services(t)[0].Backends[0].Weight != 5 {
		t.Errorf("an invalid reload changed the state")
	}
	if l.state.reloads[reloadInvalid].Load() != 1 {
		t.Errorf("invalid reload not counted")
	}
}

func TestAPIConntrackAndStats(t *testing.T) {
	l := newAPILab(t, apiConfig)
	l.stats.ConntrackLive.Store(5)
	l.stats.ConntrackSlots.Store(1024)
	l.stats.ConntrackHits.Store(40)
	l.stats.ConntrackMiss.Store(2)
	l.stats.Reasons[pipeline.ReasonNone].Store(42)
	l.stats.Reasons[pipeline.NoBackend].Store(3)
	code, body := l.do(t, "GET", "/v1/conntrack", "")
	var ct []CoreConntrack
	if code != 200 || json.Unmarshal([]byte(body), &ct) != nil || len(ct) != 1 ||
		ct[0] != (CoreConntrack{Queue: 0, CPU: 3, Entries: 5, Slots: 1024, Hits: 40, Misses: 2}) {
		t.Errorf("conntrack: %d %s", code, body)
	}
	code, body = l.do(t, "GET", "/v1/stats", "")
	var st Stats
	if code != 200 || json.Unmarshal([]byte(body), &st) != nil || len(st.Cores) != 1 || st.Cores[0].TX != 42 ||
		st.Cores[0].Drops["no_backend"] != 3 || len(st.Backends) != 3 {
		t.Errorf("stats: %d %s", code, body)
	}
}

func TestAPIToken(t *testing.T) {
	l := newAPILab(t, apiConfig)
	dir := t.TempDir()
	tok := filepath.Join(dir, "token")
	os.WriteFile(tok, []byte("s3cret\n"), 0o600)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	lis, err := (&APIServer{State: l.state}).Serve(API{Address: addr, TokenFile: tok}, DefaultHTTPLimits)
	if err != nil {
		t.Fatal(err)
	}
	defer lis.Close()
	for _, tc := range []struct {
		auth string
		code int
	}{{"", 401}, {"Bearer nope", 401}, {"s3cret", 401}, {"Bearer s3cret", 200}} {
		req, _ := http.NewRequest("GET", "http://"+addr+"/v1/services", nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.code {
			t.Errorf("Authorization %q: %d, want %d", tc.auth, resp.StatusCode, tc.code)
		}
		if tc.code == 401 && !resp.Close {
			t.Errorf("Authorization %q: a 401 that keeps the connection open", tc.auth)
		}
	}
	// Without the token the server closes the connection after its answer.
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	io.WriteString(c, "GET /v1/services HTTP/1.1\r\nHost: x\r\n\r\n")
	if b, err := io.ReadAll(c); err != nil || !strings.HasPrefix(string(b), "HTTP/1.1 401") {
		t.Errorf("unauthenticated keep-alive request: %q, %v; want a 401 and the connection closed", b, err)
	}
	if _, err := (&APIServer{State: l.state}).Serve(API{Address: "127.0.0.1:0", TokenFile: filepath.Join(dir, "missing")}, DefaultHTTPLimits); err == nil {
		t.Error("a missing token file was accepted")
	}
	os.WriteFile(tok, []byte("\n"), 0o600)
	if _, err := (&APIServer{State: l.state}).Serve(API{Address: "127.0.0.1:0", TokenFile: tok}, DefaultHTTPLimits); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Errorf("an empty token file: %v", err)
	}
}

// TestAPIBackendState: PUT {"state": …} changes a backend's lifecycle
// state, GET shows it, and the snapshot follows (draining: no new flows).
func TestAPIBackendState(t *testing.T) {
	l := newAPILab(t, apiConfig)
	code, body := l.do(t, "PUT", "/v1/services/web/backends/10.1.0.11", `{"state": "draining"}`)
	if code != 200 || !strings.Contains(body, `"state": "draining"`) {
		t.Fatalf("PUT state: %d %s", code, body)
	}
	v, _ := l.state.Service("web")
	for _, b := range v.Backends {
		if b.Address == "10.1.0.11" && b.State != "draining" {
			t.Errorf("GET shows state %q", b.State)
		}
	}
}
