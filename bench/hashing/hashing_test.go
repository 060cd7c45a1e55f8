package hashing

import (
	"bytes"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rail-lb/rail/maglev"
)

func pickers(t *testing.T, bs []maglev.Backend) map[string]Picker {
	t.Helper()
	out := map[string]Picker{}
	for _, a := range Algorithms(50) {
		p, err := a.New(bs, 10007, 7)
		if err != nil {
			t.Fatalf("%s: %v", a.Name, err)
		}
		out[a.Name] = p
	}
	return out
}

func TestDrainedNeverPicked(t *testing.T) {
	bs := Pool(0, 20)
	bs[3].Weight, bs[11].Weight = 0, 0
	for name, p := range pickers(t, bs) {
		for _, h := range FlowHashes(20000, 1) {
			if b := p.Pick(h); b < 0 || b >= len(bs) || b == 3 || b == 11 {
				t.Fatalf("%s: Pick = %d", name, b)
			}
		}
	}
	all := Pool(0, 3)
	for i := range all {
		all[i].Weight = 0
	}
	for name, p := range pickers(t, all) {
		if b := p.Pick(42); b != -1 {
			t.Errorf("%s with every weight 0: Pick = %d, want -1", name, b)
		}
	}
}

// Order independence: the same (key, weight) set in another order picks
// the same keys.
func TestOrderIndependence(t *testing.T) {
	bs := WeightedPool(50, 2, 5, 3)
	rev := slices.Clone(bs)
	slices.Reverse(rev)
	a, b := pickers(t, bs), pickers(t, rev)
	for name := range a {
		for _, h := range FlowHashes(5000, 2) {
			if ka, kb := bs[a[name].Pick(h)].Key, rev[b[name].Pick(h)].Key; ka != kb {
				t.Fatalf("%s: %s vs %s for the reversed pool", name, ka, kb)
			}
		}
	}
}

// Ring and rendezvous are minimally disruptive: removing a backend moves
// only its own flows.
func TestMinimalDisruption(t *testing.T) {
	bs := Pool(0, 30)
	rest := slices.Delete(slices.Clone(bs), 7, 8)
	before, after := pickers(t, bs), pickers(t, rest)
	for _, name := range []string{"ring", "rendezvous"} {
		for _, h := range FlowHashes(20000, 5) {
			kb, ka := bs[before[name].Pick(h)].Key, rest[after[name].Pick(h)].Key
			if kb != bs[7].Key && ka != kb {
				t.Fatalf("%s: a flow of %s moved to %s", name, kb, ka)
			}
		}
	}
}

func TestWeightedRendezvousShares(t *testing.T) {
	bs := []maglev.Backend{{Key: "a", Weight: 1}, {Key: "b", Weight: 3}, {Key: "c", Weight: 6}}
	r := NewRendezvous(bs, 0)
	c := countFlows(r, 3, FlowHashes(200000, 9))
	for i, want := range []float64{0.1, 0.3, 0.6} {
		if got := float64(c[i]) / 200000; math.Abs(got/want-1) > 0.03 {
			t.Errorf("%s: share %.4f, want %.2f ±3%%", bs[i].Key, got, want)
		}
	}
}

func TestSpreadOf(t *testing.T) {
	s := SpreadOf([]int{1, 2, 3, 2})
	if s.MaxMean != 1.5 || math.Abs(s.CV-math.Sqrt(0.5)/2) > 1e-12 {
		t.Errorf("SpreadOf = %+v", s)
	}
}

func TestConfigCheck(t *testing.T) {
	c := DefaultConfig()
	c.Ms = []uint32{65536}
	if err := c.Check(); err == nil || !strings.Contains(err.Error(), "65537") {
		t.Errorf("Check = %v, want a hint at 65537", err)
	}
}

// TestRun runs a tiny evaluation end to end: summary, CSV and PNG files.
func TestRun(t *testing.T) {
	c := DefaultConfig()
	c.Ns, c.Ms, c.Trials = []int{5, 20}, []uint32{1009}, 2
	c.Flows, c.DisruptN, c.DisruptKs, c.DisruptFlows = 5000, 40, []int{1, 4}, 5000
	c.WeightsN = 10
	res, err := Run(c)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(res.Evenness), 3*2*2; got != want {
		t.Errorf("%d evenness rows, want %d", got, want)
	}
	for _, d := range res.DisruptionStats() {
		if d.Changed < d.Ideal*0.5 || d.Changed > 0.5 {
			t.Errorf("%+v: implausible", d)
		}
	}
	for _, w := range res.WeightStats() {
		if w.Drained != 0 {
			t.Errorf("%s: a weight-0 backend got share %g", w.Algo, w.Drained)
		}
		if w.Algo == "maglev" && w.SlotsMax > 0.05 {
			t.Errorf("maglev slot shares off by %.1f%%", 100*w.SlotsMax)
		}
	}
	var sum bytes.Buffer
	res.WriteSummary(&sum)
	for _, want := range []string{"evenness", "disruption", "weights", "maglev", "rendezvous", "ring"} {
		if !strings.Contains(sum.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, sum.String())
		}
	}
	bt, err := BuildTimes([]int{10}, []uint32{1009}, 3, 0)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files, err := WriteAll(res, bt, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 4+3 {
		t.Errorf("files %v", files)
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if strings.HasSuffix(f, ".png") {
			img, err := png.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if img.Bounds().Dx() < 1000 {
				t.Errorf("%s: %v", f, img.Bounds())
			}
		} else if n := bytes.Count(b, []byte("\n")); n < 2 {
			t.Errorf("%s: %d lines", f, n)
		}
	}
}
