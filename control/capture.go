package control

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/VictoriaMetrics/metrics"

	"github.com/rail-lb/rail/pcapng"
	"github.com/rail-lb/rail/pipeline"
)

// GET /v1/capture streams what the workers see as pcapng (docs/API.md):
// each packet as received on interface 0 (rail-rx) and, when it was
// transmitted, as transmitted on interface 1 (rail-tx), its comment saying
// the verdict, reason, service, backend, queue and CPU. The stream ends
// after count packets, after duration, when the client goes away, or when
// a write stalls for captureStall; it closes with an interface statistics
// block (packets captured, packets lost to a slow reader) and the same
// figures in the trailers.

// Trailers of a capture's response.
const (
	CapturePacketsTrailer = "Rail-Capture-Packets"
	CaptureDroppedTrailer = "Rail-Capture-Dropped"
)

// captureStall is how long one write of a capture may block before the
// stream is cut (the reader is gone or stuck).
const captureStall = 30 * time.Second

// captureParams are the query parameters GET /v1/capture takes.
var captureParams = []string{"service", "backend", "verdict", "reason", "src", "dst", "sport", "dport", "proto", "count", "duration", "snaplen"}

// CaptureRequest is a capture's query, checked.
type CaptureRequest struct {
	Filter   pipeline.CaptureFilter
	Count    int           // packets (as received) to capture; 0: no limit
	Duration time.Duration // 0: no limit
}

// ParseCapture checks a capture's query. service, when given, must name a
// service (known reports whether one does).
func ParseCapture(q url.Values, known func(service string) bool) (CaptureRequest, error) {
	var c CaptureRequest
	f := &c.Filter
	for k := range q {
		if !slices.Contains(captureParams, k) {
			return c, badRequest(http.StatusBadRequest, "unknown parameter %q (capture takes %s)", k, strings.Join(captureParams, ", "))
		}
		if len(q[k]) > 1 {
			return c, badRequest(http.StatusBadRequest, "%s is given %d times: give it once (verdict and reason take a comma-separated list)", k, len(q[k]))
		}
	}
	if s := q.Get("service"); s != "" {
		if !known(s) {
			return c, badRequest(http.StatusNotFound, "service: no service %q", s)
		}
		f.Service = s
	}
	addr := func(name string) (netip.Addr, error) {
		v := q.Get(name)
		if v == "" {
			return netip.Addr{}, nil
		}
		a, err := netip.ParseAddr(v)
		if err != nil {
			return a, badRequest(http.StatusBadRequest, "%s: %q is not an IP address", name, v)
		}
		return a.Unmap(), nil
	}
	var err error
	if f.Backend, err = addr("backend"); err != nil {
		return c, err
	}
	if f.Src, err = addr("src"); err != nil {
		return c, err
	}
	if f.Dst, err = addr("dst"); err != nil {
		return c, err
	}
	for _, v := range list(q.Get("verdict")) {
		found := false
		for _, vd := range []pipeline.Verdict{pipeline.Tx, pipeline.Pass, pipeline.Drop} {
			if v == vd.String() {
				f.Verdicts |= 1 << vd
				found = true
			}
		}
		if !found {
			return c, badRequest(http.StatusBadRequest, "verdict: %q is not tx, pass or drop", v)
		}
	}
	for _, v := range list(q.Get("reason")) {
		r, ok := reasonByName(v)
		if !ok {
			return c, badRequest(http.StatusBadRequest, "reason: %q is no reason (%s)", v, strings.Join(reasonNames(), ", "))
		}
		if f.Verdicts != 0 && f.Verdicts&(1<<r.Verdict()) == 0 {
			return c, badRequest(http.StatusBadRequest, "reason: %s goes with verdict %v, which the verdict filter leaves out", v, r.Verdict())
		}
		f.Reasons |= 1 << r
	}
	port := func(name string) (uint16, error) {
		v := q.Get(name)
		if v == "" {
			return 0, nil
		}
		n, err := strconv.ParseUint(v, 10, 16)
		if err != nil || n == 0 {
			return 0, badRequest(http.StatusBadRequest, "%s: %q is not a port (1 to 65535)", name, v)
		}
		return uint16(n), nil
	}
	if f.SrcPort, err = port("sport"); err != nil {
		return c, err
	}
	if f.DstPort, err = port("dport"); err != nil {
		return c, err
	}
	if v := q.Get("proto"); v != "" {
		switch strings.ToLower(v) {
		case "tcp":
			f.Proto = 6
		case "udp":
			f.Proto = 17
		case "icmp":
			f.Proto = 1
		case "icmpv6":
			f.Proto = 58
		default:
			n, err := strconv.ParseUint(v, 10, 8)
			if err != nil || n == 0 {
				return c, badRequest(http.StatusBadRequest, "proto: %q is not tcp, udp, icmp, icmpv6 or a protocol number (1 to 255)", v)
			}
			f.Proto = uint8(n)
		}
	}
	whole := func(name string, lo, hi int) (int, error) {
		v := q.Get(name)
		if v == "" {
			return 0, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < lo || n > hi {
			return 0, badRequest(http.StatusBadRequest, "%s: %q is not a whole number from %d to %d", name, v, lo, hi)
		}
		return n, nil
	}
	if c.Count, err = whole("count", 0, 1<<30); err != nil {
		return c, err
	}
	if f.SnapLen, err = whole("snaplen", 1, pipeline.MaxSnapLen); err != nil {
		return c, err
	}
	if v := q.Get("duration"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return c, badRequest(http.StatusBadRequest, "duration: %q is not a positive duration (e.g. 10s, 1m)", v)
		}
		c.Duration = d
	}
	return c, nil
}

