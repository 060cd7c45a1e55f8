package hashing

import (
	"fmt"
	"image/color"
	"io"
	"math"
	"math/rand/v2"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Colours per algorithm (colour-blind-safe Okabe–Ito) and for the ideal.
var (
	algoColor = map[string]color.Color{
		"maglev":     color.RGBA{0x00, 0x72, 0xb2, 0xff}, // blue
		"rendezvous": color.RGBA{0xe6, 0x9f, 0x00, 0xff}, // orange
		"ring":       color.RGBA{0x00, 0x9e, 0x73, 0xff}, // green
	}
	idealColor = color.Black
	algoGlyph  = map[string]draw.GlyphDrawer{
		"maglev": draw.CircleGlyph{}, "rendezvous": draw.TriangleGlyph{}, "ring": draw.SquareGlyph{},
	}
	algos  = []string{"maglev", "rendezvous", "ring"}
	dashed = []vg.Length{vg.Points(6), vg.Points(3)}
)

func newPlot(title, x, y string) *plot.Plot {
	p := plot.New()
	p.Title.Text = title
	p.Title.TextStyle.Font.Size = vg.Points(13)
	p.X.Label.Text = x
	p.Y.Label.Text = y
	p.X.Label.TextStyle.Font.Size = vg.Points(11)
	p.Y.Label.TextStyle.Font.Size = vg.Points(11)
	p.Legend.TextStyle.Font.Size = vg.Points(10)
	p.Add(plotter.NewGrid())
	return p
}

// fixedTicks are the default ticks labelled with a fixed format (the
// default labels can round 1.1 to "1").
type fixedTicks string

func (f fixedTicks) Ticks(lo, hi float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = fmt.Sprintf(string(f), ts[i].Value)
		}
	}
	return ts
}

func logX(p *plot.Plot) {
	p.X.Scale = plot.LogScale{}
	p.X.Tick.Marker = plot.LogTicks{Prec: -1}
}

func addLine(p *plot.Plot, name string, xys plotter.XYs, c color.Color, dash []vg.Length, glyph draw.GlyphDrawer) error {
	l, s, err := plotter.NewLinePoints(xys)
	if err != nil {
		return err
	}
	l.Color, l.Width, l.Dashes = c, vg.Points(1.6), dash
	s.Color, s.Radius = c, vg.Points(2.5)
	if glyph != nil {
		s.Shape = glyph
	}
	p.Add(l, s)
	p.Legend.Add(name, l, s)
	return nil
}

// savePanels draws plots side by side into one PNG of w×h inches.
func savePanels(out io.Writer, w, h float64, ps ...*plot.Plot) error {
	c := vgimg.NewWith(vgimg.UseWH(vg.Length(w)*vg.Inch, vg.Length(h)*vg.Inch), vgimg.UseDPI(110))
	dc := draw.New(c)
	t := draw.Tiles{Rows: 1, Cols: len(ps), PadX: vg.Points(18), PadTop: vg.Points(6), PadBottom: vg.Points(6),
		PadLeft: vg.Points(6), PadRight: vg.Points(12)}
	canv := plot.Align([][]*plot.Plot{ps}, t, dc)
	for i, p := range ps {
		p.Draw(canv[0][i])
	}
	_, err := vgimg.PngCanvas{Canvas: c}.WriteTo(out)
	return err
}

// PlotEvenness draws max/mean and CV against N at table size m: solid
// lines for slots per backend, dashed for flows per backend.
func (r *Results) PlotEvenness(out io.Writer, m uint32) error {
	mm := newPlot(fmt.Sprintf("Evenness, M = %d: max / mean", m), "backends N", "max / mean (1 = perfect)")
	cv := newPlot(fmt.Sprintf("Evenness, M = %d: coefficient of variation", m), "backends N", "std dev / mean")
	logX(mm)
	logX(cv)
	st := r.EvennessStats()
	for _, a := range algos {
		var sm, tm, sc, tc plotter.XYs
		for _, s := range st {
			if s.Algo == a && s.M == m {
				n := float64(s.N)
				sm = append(sm, plotter.XY{X: n, Y: s.Slots.MaxMean})
				tm = append(tm, plotter.XY{X: n, Y: s.Traffic.MaxMean})
				sc = append(sc, plotter.XY{X: n, Y: s.Slots.CV})
				tc = append(tc, plotter.XY{X: n, Y: s.Traffic.CV})
			}
		}
		for _, x := range []struct {
			p        *plot.Plot
			slots, t plotter.XYs
		}{{mm, sm, tm}, {cv, sc, tc}} {
			if err := addLine(x.p, a+" slots", x.slots, algoColor[a], nil, algoGlyph[a]); err != nil {
				return err
			}
			if err := addLine(x.p, fmt.Sprintf("%s %s flows", a, short(r.Config.Flows)), x.t, algoColor[a], dashed, algoGlyph[a]); err != nil {
				return err
			}
		}
	}
	// The sampling floor of the flow counts: CV ≈ √(N / flows).
	var floor plotter.XYs
	for _, n := range r.Config.Ns {
		floor = append(floor, plotter.XY{X: float64(n), Y: math.Sqrt(float64(n) / float64(r.Config.Flows))})
	}
	if err := addLine(cv, "flows: sampling floor √(N/flows)", floor, idealColor, []vg.Length{vg.Points(2), vg.Points(2)}, nil); err != nil {
		return err
	}
	mm.Legend.Top, mm.Legend.Left = true, true
	cv.Legend.Top, cv.Legend.Left = true, true
	mm.Y.Min = 1
	cv.Y.Min = 0
	// Headroom for the legends in the top-left corner.
	mm.Y.Max = 1 + 1.5*(mm.Y.Max-1)
	cv.Y.Max *= 1.6
	mm.Y.Tick.Marker = fixedTicks("%.2f")
	cv.Y.Tick.Marker = fixedTicks("%.3f")
	return savePanels(out, 13, 5.5, mm, cv)
}

