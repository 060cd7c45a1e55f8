package pipeline

import (
	"bytes"
	"testing"
)

// TestLoopCapture drives Poll through the fake kernel with a capture
// running: every frame is captured as received, and each transmitted copy
// is byte for byte the frame the kernel sent, in order; frames the full tx
// ring refused are tx_ring_full drops without one. Forwarding is what it
// is without a capture.
func TestLoopCapture(t *testing.T) {
	run := func(capture bool) (sent [][]byte, got []CapturedPacket, tx uint64) {
		o := loopOpts(256, 64)
		o.TxSize, o.CompletionSize = 16, 16
		l, _, k := memoryLoop(t, o)
		hub := NewCapture()
		l.Tap = hub.NewTap(0, 2)
		var s *CaptureSession
		if capture {
			var err error
			if s, err = hub.Start(CaptureFilter{}); err != nil {
				t.Fatal(err)
			}
		}
		k.Take(40)
		var frames [][]byte
		for i := range 40 {
			f, _, _ := flowFrame(t, i) // every fifth passed to the kernel
			frames = append(frames, f)
			if !k.DeliverFrame(f) {
				t.Fatalf("frame %d not delivered", i)
			}
		}
		if n := l.Poll(); n != 40 {
			t.Fatalf("poll received %d", n)
		}
		k.SendFunc(1<<20, func(pkt []byte) { sent = append(sent, append([]byte(nil), pkt...)) })
		if s != nil {
			got = readAll(s)
			for i, p := range got {
				if !bytes.Equal(p.Received, frames[i]) || p.Queue != 0 || p.CPU != 2 {
					t.Errorf("packet %d: the received copy differs", i)
				}
			}
		}
		return sent, got, l.W.Stats().Transmitted()
	}
	plainSent, _, plainTx := run(false)
	sent, got, tx := run(true)
	if tx != plainTx || len(sent) != len(plainSent) || tx != 16 {
		t.Fatalf("with a capture: %d transmitted (%d sent), without: %d (%d); want 16", tx, len(sent), plainTx, len(plainSent))
	}
	if len(got) != 40 {
		t.Fatalf("captured %d of 40", len(got))
	}
	var out [][]byte
	full := 0
	for _, p := range got {
		switch {
		case p.Reason == ReasonNone:
			out = append(out, p.Transmitted)
		case p.Reason == TxRingFull:
			full++
			if p.Transmitted != nil || p.Verdict != Drop {
				t.Errorf("a refused frame: %v, transmitted copy %v", p.Verdict, p.Transmitted != nil)
			}
		case p.Verdict != Pass:
			t.Errorf("captured %v/%v", p.Verdict, p.Reason)
		}
	}
	if len(out) != len(sent) || full != 32-16 {
		t.Fatalf("%d transmitted copies for %d sent, %d tx_ring_full (want 16)", len(out), len(sent), full)
	}
	for i := range sent {
		if !bytes.Equal(out[i], sent[i]) {
			t.Errorf("frame %d: captured\n%x\nsent\n%x", i, out[i], sent[i])
		}
	}
}
