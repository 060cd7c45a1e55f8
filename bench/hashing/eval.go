package hashing

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/rail-lb/rail/maglev"
)

// Config says what to measure. DefaultConfig is the run behind
// docs/maglev.md.
type Config struct {
	Ns     []int    // evenness: pool sizes
	Ms     []uint32 // table sizes (prime)
	Trials int      // independent repetitions, each with seed Seed+trial
	Seed   uint64
	Flows  int // random flows for traffic evenness and weights

	DisruptN     int   // pool size for the disruption experiment
	DisruptKs    []int // backends removed / added
	DisruptFlows int   // random flows whose backend is compared

	WeightsN  int    // backends with a random weight 1…MaxWeight
	MaxWeight uint32 // largest weight
	Drained   int    // extra backends with weight 0

	Vnodes  int // ring virtual nodes per backend of mean weight
	Workers int // goroutines; 0 = GOMAXPROCS
}

// DefaultConfig is N = 10…1000, M = 65537 and 655373, 1M flows, k = 1…100
// of N = 1000, 100 weighted backends and a ring of 100 virtual nodes.
func DefaultConfig() Config {
	return Config{
		Ns:           []int{10, 20, 50, 100, 200, 500, 1000},
		Ms:           []uint32{65537, 655373},
		Trials:       3,
		Flows:        1_000_000,
		DisruptN:     1000,
		DisruptKs:    []int{1, 2, 5, 10, 20, 50, 100},
		DisruptFlows: 1_000_000,
		WeightsN:     100,
		MaxWeight:    10,
		Drained:      2,
		Vnodes:       100,
	}
}

// Check reports the first problem with c, worded for a command line.
func (c Config) Check() error {
	switch {
	case len(c.Ns) == 0 || len(c.Ms) == 0:
		return fmt.Errorf("need at least one N and one M")
	case c.Trials <= 0:
		return fmt.Errorf("trials must be positive, got %d", c.Trials)
	case c.Flows <= 0 || c.DisruptFlows <= 0:
		return fmt.Errorf("flows must be positive, got %d and %d", c.Flows, c.DisruptFlows)
	case c.Vnodes <= 0:
		return fmt.Errorf("vnodes must be positive, got %d", c.Vnodes)
	case c.WeightsN <= 0 || c.MaxWeight == 0:
		return fmt.Errorf("weights: need backends and a positive max weight, got %d and %d", c.WeightsN, c.MaxWeight)
	case c.DisruptN <= 0:
		return fmt.Errorf("disruption N must be positive, got %d", c.DisruptN)
	}
	for _, m := range c.Ms {
		if !maglev.IsPrime(m) {
			return fmt.Errorf("M = %d is not prime (try %d)", m, maglev.NextPrime(m))
		}
		for _, n := range append(slices.Clone(c.Ns), c.DisruptN+slices.Max(append(c.DisruptKs, 0)), c.WeightsN) {
			if uint32(n) > m {
				return fmt.Errorf("M = %d is smaller than N = %d", m, n)
			}
		}
	}
	for _, n := range c.Ns {
		if n <= 0 {
			return fmt.Errorf("N must be positive, got %d", n)
		}
	}
	for _, k := range c.DisruptKs {
		if k <= 0 || k >= c.DisruptN {
			return fmt.Errorf("k must be 1…%d, got %d", c.DisruptN-1, k)
		}
	}
	return nil
}

// Pool returns n backends keyed by address strings 10.a.b.c, numbered
// from first, each with weight 1.
func Pool(first, n int) []maglev.Backend {
	bs := make([]maglev.Backend, n)
	for i := range bs {
		j := first + i + 1
		bs[i] = maglev.Backend{Key: fmt.Sprintf("10.%d.%d.%d", j>>16&255, j>>8&255, j&255), Weight: 1}
	}
	return bs
}

// FlowHashes returns n hashes of random TCP flows from random clients to
// one VIP and port, under seed.
func FlowHashes(n int, seed uint64) []uint64 {
	r := rand.New(rand.NewPCG(seed, 0x666c6f7773))
	hs := make([]uint64, n)
	for i := range hs {
		s := r.Uint32()
		f := Flow{
			Src:   [4]byte{byte(s >> 24), byte(s >> 16), byte(s >> 8), byte(s)},
			Dst:   [4]byte{192, 0, 2, 10},
			Sport: uint16(1024 + r.IntN(64512)),
			Dport: 443,
			Proto: 6,
		}
		hs[i] = f.Hash(seed)
	}
	return hs
}

// Spread is the max/mean and coefficient of variation of counts.
type Spread struct{ MaxMean, CV float64 }

// SpreadOf measures counts (one per backend; all are included).
func SpreadOf(counts []int) Spread {
	if len(counts) == 0 {
		return Spread{}
	}
	var sum, mx float64
	for _, c := range counts {
		sum += float64(c)
		mx = max(mx, float64(c))
	}
	mean := sum / float64(len(counts))
	var v float64
	for _, c := range counts {
		d := float64(c) - mean
		v += d * d
	}
	return Spread{mx / mean, math.Sqrt(v/float64(len(counts))) / mean}
}