func short(n int) string {
	switch {
	case n >= 1_000_000 && n%1_000_000 == 0:
		return fmt.Sprintf("%dM", n/1_000_000)
	case n >= 1000 && n%1000 == 0:
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprint(n)
}

// PlotDisruption draws the changed fraction against k for removals and
// additions, Maglev at table size m, on log–log axes, with the ideal.
func (r *Results) PlotDisruption(out io.Writer, m uint32) error {
	var ps []*plot.Plot
	ds := r.DisruptionStats()
	for _, op := range []string{"remove", "add"} {
		verb := "removed"
		ideal := "ideal k/N"
		if op == "add" {
			verb, ideal = "added", "ideal k/(N+k)"
		}
		p := newPlot(fmt.Sprintf("Disruption: k of N = %d backends %s (Maglev M = %d)", r.Config.DisruptN, verb, m),
			"k backends "+verb, "flows that change backend (%)")
		logX(p)
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		var id plotter.XYs
		for _, a := range algos {
			var xy plotter.XYs
			for _, d := range ds {
				if d.Algo == a && d.Op == op && (d.M == m || d.M == 0) {
					xy = append(xy, plotter.XY{X: float64(d.K), Y: 100 * d.Changed})
					if a == "maglev" {
						id = append(id, plotter.XY{X: float64(d.K), Y: 100 * d.Ideal})
					}
				}
			}
			if err := addLine(p, a, xy, algoColor[a], nil, algoGlyph[a]); err != nil {
				return err
			}
		}
		if err := addLine(p, ideal, id, idealColor, dashed, nil); err != nil {
			return err
		}
		p.Legend.Top, p.Legend.Left = true, true
		ps = append(ps, p)
	}
	return savePanels(out, 13, 5.5, ps...)
}

// PlotWeights draws achieved / configured share against the configured
// weight at table size m (all trials), for slots and for flows.
func (r *Results) PlotWeights(out io.Writer, m uint32) error {
	sl := newPlot(fmt.Sprintf("Weights: share of the %d-slot table", m), "configured weight", "achieved share / configured share")
	tr := newPlot(fmt.Sprintf("Weights: share of %s random flows (Maglev M = %d)", short(r.Config.Flows), m), "configured weight", "achieved share / configured share")
	// Spread the algorithms sideways around each integer weight so that
	// the points don't hide each other.
	jit := rand.New(rand.NewPCG(1, 2))
	for ai, a := range algos {
		var s, t plotter.XYs
		for _, w := range r.Weights {
			if w.Algo != a || w.Weight == 0 || (w.M != m && a == "maglev") || (a != "maglev" && w.M != m) {
				continue
			}
			x := float64(w.Weight) + 0.22*float64(ai-1) + 0.06*(jit.Float64()-0.5)
			s = append(s, plotter.XY{X: x, Y: w.Slots / w.Configured})
			t = append(t, plotter.XY{X: x, Y: w.Traffic / w.Configured})
		}
		for _, x := range []struct {
			p  *plot.Plot
			xy plotter.XYs
		}{{sl, s}, {tr, t}} {
			sc, err := plotter.NewScatter(x.xy)
			if err != nil {
				return err
			}
			sc.Color, sc.Shape, sc.Radius = algoColor[a], algoGlyph[a], vg.Points(2.2)
			x.p.Add(sc)
			x.p.Legend.Add(a, sc)
		}
	}
	for _, p := range []*plot.Plot{sl, tr} {
		one := plotter.NewFunction(func(float64) float64 { return 1 })
		one.Color, one.Dashes, one.Width = idealColor, dashed, vg.Points(1.2)
		p.Add(one)
		p.Legend.Add("ideal", one)
		p.X.Min, p.X.Max = 0.5, float64(r.Config.MaxWeight)+0.5
		var ticks []plot.Tick
		step := max(1, int(r.Config.MaxWeight)/10)
		for w := 1; w <= int(r.Config.MaxWeight); w += step {
			ticks = append(ticks, plot.Tick{Value: float64(w), Label: fmt.Sprint(w)})
		}
		p.X.Tick.Marker = plot.ConstantTicks(ticks)
		p.Legend.Top = true
		p.Y.Tick.Marker = fixedTicks("%.2f")
	}
	return savePanels(out, 13, 5.5, sl, tr)
}
