package pipeline

import (
	"bytes"
	"testing"
)

// FuzzProcess feeds arbitrary frames to Process. It must never panic, never
// write outside the frame and the headroom it may use (EncapLen bytes in
// front), give a verdict from the enum with a reason of that verdict, and
// for Tx leave the inner packet byte for byte as it came in.
func FuzzProcess(f *testing.F) {
	for _, tc := range verdictCases(f) {
		f.Add(tc.frame)
	}
	c := testConfig()
	w := newTestWorker(f, c)
	const guard = 64
	f.Fuzz(func(t *testing.T, frame []byte) {
		buf := make([]byte, guard+testHeadroom+len(frame)+guard)
		for i := range buf {
			buf[i] = 0xa5
		}
		copy(buf[guard+testHeadroom:], frame)
		orig := append([]byte(nil), buf...)
		// The packet's buffer ends where the frame ends, as a UMEM frame
		// would end; the guard beyond is outside the slice entirely.
		p := &Packet{Buf: buf[:guard+testHeadroom+len(frame)], Off: guard + testHeadroom, Len: len(frame)}
		r := w.Process(p)
		w.Flush()
		if r.Verdict > Drop || r.Reason >= NumReasons || r.Reason.Verdict() != r.Verdict {
			t.Fatalf("verdict %v reason %v", r.Verdict, r.Reason)
		}
		lo := guard + testHeadroom - EncapLen
		hi := guard + testHeadroom + len(frame)
		if !bytes.Equal(buf[:lo], orig[:lo]) || !bytes.Equal(buf[hi:], orig[hi:]) {
			t.Fatalf("Process wrote outside the frame and its headroom")
		}
		if r.Verdict != Tx {
			if !bytes.Equal(buf, orig) {
				t.Fatalf("Process changed a frame it did not forward (%v/%v)", r.Verdict, r.Reason)
			}
			return
		}
		if p.Off < lo || p.Off+p.Len > hi || p.Len < outerLen {
			t.Fatalf("egress frame [%d,%d) outside [%d,%d)", p.Off, p.Off+p.Len, lo, hi)
		}
		out := buf[p.Off : p.Off+p.Len]
		inner := out[outerLen:]
		// The inner packet did not move: it is at the same place in the
		// original bytes.
		at := p.Off + outerLen
		if !bytes.Equal(inner, orig[at:at+len(inner)]) {
			t.Fatalf("inner packet changed")
		}
		if onesSum(out[14:34]) != 0xffff {
			t.Fatalf("bad outer checksum")
		}
	})
}