// EvennessRow is one algorithm's spread for one (M, N, trial). Ring and
// rendezvous traffic does not depend on M; it is measured once and
// repeated for each M.
type EvennessRow struct {
	Algo    string
	M       uint32
	N       int
	Trial   int
	Slots   Spread
	Traffic Spread
}

// DisruptionRow is the fraction of flows that changed backend after Op
// ("remove" or "add") of K backends to a pool of N. M is 0 for the
// algorithms without a table.
type DisruptionRow struct {
	Algo    string
	M       uint32
	N, K    int
	Op      string
	Trial   int
	Changed float64
	Ideal   float64 // K/N for remove, K/(N+K) for add
}

// WeightRow is one backend's configured and achieved shares.
type WeightRow struct {
	Algo       string
	M          uint32
	Trial      int
	Key        string
	Weight     uint32
	Configured float64 // Weight / Σweights
	Slots      float64 // share of the M-slot table
	Traffic    float64 // share of the flows
}

// Results is everything Run measured.
type Results struct {
	Config     Config
	Evenness   []EvennessRow
	Disruption []DisruptionRow
	Weights    []WeightRow
}

// Run measures evenness, disruption and weights, in parallel over
// c.Workers goroutines. The results are sorted and do not depend on
// scheduling.
func Run(c Config) (*Results, error) {
	if err := c.Check(); err != nil {
		return nil, err
	}
	res := &Results{Config: c}
	var mu sync.Mutex
	var jobs []func() error
	for trial := range c.Trials {
		seed := c.Seed + uint64(trial)
		for _, n := range c.Ns {
			jobs = append(jobs, func() error {
				rows, err := evenness(c, n, trial, seed)
				mu.Lock()
				res.Evenness = append(res.Evenness, rows...)
				mu.Unlock()
				return err
			})
		}
		for _, a := range Algorithms(c.Vnodes) {
			ms := c.Ms
			if a.Name != "maglev" {
				ms = []uint32{0}
			}
			for _, m := range ms {
				for _, op := range []string{"remove", "add"} {
					jobs = append(jobs, func() error {
						rows, err := disruption(c, a, m, op, trial, seed)
						mu.Lock()
						res.Disruption = append(res.Disruption, rows...)
						mu.Unlock()
						return err
					})
				}
			}
		}
		jobs = append(jobs, func() error {
			rows, err := weights(c, trial, seed)
			mu.Lock()
			res.Weights = append(res.Weights, rows...)
			mu.Unlock()
			return err
		})
	}
	if err := parallel(c.Workers, jobs); err != nil {
		return nil, err
	}
	order := map[string]int{"maglev": 0, "rendezvous": 1, "ring": 2}
	slices.SortStableFunc(res.Evenness, func(a, b EvennessRow) int {
		return cmpAll(order[a.Algo]-order[b.Algo], int(a.M)-int(b.M), a.N-b.N, a.Trial-b.Trial)
	})
	slices.SortStableFunc(res.Disruption, func(a, b DisruptionRow) int {
		return cmpAll(order[a.Algo]-order[b.Algo], int(a.M)-int(b.M), len(b.Op)-len(a.Op), a.K-b.K, a.Trial-b.Trial)
	})
	slices.SortStableFunc(res.Weights, func(a, b WeightRow) int {
		return cmpAll(order[a.Algo]-order[b.Algo], int(a.M)-int(b.M), a.Trial-b.Trial)
	})
	return res, nil
}

func cmpAll(ds ...int) int {
	for _, d := range ds {
		if d != 0 {
			return d
		}
	}
	return 0
}

func parallel(workers int, jobs []func() error) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	ch := make(chan func() error)
	errs := make(chan error, len(jobs))
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for j := range ch {
				if err := j(); err != nil {
					errs <- err
				}
			}
		})
	}
	for _, j := range jobs {
		ch <- j
	}
	close(ch)
	wg.Wait()
	close(errs)
	return <-errs
}

func evenness(c Config, n, trial int, seed uint64) ([]EvennessRow, error) {
	bs := Pool(0, n)
	flows := FlowHashes(c.Flows, seed)
	var rows []EvennessRow
	for _, a := range Algorithms(c.Vnodes) {
		var traffic Spread
		for k, m := range c.Ms {
			p, err := a.New(bs, m, seed)
			if err != nil {
				return nil, err
			}
			if k == 0 || a.Name == "maglev" {
				traffic = SpreadOf(countFlows(p, n, flows))
			}
			rows = append(rows, EvennessRow{a.Name, m, n, trial, SpreadOf(countSlots(p, n, m)), traffic})
		}
	}
	return rows, nil
}

