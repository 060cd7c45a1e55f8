package pipeline

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"unsafe"
)

// TestBatchMatchesProcess: ProcessBatch gives the verdicts and the bytes
// that Process gives frame by frame — on a batch of every verdict case, a
// batch of one, and batches of random frames.
func TestBatchMatchesProcess(t *testing.T) {
	cases := append(verdictCases(t), mtuCases(t)...)
	var frames [][]byte
	for _, tc := range cases {
		frames = append(frames, tc.frame)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 200 { // random mutations of real frames
		f := bytes.Clone(frames[r.IntN(len(frames))])
		for range 1 + r.IntN(4) {
			f[r.IntN(len(f))] = byte(r.Uint32())
		}
		frames = append(frames, f)
	}
	check := func(name string, batch [][]byte) {
		t.Helper()
		c := testConfig()
		c.MTU = 1500
		one, many := newTestWorker(t, c), newTestWorker(t, c)
		ps := make([]Packet, len(batch))
		for i, f := range batch {
			ps[i] = *packetFor(f)
		}
		rs := make([]Result, len(batch))
		many.ProcessBatch(ps, rs)
		for i, f := range batch {
			p := packetFor(f)
			want := one.Process(p)
			if rs[i] != want {
				t.Fatalf("%s: frame %d: batch %+v, Process %+v", name, i, rs[i], want)
			}
			if want.Verdict == Tx && !bytes.Equal(ps[i].Buf[ps[i].Off:ps[i].Off+ps[i].Len], p.Buf[p.Off:p.Off+p.Len]) {
				t.Fatalf("%s: frame %d: the batch wrote other bytes", name, i)
			}
		}
	}
	check("every case", frames[:len(cases)])
	check("one", frames[:1])
	check("longer than a chunk", frames[:Batch*2+22])
	for k := 0; k+64 <= len(frames); k += 64 {
		check("mixed", frames[k:k+64])
	}
	// A batch of one flow's packets, and the same again: the second time
	// the flow is in the table (the fast path).
	in := defaultInner()
	f := greFrame(t, in, nil)
	check("repeated", [][]byte{f, f, f, f})
}

// TestStageFindsTheBucket: for each form a fast path takes, the bucket
// stage records (what fetchFirst and fetchAhead fetch) is the one the flow's entry went
// to — a wrong one would cost a miss per packet and change no verdict.
func TestStageFindsTheBucket(t *testing.T) {
	for _, tc := range []struct {
		name  string
		frame []byte
	}{
		{"GRE-in IPv4", greFrame(t, defaultInner(), nil)},
		{"GRE-in IPv4 around IPv6", greFrame(t, v6Inner(), nil)},
		{"plain IPv4", plainFrame(t, defaultInner())},
	} {
		w := newTestWorker(t, testConfig())
		if r := w.Process(packetFor(tc.frame)); r.Verdict != Tx {
			t.Fatalf("%s: %v", tc.name, r)
		}
		w.stage(0, packetFor(tc.frame))
		x := w.staged[0]
		want := stagedNone
		for i := range w.ct.buckets {
			if w.ct.buckets[i][0].deadline != 0 {
				want = uint32(i)
			}
		}
		for i := range w.ct.buckets6 {
			if w.ct.buckets6[i][0].deadline != 0 {
				want = uint32(i) | stagedV6
			}
		}
		if want == stagedNone || x != want {
			t.Errorf("%s: staged bucket %#x, the entry is in %#x", tc.name, x, want)
		}
	}
	// Forms no fast path takes stage no bucket.
	w := newTestWorker(t, testConfig())
	for name, f := range map[string][]byte{"a runt": {1, 2, 3}, "GRE over IPv6": gre6Frame(t, v6Inner())} {
		if w.stage(0, packetFor(f)); w.staged[0] != stagedNone {
			t.Errorf("%s staged bucket %#x", name, w.staged[0])
		}
	}
}

// TestBucketSizes: prefetch_amd64.s finds a bucket at its index shifted
// by 7 (IPv4) or 8 (IPv6).
func TestBucketSizes(t *testing.T) {
	if s4, s6 := unsafe.Sizeof(ctBucket4{}), unsafe.Sizeof(ctBucket6{}); s4 != 1<<7 || s6 != 1<<8 {
		t.Errorf("buckets of %d and %d bytes; prefetchStaged assumes 128 and 256", s4, s6)
	}
}

func TestBatchNoAllocs(t *testing.T) {
	w := newTestWorker(t, testConfig())
	cases := verdictCases(t)
	ps := make([]Packet, len(cases))
	for i, tc := range cases {
		ps[i] = *packetFor(tc.frame)
	}
	rs := make([]Result, len(cases))
	allocs := testing.AllocsPerRun(50, func() {
		for i, tc := range cases {
			copy(ps[i].Buf[testHeadroom:], tc.frame)
			ps[i].Off, ps[i].Len = testHeadroom, len(tc.frame)
		}
		w.ProcessBatch(ps, rs)
		w.Flush()
	})
	if allocs != 0 {
		t.Errorf("%v allocations per batch", allocs)
	}
}

// FuzzBatchMatchesProcess: for any batch (the input split at 0xff 0xfe
// markers into up to 16 frames), ProcessBatch and Process agree.
func FuzzBatchMatchesProcess(f *testing.F) {
	for _, tc := range verdictCases(f) {
		f.Add(append(append(bytes.Clone(tc.frame), 0xff, 0xfe), tc.frame...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		parts := bytes.SplitN(data, []byte{0xff, 0xfe}, 16)
		c := testConfig()
		one, many := newTestWorker(t, c), newTestWorker(t, c)
		ps := make([]Packet, len(parts))
		for i, p := range parts {
			ps[i] = *packetFor(p)
		}
		rs := make([]Result, len(parts))
		many.ProcessBatch(ps, rs)
		for i, part := range parts {
			p := packetFor(part)
			if want := one.Process(p); rs[i] != want {
				t.Fatalf("frame %d: batch %+v, Process %+v", i, rs[i], want)
			} else if want.Verdict == Tx && !bytes.Equal(ps[i].Buf[ps[i].Off:ps[i].Off+ps[i].Len], p.Buf[p.Off:p.Off+p.Len]) {
				t.Fatalf("frame %d: other bytes", i)
			}
		}
	})
}
