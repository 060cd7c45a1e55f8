package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rail-lb/rail/control"
	"github.com/rail-lb/rail/pipeline"
)

const cfg = `local_address: 10.0.0.2
services:
  - name: web
    vip: 192.0.2.10
    port: 80
    protocol: tcp
    table_size: 1009
    backends:
      - address: 10.1.0.11
      - address: 10.1.0.12
`

// quicCfg adds a QUIC-LB service on the VIP's port 443 (trace --dcid).
const quicCfg = cfg + `  - name: h3
    vip: 192.0.2.10
    port: 443
    protocol: udp
    table_size: 1009
    quic: {config_id: 1, server_id_length: 2, nonce_length: 6}
    backends:
      - {address: 10.1.0.11, quic_server_id: "0a01"}
      - {address: 10.1.0.12, quic_server_id: "0a02"}
`

// daemon serves the API for a State on a socket in a temporary directory.
func daemon(t *testing.T) (string, *pipeline.Stats) { return daemonWith(t, cfg) }

// daemonWith is daemon with configuration text cfg.
func daemonWith(t *testing.T, cfg string) (string, *pipeline.Stats) {
	dir := t.TempDir()
	file := filepath.Join(dir, "rail.yaml")
	os.WriteFile(file, []byte(cfg), 0o644)
	c, probs := control.Load(file)
	if c == nil {
		t.Fatal(probs)
	}
	st, err := control.NewState(c, file, nil)
	if err != nil {
		t.Fatal(err)
	}
	stats := new(pipeline.Stats)
	st.SetQueues([]control.QueueStats{{Queue: 0, CPU: 1, Pipeline: stats}})
	sock := filepath.Join(dir, "raild.sock")
	l, err := (&control.APIServer{State: st}).Serve(control.API{Socket: sock}, control.DefaultHTTPLimits)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return sock, stats
}

