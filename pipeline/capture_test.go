package pipeline

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
)

// captureBatch runs frames through w as the worker loop does with a tap:
// Begin, Received, Process, Processed for each frame, Commit with the tx
// ring taking the first sent of the transmitted ones (-1: all). It returns
// the results, and the frames as Process left them.
func captureBatch(w *Worker, tap *CaptureTap, frames [][]byte, sent int) ([]Result, [][]byte) {
	c := tap.Begin(w)
	var rs []Result
	var outs [][]byte
	ntx := 0
	for _, f := range frames {
		p := packetFor(f)
		if c != nil {
			c.Received(p)
		}
		r := w.Process(p)
		if c != nil {
			c.Processed(p, r)
		}
		if r.Verdict == Tx {
			ntx++
		}
		rs = append(rs, r)
		outs = append(outs, p.Buf[p.Off:p.Off+p.Len])
	}
	if sent < 0 || sent > ntx {
		sent = ntx
	}
	if c != nil {
		c.Commit(sent)
	}
	w.Flush()
	return rs, outs
}

func readAll(s *CaptureSession) []CapturedPacket {
	var got []CapturedPacket
	s.Read(func(p *CapturedPacket) bool {
		q := *p
		q.Received = append([]byte(nil), p.Received...)
		if p.Transmitted != nil {
			q.Transmitted = append([]byte(nil), p.Transmitted...)
		}
		got = append(got, q)
		return true
	})
	return got
}