func list(v string) []string {
	if v == "" {
		return nil
	}
	return strings.Split(v, ",")
}

func reasonByName(name string) (pipeline.Reason, bool) {
	for r := pipeline.Reason(0); r < pipeline.NumReasons; r++ {
		if r.String() == name || r == pipeline.ReasonNone && name == "none" {
			return r, true
		}
	}
	return 0, false
}

func reasonNames() []string {
	var n []string
	for r := pipeline.Reason(1); r < pipeline.NumReasons; r++ {
		n = append(n, r.String())
	}
	return append(n, "none (forwarded)")
}

// serveCapture is GET /v1/capture.
func (a *APIServer) serveCapture(w http.ResponseWriter, r *http.Request) {
	req, err := ParseCapture(r.URL.Query(), func(s string) bool { _, ok := a.State.Service(s); return ok })
	if err != nil {
		a.fail(w, err)
		return
	}
	if a.Capture == nil {
		a.fail(w, badRequest(http.StatusNotFound, "capture: this raild runs no workers"))
		return
	}
	sess, err := a.Capture.Start(req.Filter)
	if errors.Is(err, pipeline.ErrTooManyCaptures) {
		a.fail(w, badRequest(http.StatusTooManyRequests, "capture: %d captures are running, the most at once: stop one first", pipeline.MaxCaptures))
		return
	}
	if err != nil {
		a.fail(w, err)
		return
	}
	defer sess.Stop()
	log := a.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log.Info("capture started", "query", r.URL.RawQuery)

	rc := http.NewResponseController(w)
	rc.SetReadDeadline(time.Time{}) // the stream outlives the request's read timeout
	w.Header().Set("Content-Type", "application/x-pcapng")
	w.Header().Set("Trailer", CapturePacketsTrailer+", "+CaptureDroppedTrailer)
	w.WriteHeader(http.StatusOK)
	a.requests[2].Add(1)

	start := time.Now()
	bw := bufio.NewWriterSize(w, 64<<10)
	got, dropped, err := streamCapture(bw, sess, req, r.Context().Done(), func() error {
		rc.SetWriteDeadline(time.Now().Add(captureStall))
		if err := bw.Flush(); err != nil {
			return err
		}
		return rc.Flush()
	})
	w.Header().Set(CapturePacketsTrailer, strconv.Itoa(got))
	w.Header().Set(CaptureDroppedTrailer, strconv.FormatUint(dropped, 10))
	log.Info("capture ended", "query", r.URL.RawQuery, "packets", got, "dropped", dropped,
		"seconds", time.Since(start).Seconds(), "err", err)
}

