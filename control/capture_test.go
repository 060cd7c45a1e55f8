package control

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/gopacket/pcapgo"

	"github.com/rail-lb/rail/pipeline"
)

func TestCaptureBadQueries(t *testing.T) {
	l := newAPILab(t, apiConfig)
	srv := httptest.NewServer((&APIServer{State: l.state, Capture: pipeline.NewCapture()}).Handler())
	defer srv.Close()
	for _, tc := range []struct {
		query string
		code  int
		msg   string
	}{
		{"service=nope", 404, `service: no service "nope"`},
		{"verdict=maybe", 400, `verdict: "maybe" is not tx, pass or drop`},
		{"reason=sad", 400, `reason: "sad" is no reason`},
		{"verdict=tx&reason=no_backend", 400, "reason: no_backend goes with verdict drop"},
		{"backend=10.1.0", 400, `backend: "10.1.0" is not an IP address`},
		{"src=x", 400, `src: "x" is not an IP address`},
		{"dport=70000", 400, `dport: "70000" is not a port`},
		{"proto=sctp", 400, `proto: "sctp" is not tcp, udp`},
		{"count=-1", 400, `count: "-1" is not a whole number`},
		{"snaplen=9000", 400, `snaplen: "9000" is not a whole number from 1 to 4096`},
		{"duration=soon", 400, `duration: "soon" is not a positive duration`},
		{"port=80", 400, `unknown parameter "port"`},
		{"verdict=tx&verdict=drop", 400, "verdict is given 2 times"},
	} {
		resp, err := http.Get(srv.URL + "/v1/capture?" + tc.query)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var e errorBody
		json.Unmarshal(body, &e)
		if resp.StatusCode != tc.code || !strings.Contains(e.Error, tc.msg) || strings.Contains(e.Error, "\n") {
			t.Errorf("%s: %d %q, want %d with %q", tc.query, resp.StatusCode, e.Error, tc.code, tc.msg)
		}
	}
}

// TestCaptureStream feeds a worker's tap while GET /v1/capture streams:
// the pcapng holds count packets as received and as transmitted, the
// transmitted copies are what Process wrote, and it ends with the counts.
func TestCaptureStream(t *testing.T) {
	l := newAPILab(t, apiConfig)
	hub := pipeline.NewCapture()
	tap := hub.NewTap(2, 7)
	srv := httptest.NewServer((&APIServer{State: l.state, Capture: hub}).Handler())
	defer srv.Close()

	ct, err := pipeline.NewConntrack(1024, time.Hour, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	w := pipeline.NewWorker(ct)
	local := netip.MustParseAddr("10.0.0.2")
	web := netip.MustParseAddrPort("192.0.2.10:80")
	stop := make(chan struct{})
	fed := make(chan [][]byte, 1)
	go func() {
		// The worker loop's hook, as Loop.Poll calls it, until the test
		// has its packets.
		var sent [][]byte
		for i := 0; ; i++ {
			select {
			case <-stop:
				fed <- sent
				return
			default:
			}
			w.Begin(l.state.Snap.Load(), time.Now())
			c := tap.Begin(w)
			p := tcpFrame(local, netip.AddrPortFrom(netip.MustParseAddr("198.51.100.7"), uint16(1000+i%50)), web, 0x10)
			if c != nil {
				c.Received(p)
			}
			r := w.Process(p)
			if c != nil {
				c.Processed(p, r)
				c.Commit(1)
				sent = append(sent, append([]byte(nil), p.Buf[p.Off:p.Off+p.Len]...))
			}
			w.Flush()
			time.Sleep(100 * time.Microsecond)
		}
	}()
	resp, err := http.Get(srv.URL + "/v1/capture?service=web&count=5&snaplen=200")
	if err != nil {
		t.Fatal(err)
	}
	data, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	close(stop)
	sent := <-fed
	if err != nil || resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-pcapng" {
		t.Fatalf("%v %d %s", err, resp.StatusCode, data)
	}
	if got := resp.Trailer.Get(CapturePacketsTrailer); got != "5" {
		t.Errorf("trailer %s: %q, want 5", CapturePacketsTrailer, got)
	}
	var stats []pcapgo.NgInterfaceStatistics
	r, err := pcapgo.NewNgReader(bytes.NewReader(data), pcapgo.NgReaderOptions{
		StatisticsCallback: func(_ int, s pcapgo.NgInterfaceStatistics) { stats = append(stats, s) }})
	if err != nil {
		t.Fatal(err)
	}
	var rx, tx int
	for {
		b, ci, err := r.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ci.InterfaceIndex == 0 {
			rx++
			continue
		}
		// Every transmitted copy is one of the frames Process wrote.
		found := false
		for _, s := range sent {
			found = found || bytes.Equal(s, b)
		}
		if !found {
			t.Errorf("transmitted copy %x was never transmitted", b)
		}
		tx++
	}
	if rx != 5 || tx != 5 || len(stats) != 1 || stats[0].PacketsReceived != 5 {
		t.Errorf("%d received, %d transmitted, statistics %+v; want 5, 5 and one block saying 5", rx, tx, stats)
	}
	if hub.Running() != 0 {
		t.Errorf("%d captures still running after the stream ended", hub.Running())
	}
}

func TestCaptureComment(t *testing.T) {
	p := &pipeline.CapturedPacket{Verdict: pipeline.Tx, Service: "web", Backend: netip.MustParseAddr("10.1.0.11"), Queue: 1, CPU: 3}
	if got, want := captureComment(p), "verdict=tx reason=- service=web backend=10.1.0.11 queue=1 cpu=3"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
	p = &pipeline.CapturedPacket{Verdict: pipeline.Drop, Reason: pipeline.NoBackend}
	if got, want := captureComment(p), "verdict=drop reason=no_backend service=- backend=- queue=0 cpu=0"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
}
