package hashing

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"strconv"
)

// EvennessStat is the mean over trials of an algorithm's spreads at (M, N).
type EvennessStat struct {
	Algo    string
	M       uint32
	N       int
	Slots   Spread
	Traffic Spread
	// WorstSlots is the largest slots max/mean of any trial.
	WorstSlots float64
}

// groups splits sorted rows into runs of rows that agree on key.
func groups[T any, K comparable](rows []T, key func(T) K) [][]T {
	var out [][]T
	for i := 0; i < len(rows); {
		j := i + 1
		for j < len(rows) && key(rows[j]) == key(rows[i]) {
			j++
		}
		out = append(out, rows[i:j])
		i = j
	}
	return out
}

type point struct {
	algo string
	m    uint32
	n, k int
	op   string
}

// EvennessStats averages Evenness over trials, in the rows' order.
func (r *Results) EvennessStats() []EvennessStat {
	var out []EvennessStat
	for _, g := range groups(r.Evenness, func(e EvennessRow) point { return point{e.Algo, e.M, e.N, 0, ""} }) {
		s := EvennessStat{Algo: g[0].Algo, M: g[0].M, N: g[0].N}
		for _, e := range g {
			s.Slots.MaxMean += e.Slots.MaxMean
			s.Slots.CV += e.Slots.CV
			s.Traffic.MaxMean += e.Traffic.MaxMean
			s.Traffic.CV += e.Traffic.CV
			s.WorstSlots = max(s.WorstSlots, e.Slots.MaxMean)
		}
		k := float64(len(g))
		s.Slots.MaxMean /= k
		s.Slots.CV /= k
		s.Traffic.MaxMean /= k
		s.Traffic.CV /= k
		out = append(out, s)
	}
	return out
}

// DisruptionStat is the mean over trials of the changed fraction.
type DisruptionStat struct {
	Algo    string
	M       uint32
	N, K    int
	Op      string
	Changed float64
	Max     float64
	Ideal   float64
}

// DisruptionStats averages Disruption over trials, in the rows' order.
func (r *Results) DisruptionStats() []DisruptionStat {
	var out []DisruptionStat
	for _, g := range groups(r.Disruption, func(d DisruptionRow) point { return point{d.Algo, d.M, d.N, d.K, d.Op} }) {
		d := g[0]
		s := DisruptionStat{Algo: d.Algo, M: d.M, N: d.N, K: d.K, Op: d.Op, Ideal: d.Ideal}
		for _, x := range g {
			s.Changed += x.Changed
			s.Max = max(s.Max, x.Changed)
		}
		s.Changed /= float64(len(g))
		out = append(out, s)
	}
	return out
}

// WeightStat sums up how close achieved shares are to configured ones for
// the backends with a positive weight, over all trials: the largest and
// mean |achieved / configured − 1|, for slots and for traffic; and the
// largest share any weight-0 backend got.
type WeightStat struct {
	Algo                    string
	M                       uint32
	SlotsMax, SlotsMean     float64
	TrafficMax, TrafficMean float64
	Drained                 float64
}

// WeightStats groups Weights by (algorithm, M).
func (r *Results) WeightStats() []WeightStat {
	var out []WeightStat
	for _, g := range groups(r.Weights, func(w WeightRow) point { return point{w.Algo, w.M, 0, 0, ""} }) {
		s := WeightStat{Algo: g[0].Algo, M: g[0].M}
		n := 0
		for _, x := range g {
			if x.Weight == 0 {
				s.Drained = max(s.Drained, x.Slots, x.Traffic)
				continue
			}
			es, et := math.Abs(x.Slots/x.Configured-1), math.Abs(x.Traffic/x.Configured-1)
			s.SlotsMax, s.TrafficMax = max(s.SlotsMax, es), max(s.TrafficMax, et)
			s.SlotsMean += es
			s.TrafficMean += et
			n++
		}
		s.SlotsMean /= float64(n)
		s.TrafficMean /= float64(n)
		out = append(out, s)
	}
	return out
}

func mName(m uint32) string {
	if m == 0 {
		return "-"
	}
	return strconv.FormatUint(uint64(m), 10)
}