func countFlows(p Picker, n int, flows []uint64) []int {
	c := make([]int, n)
	for _, h := range flows {
		if b := p.Pick(h); b >= 0 {
			c[b]++
		}
	}
	return c
}

func countSlots(p Picker, n int, m uint32) []int {
	c := make([]int, n)
	if mg, ok := p.(Maglev); ok {
		for i, s := range mg.T.Shares() {
			c[i] = int(s)
		}
		return c
	}
	for i := range m {
		if b := p.Slot(i); b >= 0 {
			c[b]++
		}
	}
	return c
}

// disruption measures one algorithm (and one M for Maglev) for every k.
// The removed backends for k are the first k of one random permutation,
// so the k's of a trial are nested.
func disruption(c Config, a Algorithm, m uint32, op string, trial int, seed uint64) ([]DisruptionRow, error) {
	n := c.DisruptN
	base := Pool(0, n)
	flows := FlowHashes(c.DisruptFlows, seed^0xd15)
	mm := m
	if mm == 0 {
		mm = c.Ms[0] // unused by ring and rendezvous
	}
	p, err := a.New(base, mm, seed)
	if err != nil {
		return nil, err
	}
	before := make([]string, len(flows))
	for i, h := range flows {
		before[i] = base[p.Pick(h)].Key
	}
	perm := rand.New(rand.NewPCG(seed, uint64(trial))).Perm(n)
	var rows []DisruptionRow
	for _, k := range c.DisruptKs {
		var after []maglev.Backend
		var ideal float64
		if op == "remove" {
			gone := make([]bool, n)
			for _, i := range perm[:k] {
				gone[i] = true
			}
			for i, b := range base {
				if !gone[i] {
					after = append(after, b)
				}
			}
			ideal = float64(k) / float64(n)
		} else {
			after = append(slices.Clone(base), Pool(n, k)...)
			ideal = float64(k) / float64(n+k)
		}
		q, err := a.New(after, mm, seed)
		if err != nil {
			return nil, err
		}
		changed := 0
		for i, h := range flows {
			if after[q.Pick(h)].Key != before[i] {
				changed++
			}
		}
		rows = append(rows, DisruptionRow{a.Name, m, n, k, op, trial, float64(changed) / float64(len(flows)), ideal})
	}
	return rows, nil
}

// WeightedPool is the weights experiment's pool: n backends with weights
// drawn from 1…maxW and drained more with weight 0.
func WeightedPool(n, drained int, maxW uint32, seed uint64) []maglev.Backend {
	r := rand.New(rand.NewPCG(seed, 0x77656967687473))
	bs := Pool(0, n+drained)
	for i := range bs {
		if i < n {
			bs[i].Weight = 1 + r.Uint32N(maxW)
		} else {
			bs[i].Weight = 0
		}
	}
	return bs
}

func weights(c Config, trial int, seed uint64) ([]WeightRow, error) {
	bs := WeightedPool(c.WeightsN, c.Drained, c.MaxWeight, seed)
	var total float64
	for _, b := range bs {
		total += float64(b.Weight)
	}
	flows := FlowHashes(c.Flows, seed^0x77)
	var rows []WeightRow
	for _, a := range Algorithms(c.Vnodes) {
		var traffic []int
		for k, m := range c.Ms {
			p, err := a.New(bs, m, seed)
			if err != nil {
				return nil, err
			}
			if k == 0 || a.Name == "maglev" {
				traffic = countFlows(p, len(bs), flows)
			}
			slots := countSlots(p, len(bs), m)
			for i, b := range bs {
				rows = append(rows, WeightRow{a.Name, m, trial, b.Key, b.Weight, float64(b.Weight) / total,
					float64(slots[i]) / float64(m), float64(traffic[i]) / float64(len(flows))})
			}
		}
	}
	return rows, nil
}

// BuildTime is the median and minimum of repeated maglev.New calls.
type BuildTime struct {
	N        int
	M        uint32
	Weighted bool // weights 1…10 instead of all 1
	Median   time.Duration
	Min      time.Duration
	Repeats  int
	Bytes    int // the table's slots: 2 bytes each
}

// BuildTimes times maglev.New for every (n, m), with equal and with random
// weights, repeats times each, and reports the median.
func BuildTimes(ns []int, ms []uint32, repeats int, seed uint64) ([]BuildTime, error) {
	var out []BuildTime
	for _, m := range ms {
		for _, n := range ns {
			for _, weighted := range []bool{false, true} {
				bs := Pool(0, n)
				if weighted {
					bs = WeightedPool(n, 0, 10, seed)
				}
				ds := make([]time.Duration, repeats)
				for i := range ds {
					t0 := time.Now()
					if _, err := maglev.New(bs, m, seed); err != nil {
						return nil, err
					}
					ds[i] = time.Since(t0)
				}
				slices.Sort(ds)
				out = append(out, BuildTime{n, m, weighted, ds[len(ds)/2], ds[0], repeats, 2 * int(m)})
			}
		}
	}
	return out, nil
}
