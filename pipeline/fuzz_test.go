package pipeline

import (
	"bytes"
	"testing"

	"github.com/rail-lb/rail/pipeline/header"
)

// FuzzProcess feeds arbitrary frames to Process. It must never panic, never
// write outside the frame and the headroom it may use (EncapLen bytes in
// front), give a verdict from the enum with a reason of that verdict, and
// for Tx transmit a frame that gopacket decodes as a valid one
// (checkTransmitted: outer IPv4 or IPv6 with valid lengths and checksum,
// GRE, an inner packet; or an ICMP too-big reply with valid checksums)
// with the inner packet byte for byte as it came in. The interface MTU is
// 1500, so that too-big replies are among the frames checked.
func FuzzProcess(f *testing.F) {
	for _, tc := range append(verdictCases(f), mtuCases(f)...) {
		f.Add(tc.frame)
	}
	c := testConfig()
	c.MTU = 1500
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
		lo := guard + testHeadroom - MaxHeadroom
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
		if err := checkTransmitted(out, c.Local, c.Local6); err != nil {
			t.Fatalf("transmitted frame (%v): %v\n%x", r.Reason, err, out)
		}
		if r.Reason == ICMPTooBig {
			return
		}
		// The inner packet did not move: it is at the same place in the
		// original bytes, right after the GRE header.
		at := p.Off + outerLen
		if out[12] == 0x86 {
			at = p.Off + header.EthernetLen + EncapLen6
		}
		inner := buf[at : p.Off+p.Len]
		if !bytes.Equal(inner, orig[at:at+len(inner)]) {
			t.Fatalf("inner packet changed")
		}
	})
}

// FuzzFastPathMatchesGeneral checks that the fast path of Process decides
// and rewrites exactly as the general path would, for any frame.
func FuzzFastPathMatchesGeneral(f *testing.F) {
	for _, tc := range verdictCases(f) {
		f.Add(tc.frame)
	}
	c := testConfig()
	fast, general := newTestWorker(f, c), newTestWorker(f, c)
	general.generalOnly = true
	f.Fuzz(func(t *testing.T, frame []byte) {
		a, b := packetFor(frame), packetFor(frame)
		ra := fast.Process(a)
		rb := general.Process(b)
		if ra != rb {
			t.Fatalf("fast path %+v, general path %+v", ra, rb)
		}
		if a.Off != b.Off || a.Len != b.Len || !bytes.Equal(a.Buf, b.Buf) {
			t.Fatalf("fast and general paths wrote different frames")
		}
	})
}

// TestFastPathMatchesGeneral runs the fuzz target's property over many
// systematic one-byte corruptions of canonical GRE frames, so that every
// fast-path condition is exercised on each test run.
func TestFastPathMatchesGeneral(t *testing.T) {
	c := testConfig()
	fast, general := newTestWorker(t, c), newTestWorker(t, c)
	general.generalOnly = true
	base := greFrame(t, defaultInner(), nil)
	udp := defaultInner()
	udp.proto, udp.dst, udp.dport = 17, backends[0], 53 // not a VIP: no service
	frames := [][]byte{base, greFrame(t, udp, nil)}
	fastHits := 0
	for _, fr := range frames {
		for i := 0; i < fastLen+2 && i < len(fr); i++ {
			for _, v := range []byte{0x00, 0x01, 0x06, 0x11, 0x2f, 0x40, 0x45, 0x46, 0x80, 0xff, fr[i] + 1, fr[i] - 1} {
				m := append([]byte(nil), fr...)
				m[i] = v
				for _, cut := range []int{0, 1, 4} {
					in := m[:len(m)-cut]
					a, b := packetFor(in), packetFor(in)
					ra, rb := fast.Process(a), general.Process(b)
					if ra != rb || a.Off != b.Off || a.Len != b.Len || !bytes.Equal(a.Buf, b.Buf) {
						t.Fatalf("byte %d = %#x, cut %d: fast %+v, general %+v", i, v, cut, ra, rb)
					}
					if ra.Verdict == Tx {
						fastHits++
					}
				}
			}
		}
	}
	if fastHits == 0 {
		t.Fatal("no corrupted frame was forwarded: the test exercises nothing")
	}
}