// WriteSummary prints the short text summary: evenness per (M, N),
// disruption per k, weight accuracy per algorithm.
func (r *Results) WriteSummary(w io.Writer) {
	c := r.Config
	fmt.Fprintf(w, "evenness: max/mean (CV) of slots per backend and of %d random flows per backend; mean of %d trials\n", c.Flows, c.Trials)
	fmt.Fprintf(w, "%-8s %5s  %-26s %-26s %s\n", "M", "N", "maglev: slots | flows", "rendezvous: slots | flows", "ring: slots | flows")
	st := r.EvennessStats()
	byKey := map[string]EvennessStat{}
	for _, s := range st {
		byKey[fmt.Sprint(s.Algo, s.M, s.N)] = s
	}
	for _, m := range c.Ms {
		for _, n := range c.Ns {
			fmt.Fprintf(w, "%-8d %5d ", m, n)
			for _, a := range []string{"maglev", "rendezvous", "ring"} {
				s := byKey[fmt.Sprint(a, m, n)]
				fmt.Fprintf(w, " %.3f(%.3f)|%.3f(%.3f)", s.Slots.MaxMean, s.Slots.CV, s.Traffic.MaxMean, s.Traffic.CV)
			}
			fmt.Fprintln(w)
		}
	}
	fmt.Fprintf(w, "  (traffic floor from sampling alone: CV ≈ √(N/flows) = %.3f at N=%d)\n",
		math.Sqrt(float64(c.Ns[len(c.Ns)-1])/float64(c.Flows)), c.Ns[len(c.Ns)-1])

	fmt.Fprintf(w, "\ndisruption: %% of %d flows that change backend, N=%d, mean of %d trials (ideal: k/N removed, k/(N+k) added)\n",
		c.DisruptFlows, c.DisruptN, c.Trials)
	ds := r.DisruptionStats()
	cols := []string{}
	for _, m := range c.Ms {
		cols = append(cols, fmt.Sprintf("maglev/%d", m))
	}
	cols = append(cols, "rendezvous", "ring")
	fmt.Fprintf(w, "%-7s %4s %7s", "op", "k", "ideal")
	for _, col := range cols {
		fmt.Fprintf(w, " %14s", col)
	}
	fmt.Fprintln(w)
	dk := map[string]DisruptionStat{}
	for _, d := range ds {
		name := d.Algo
		if d.M != 0 {
			name = fmt.Sprintf("%s/%d", d.Algo, d.M)
		}
		dk[fmt.Sprint(name, d.Op, d.K)] = d
	}
	for _, op := range []string{"remove", "add"} {
		for _, k := range c.DisruptKs {
			fmt.Fprintf(w, "%-7s %4d %6.2f%%", op, k, 100*dk[fmt.Sprint(cols[0], op, k)].Ideal)
			for _, col := range cols {
				fmt.Fprintf(w, " %13.2f%%", 100*dk[fmt.Sprint(col, op, k)].Changed)
			}
			fmt.Fprintln(w)
		}
	}

	fmt.Fprintf(w, "\nweights: %d backends with weights 1…%d (+%d with weight 0), %d trials; |achieved/configured − 1| max and mean\n",
		c.WeightsN, c.MaxWeight, c.Drained, c.Trials)
	fmt.Fprintf(w, "%-11s %8s  %-19s %-19s %s\n", "algorithm", "M", "slots max  mean", "traffic max  mean", "weight-0 share")
	for _, s := range r.WeightStats() {
		fmt.Fprintf(w, "%-11s %8s  %6.2f%%  %6.2f%%   %6.2f%%  %6.2f%%     %g\n", s.Algo, mName(s.M),
			100*s.SlotsMax, 100*s.SlotsMean, 100*s.TrafficMax, 100*s.TrafficMean, s.Drained)
	}
}

func f(x float64) string { return strconv.FormatFloat(x, 'g', 6, 64) }

// WriteCSV writes the raw rows (one per trial) of the three experiments.
func (r *Results) WriteEvennessCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"algorithm", "M", "N", "trial", "slots_max_mean", "slots_cv", "traffic_max_mean", "traffic_cv"})
	for _, e := range r.Evenness {
		cw.Write([]string{e.Algo, mName(e.M), strconv.Itoa(e.N), strconv.Itoa(e.Trial),
			f(e.Slots.MaxMean), f(e.Slots.CV), f(e.Traffic.MaxMean), f(e.Traffic.CV)})
	}
	cw.Flush()
	return cw.Error()
}

// WriteDisruptionCSV writes one row per (algorithm, M, op, k, trial).
func (r *Results) WriteDisruptionCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"algorithm", "M", "N", "op", "k", "trial", "changed", "ideal"})
	for _, d := range r.Disruption {
		cw.Write([]string{d.Algo, mName(d.M), strconv.Itoa(d.N), d.Op, strconv.Itoa(d.K), strconv.Itoa(d.Trial), f(d.Changed), f(d.Ideal)})
	}
	cw.Flush()
	return cw.Error()
}

// WriteWeightsCSV writes one row per (algorithm, M, trial, backend).
func (r *Results) WriteWeightsCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"algorithm", "M", "trial", "backend", "weight", "configured_share", "slot_share", "traffic_share"})
	for _, x := range r.Weights {
		cw.Write([]string{x.Algo, mName(x.M), strconv.Itoa(x.Trial), x.Key, strconv.FormatUint(uint64(x.Weight), 10),
			f(x.Configured), f(x.Slots), f(x.Traffic)})
	}
	cw.Flush()
	return cw.Error()
}