func railctl(t *testing.T, sock string, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := run(append([]string{"--socket", sock}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

func TestCommands(t *testing.T) {
	sock, stats := daemon(t)
	stats.Reasons[pipeline.ReasonNone].Store(10)
	for _, tc := range []struct {
		args    []string
		code    int
		out     string // in stdout
		errText string // in stderr
	}{
		{[]string{"services"}, 0, "10.1.0.12", ""},
		{[]string{"backend", "add", "web", "10.1.0.13", "--weight", "2"}, 0, "added 10.1.0.13 to web (weight 2)", "until the next reload or restart"},
		{[]string{"backend", "weight", "web", "10.1.0.13", "5"}, 0, "weight of 10.1.0.13 in web is 5", ""},
		{[]string{"backend", "drain", "web", "10.1.0.11"}, 0, "drained 10.1.0.11", ""},
		{[]string{"services"}, 0, "0 (file: 1)", ""},
		{[]string{"backend", "remove", "web", "10.1.0.13"}, 0, "removed 10.1.0.13 from web", ""},
		{[]string{"conntrack"}, 0, "ENTRIES", ""},
		{[]string{"stats", "--interval", "10ms"}, 0, "web", ""},
		{[]string{"reload"}, 0, "replaced by the file: set the weight of backend 10.1.0.11", ""},
		{[]string{"backend", "add", "web", "10.1.0.11"}, 1, "", "railctl: service \"web\" already has backend 10.1.0.11"},
		{[]string{"backend", "add", "nope", "10.1.0.14"}, 1, "", "railctl: no service \"nope\""},
		{[]string{"backend", "weight", "web", "10.1.0.11", "lots"}, 2, "", "weight \"lots\": a whole number"},
		{[]string{"backend", "add", "web"}, 2, "", "accepts 2 arg(s)"},
		{[]string{"services", "--output", "yaml"}, 2, "", "--output \"yaml\""},
		{[]string{"frobnicate"}, 2, "", "unknown command"},
		{[]string{"servics"}, 2, "", "did you mean services?"},
		{[]string{}, 2, "", "railctl needs a command"},
		{[]string{"backend"}, 2, "", "railctl backend needs a command"},
		{[]string{"backend", "frob", "web"}, 2, "", `unknown command "frob" for "railctl backend"`},
		{[]string{"services", "extra"}, 2, "", "unknown command"},
		{[]string{"services", "--bogus"}, 2, "", "unknown flag: --bogus"},
		{[]string{"stats", "--interval", "0s"}, 2, "", "--interval 0s: must be positive"},
		{[]string{"--help"}, 0, "Usage:", ""},
	} {
		code, out, errText := railctl(t, sock, tc.args...)
		if code != tc.code || !strings.Contains(out, tc.out) || !strings.Contains(errText, tc.errText) {
			t.Errorf("railctl %v: %d\nstdout %s\nstderr %s\nwant %d, %q, %q", tc.args, code, out, errText, tc.code, tc.out, tc.errText)
		}
	}
	code, out, _ := railctl(t, sock, "services", "--output", "json")
	var v []control.ServiceView
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || len(v) != 1 || len(v[0].Backends) != 2 {
		t.Errorf("services -o json: %d %s", code, out)
	}
	code, out, _ = railctl(t, sock, "stats", "--watch", "--count", "2", "--interval", "10ms", "-o", "json")
	if code != 0 || strings.Count(out, `"cores"`) != 2 {
		t.Errorf("stats --watch --count 2: %d %s", code, out)
	}
	if code, _, errText := railctl(t, filepath.Join(t.TempDir(), "none.sock"), "services"); code != 1 || !strings.Contains(errText, "cannot reach raild") {
		t.Errorf("no daemon: %d %s", code, errText)
	}
}

func TestTrace(t *testing.T) {
	sock, _ := daemonWith(t, quicCfg)
	for _, tc := range []struct {
		args    []string
		code    int
		out     string
		errText string
	}{
		{[]string{"trace", "198.51.100.7:40000", "192.0.2.10:80", "tcp"}, 0, "service  web (192.0.2.10 port 80 tcp)", ""},
		{[]string{"trace", "198.51.100.7:40000", "192.0.2.10:80", "TCP"}, 0, "SYN      tx to 10.1.0.1", ""},
		{[]string{"trace", "198.51.100.7:40000", "192.0.2.10:80", "tcp"}, 0, "entries  none on any worker", ""},
		{[]string{"trace", "198.51.100.7:40000", "192.0.2.10:443", "tcp"}, 0, "no service: the packet is passed to the kernel", ""},
		{[]string{"trace", "x", "192.0.2.10:80", "tcp"}, 1, "", `railctl: src: "x" is not IP:PORT`},
		{[]string{"trace", "198.51.100.7:40000", "192.0.2.10:80", "icmp"}, 1, "", `proto: "icmp" is not tcp or udp`},
		{[]string{"trace", "198.51.100.7:40000"}, 2, "", "accepts 3 arg(s)"},
		// QUIC-LB: a plaintext connection ID of config 1 naming server id 0a02.
		{[]string{"trace", "198.51.100.7:40000", "192.0.2.10:443", "udp", "--dcid", "280a02010203040506"}, 0, "quic     dcid 280a02010203040506: config id 1, server id 0a02 -> 10.1.0.12: healthy", ""},
		{[]string{"trace", "198.51.100.7:40000", "192.0.2.10:443", "udp", "--dcid", "280a02010203040506"}, 0, "SYN      tx to 10.1.0.12, by QUIC-LB server id 0a02", ""},
		{[]string{"trace", "198.51.100.7:40000", "192.0.2.10:443", "udp", "--dcid", "280a09010203040506"}, 0, "server id 0a09: no backend has this server id (routed by the 5-tuple)", ""},
		{[]string{"trace", "198.51.100.7:40000", "192.0.2.10:443", "udp", "--dcid", "480a02010203040506"}, 0, "(config id 2): no configuration of the service has this config id", ""},
		{[]string{"trace", "198.51.100.7:40000", "192.0.2.10:443", "udp", "--dcid", "280a0201"}, 0, "(config id 1): shorter than its configuration's connection IDs", ""},
		{[]string{"trace", "198.51.100.7:40000", "192.0.2.10:80", "tcp", "--dcid", "280a02010203040506"}, 0, "the service has no quic option", ""},
		{[]string{"trace", "198.51.100.7:40000", "192.0.2.10:443", "udp", "--dcid", "zz"}, 1, "", `dcid: "zz" is not a connection ID in hex`},
	} {
		code, out, errText := railctl(t, sock, tc.args...)
		if code != tc.code || !strings.Contains(out, tc.out) || !strings.Contains(errText, tc.errText) {
			t.Errorf("railctl %v: %d\nstdout %s\nstderr %s\nwant %d, %q, %q", tc.args, code, out, errText, tc.code, tc.out, tc.errText)
		}
	}
	code, out, _ := railctl(t, sock, "trace", "198.51.100.7:40000", "192.0.2.10:80", "tcp", "-o", "json")
	var v control.TraceView
	if code != 0 || json.Unmarshal([]byte(out), &v) != nil || v.Service == nil || v.Service.Name != "web" || v.SYN.Backend == nil {
		t.Errorf("trace -o json: %d %s", code, out)
	}
}
