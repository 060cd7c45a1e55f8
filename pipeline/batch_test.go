package pipeline

import (
	"bytes"
	"math/rand/v2"
	"testing"
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
	for k := 0; k+64 <= len(frames); k += 64 {
		check("mixed", frames[k:k+64])
	}
	// A batch of one flow's packets, and the same again: the second time
	// the flow is in the table (the fast path).
	in := defaultInner()
	f := greFrame(t, in, nil)
	check("repeated", [][]byte{f, f, f, f})
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