// streamCapture writes sess as pcapng to w until req's count or duration
// is reached, done is closed or a write fails, calling flush after each
// round of packets. It returns the packets written (as received) and
// those the capture lost.
func streamCapture(w io.Writer, sess *pipeline.CaptureSession, req CaptureRequest, done <-chan struct{}, flush func() error) (int, uint64, error) {
	pw, err := pcapng.NewWriter(w, "raild")
	if err != nil {
		return 0, 0, err
	}
	snap := uint32(sess.SnapLen())
	rx, err := pw.AddInterface(pcapng.Interface{Name: "rail-rx", Description: "frames as the workers received them", LinkType: pcapng.LinkTypeEthernet, SnapLen: snap})
	if err != nil {
		return 0, 0, err
	}
	tx, err := pw.AddInterface(pcapng.Interface{Name: "rail-tx", Description: "frames as the workers transmitted them", LinkType: pcapng.LinkTypeEthernet, SnapLen: snap})
	if err != nil {
		return 0, 0, err
	}
	if err := flush(); err != nil {
		return 0, 0, err
	}
	var deadline <-chan time.Time
	if req.Duration > 0 {
		t := time.NewTimer(req.Duration)
		defer t.Stop()
		deadline = t.C
	}
	start := time.Now()
	got := 0
	var werr error
	var pkt pcapng.Packet
	write := func(p *pipeline.CapturedPacket) bool {
		pkt = pcapng.Packet{Interface: rx, Time: p.Time, Data: p.Received, Length: p.ReceivedLen, Direction: pcapng.Inbound, Comment: captureComment(p)}
		if werr = pw.WritePacket(&pkt); werr != nil {
			return false
		}
		if p.Transmitted != nil {
			pkt.Interface, pkt.Data, pkt.Length, pkt.Direction = tx, p.Transmitted, p.TransmittedLen, pcapng.Outbound
			if werr = pw.WritePacket(&pkt); werr != nil {
				return false
			}
		}
		got++
		return req.Count == 0 || got < req.Count
	}
	finish := func() (int, uint64, error) {
		dropped := sess.Dropped()
		sess.Stop()
		if werr != nil {
			return got, dropped, werr
		}
		now := time.Now()
		err := pw.WriteStats(rx, pcapng.Stats{Time: now, Start: start, End: now, Received: uint64(got), Dropped: dropped,
			Comment: fmt.Sprintf("%d packets captured, %d lost because the reader was slow", got, dropped)})
		if err == nil {
			err = flush()
		}
		return got, dropped, err
	}
	for {
		if sess.Read(write) > 0 {
			if werr == nil {
				werr = flush()
			}
			if werr != nil {
				return finish()
			}
		}
		if req.Count > 0 && got >= req.Count {
			return finish()
		}
		select {
		case <-sess.Ready():
		case <-deadline:
			sess.Read(write)
			return finish()
		case <-done:
			return finish()
		}
	}
}

// captureComment is a captured packet's pcapng comment.
func captureComment(p *pipeline.CapturedPacket) string {
	svc, backend := "-", "-"
	if p.Service != "" {
		svc = p.Service
	}
	if p.Backend.IsValid() {
		backend = p.Backend.String()
	}
	return fmt.Sprintf("verdict=%v reason=%v service=%s backend=%s queue=%d cpu=%d", p.Verdict, p.Reason, svc, backend, p.Queue, p.CPU)
}

// writeCaptureMetrics writes the capture counters of docs/reference.md.
func writeCaptureMetrics(w io.Writer, c *pipeline.Capture) {
	if c == nil {
		return
	}
	metrics.WriteGaugeUint64(w, "rail_captures_running", uint64(c.Running()))
	for _, t := range c.Taps() {
		l := `{queue="` + strconv.Itoa(t.Queue) + `",cpu="` + strconv.Itoa(t.CPU) + `"}`
		metrics.WriteCounterUint64(w, "rail_capture_packets_total"+l, t.Captured())
		metrics.WriteCounterUint64(w, "rail_capture_dropped_total"+l, t.Dropped())
	}
}