func TestCaptureFilters(t *testing.T) {
	cases := verdictCases(t)
	var frames [][]byte
	for _, tc := range cases {
		frames = append(frames, tc.frame)
	}
	hub := NewCapture()
	tap := hub.NewTap(3, 5)
	start := func(f CaptureFilter) *CaptureSession {
		s, err := hub.Start(f)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	all := start(CaptureFilter{})
	drops := start(CaptureFilter{Verdicts: 1 << Drop})
	web := start(CaptureFilter{Service: "web"})
	toB0 := start(CaptureFilter{Backend: backends[0], Verdicts: 1 << Tx})
	client := start(CaptureFilter{Src: clientIP, DstPort: 80, Proto: 6})
	noBackend := start(CaptureFilter{Reasons: 1 << NoBackend, SnapLen: 20})

	w := newTestWorker(t, testConfig())
	rs, outs := captureBatch(w, tap, frames[:min(len(frames), Batch)], -1)

	got := readAll(all)
	if len(got) != len(rs) {
		t.Fatalf("the unfiltered capture has %d packets, want %d", len(got), len(rs))
	}
	for i, p := range got {
		tc := cases[i]
		if p.Verdict != rs[i].Verdict || p.Reason != rs[i].Reason || p.Queue != 3 || p.CPU != 5 {
			t.Errorf("%s: captured %v/%v on %d/%d, processed %v/%v", tc.name, p.Verdict, p.Reason, p.Queue, p.CPU, rs[i].Verdict, rs[i].Reason)
		}
		if !bytes.Equal(p.Received, tc.frame) || p.ReceivedLen != len(tc.frame) {
			t.Errorf("%s: the received copy differs from the frame", tc.name)
		}
		if rs[i].Verdict == Tx {
			if !bytes.Equal(p.Transmitted, outs[i]) || p.TransmittedLen != len(outs[i]) {
				t.Errorf("%s: the transmitted copy differs from what Process wrote", tc.name)
			}
		} else if p.Transmitted != nil {
			t.Errorf("%s: %v, yet a transmitted copy", tc.name, rs[i].Verdict)
		}
		if rs[i].Reason == ReasonNone {
			if want := w.snap.BackendAddr(rs[i].Service, rs[i].Backend); p.Backend != want || p.Service != w.snap.ServiceName(rs[i].Service) {
				t.Errorf("%s: captured %s %v, forwarded to %s %v", tc.name, p.Service, p.Backend, w.snap.ServiceName(rs[i].Service), want)
			}
		}
	}
	count := func(f func(i int) bool) int {
		n := 0
		for i := range rs {
			if f(i) {
				n++
			}
		}
		return n
	}
	check := func(name string, s *CaptureSession, want int, each func(p *CapturedPacket) bool) {
		t.Helper()
		got := readAll(s)
		if len(got) != want || want == 0 {
			t.Errorf("%s: %d packets, want %d (and some)", name, len(got), want)
		}
		for _, p := range got {
			if !each(&p) {
				t.Errorf("%s: captured %+v", name, p)
			}
		}
	}
	check("verdict drop", drops, count(func(i int) bool { return rs[i].Verdict == Drop }), func(p *CapturedPacket) bool { return p.Verdict == Drop })
	check("service web", web, count(func(i int) bool { return got[i].Service == "web" }), func(p *CapturedPacket) bool { return p.Service == "web" })
	check("backend", toB0, count(func(i int) bool { return got[i].Backend == backends[0] }), func(p *CapturedPacket) bool { return p.Backend == backends[0] })
	check("5-tuple", client, count(func(i int) bool {
		// A later fragment has no ports: it matches no port filter.
		in := got[i].Received
		return rs[i].Verdict == Tx && bytes.Contains(in, clientIP.AsSlice()) && bytes.Contains(in, []byte{0, 80}) &&
			!strings.Contains(cases[i].name, "later fragment")
	}), func(p *CapturedPacket) bool { return bytes.Contains(p.Received, clientIP.AsSlice()) })
	check("reason no_backend, snaplen 20", noBackend, count(func(i int) bool { return rs[i].Reason == NoBackend }), func(p *CapturedPacket) bool {
		return p.Reason == NoBackend && len(p.Received) == 20 && p.ReceivedLen > 20
	})
	if tap.Captured() == 0 || tap.Dropped() != 0 {
		t.Errorf("tap counters: %d captured, %d dropped", tap.Captured(), tap.Dropped())
	}
}

// TestCaptureSlowReader fills a capture nobody reads: the copies past its
// ring are dropped and counted, and every packet is still forwarded.
func TestCaptureSlowReader(t *testing.T) {
	frame := greFrame(t, defaultInner(), nil)
	batch := make([][]byte, Batch)
	for i := range batch {
		batch[i] = frame
	}
	run := func(hub *Capture, tap *CaptureTap) uint64 {
		w := newTestWorker(t, testConfig())
		for range 2 * CaptureSlots / Batch {
			captureBatch(w, tap, batch, -1)
		}
		return w.Stats().Transmitted()
	}
	hub := NewCapture()
	tap := hub.NewTap(0, 0)
	without := run(hub, tap)
	s, err := hub.Start(CaptureFilter{})
	if err != nil {
		t.Fatal(err)
	}
	with := run(hub, tap)
	if with != without || with != 2*CaptureSlots {
		t.Errorf("forwarded %d with a stalled capture, %d without (want %d)", with, without, 2*CaptureSlots)
	}
	if s.Dropped() != CaptureSlots || tap.Dropped() != CaptureSlots {
		t.Errorf("dropped %d (tap %d), want %d", s.Dropped(), tap.Dropped(), CaptureSlots)
	}
	if got := readAll(s); len(got) != CaptureSlots {
		t.Errorf("read %d, want the ring's %d", len(got), CaptureSlots)
	}
	// Read, the ring has room again.
	run(hub, tap)
	if got := readAll(s); len(got) != CaptureSlots {
		t.Errorf("after reading: %d, want %d", len(got), CaptureSlots)
	}
	s.Stop()
	s.Stop()
	if hub.Running() != 0 {
		t.Errorf("%d running after Stop", hub.Running())
	}
	run(hub, tap)
	if got := readAll(s); len(got) != 0 {
		t.Errorf("a stopped capture got %d packets", len(got))
	}
}

// TestCaptureTxRingFull: frames the tx ring refused are captured as the
// worker counts them, tx_ring_full drops without a transmitted copy.
func TestCaptureTxRingFull(t *testing.T) {
	frame := greFrame(t, defaultInner(), nil)
	hub := NewCapture()
	tap := hub.NewTap(0, 0)
	s, err := hub.Start(CaptureFilter{})
	if err != nil {
		t.Fatal(err)
	}
	w := newTestWorker(t, testConfig())
	captureBatch(w, tap, [][]byte{frame, frame, frame}, 1)
	got := readAll(s)
	if len(got) != 3 || got[0].Reason != ReasonNone || got[0].Transmitted == nil {
		t.Fatalf("captured %+v", got)
	}
	for _, p := range got[1:] {
		if p.Verdict != Drop || p.Reason != TxRingFull || p.Transmitted != nil {
			t.Errorf("a refused frame captured as %v/%v (tx copy %v)", p.Verdict, p.Reason, p.Transmitted != nil)
		}
	}
}

func TestCaptureLimit(t *testing.T) {
	hub := NewCapture()
	hub.NewTap(0, 0)
	var ss []*CaptureSession
	for range MaxCaptures {
		s, err := hub.Start(CaptureFilter{})
		if err != nil {
			t.Fatal(err)
		}
		ss = append(ss, s)
	}
	if _, err := hub.Start(CaptureFilter{}); err != ErrTooManyCaptures {
		t.Fatalf("capture %d: %v, want ErrTooManyCaptures", MaxCaptures+1, err)
	}
	ss[3].Stop()
	if _, err := hub.Start(CaptureFilter{Dst: netip.MustParseAddr("192.0.2.10")}); err != nil {
		t.Errorf("after a Stop: %v", err)
	}
}

// TestNoAllocsCapture is TestNoAllocs with the worker loop's capture hook:
// a batch allocates nothing with no capture running and with one.
func TestNoAllocsCapture(t *testing.T) {
	frame := greFrame(t, defaultInner(), nil)
	drop := greFrame(t, innerSpec{src: clientIP, dst: netip.MustParseAddr("192.0.2.99"), proto: 6, sport: 1, dport: 443}, nil)
	w := newTestWorker(t, testConfig())
	hub := NewCapture()
	tap := hub.NewTap(0, 0)
	var ps [4]*Packet
	src := [4][]byte{frame, frame, drop, frame}
	for i := range ps {
		ps[i] = packetFor(src[i])
	}
	batch := func() {
		c := tap.Begin(w)
		for i, p := range ps {
			copy(p.Buf[testHeadroom:], src[i])
			p.Off, p.Len = testHeadroom, len(src[i])
			if c != nil {
				c.Received(p)
			}
			r := w.Process(p)
			if c != nil {
				c.Processed(p, r)
			}
		}
		if c != nil {
			c.Commit(3)
		}
		w.Flush()
	}
	if n := testing.AllocsPerRun(1000, batch); n != 0 {
		t.Errorf("no capture running: a batch allocates %v times", n)
	}
	s, err := hub.Start(CaptureFilter{Service: "web"})
	if err != nil {
		t.Fatal(err)
	}
	s2, err := hub.Start(CaptureFilter{Src: clientIP, Verdicts: 1 << Drop})
	if err != nil {
		t.Fatal(err)
	}
	// The rings overflow (nobody reads): dropping allocates nothing either.
	if n := testing.AllocsPerRun(1000, batch); n != 0 {
		t.Errorf("captures running: a batch allocates %v times", n)
	}
	if s.Dropped() == 0 || s2.Dropped() == 0 || tap.Captured() != 2*CaptureSlots {
		t.Errorf("captured %d, dropped %d and %d", tap.Captured(), s.Dropped(), s2.Dropped())
	}
}

// TestCaptureConcurrent runs a worker and readers that start, read and
// stop captures at the same time (run it with -race): every packet read
// is whole, and forwarding counts every packet.
func TestCaptureConcurrent(t *testing.T) {
	frame := greFrame(t, defaultInner(), nil)
	batch := make([][]byte, 16)
	for i := range batch {
		batch[i] = frame
	}
	hub := NewCapture()
	tap := hub.NewTap(0, 0)
	w := newTestWorker(t, testConfig())
	done := make(chan struct{})
	const batches = 2000
	go func() {
		defer close(done)
		for range batches {
			captureBatch(w, tap, batch, -1)
		}
	}()
	read := 0
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		s, err := hub.Start(CaptureFilter{Service: "web"})
		if err != nil {
			t.Fatal(err)
		}
		for range 5 {
			select {
			case <-s.Ready():
			case <-done:
			}
			s.Read(func(p *CapturedPacket) bool {
				if !bytes.Equal(p.Received, frame) || p.Service != "web" || p.TransmittedLen == 0 {
					t.Errorf("a torn capture: %d bytes received, service %q", len(p.Received), p.Service)
				}
				read++
				return true
			})
		}
		s.Stop()
	}
	if tx := w.Stats().Transmitted(); tx != batches*uint64(len(batch)) {
		t.Errorf("forwarded %d of %d", tx, batches*len(batch))
	}
	if read == 0 {
		t.Error("no packet read")
	}
	t.Logf("read %d captured packets, %d dropped", read, tap.Dropped())
}
