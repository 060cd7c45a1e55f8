package bench

import (
	"encoding/csv"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Sample is a set of repeated measurements of one quantity.
type Sample []float64

// Median of the sample (NaN when empty).
func (s Sample) Median() float64 {
	if len(s) == 0 {
		return math.NaN()
	}
	v := append([]float64(nil), s...)
	sort.Float64s(v)
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

// Spread is (max-min)/median: 0.1 means the repeats were within 10 %.
func (s Sample) Spread() float64 {
	if len(s) < 2 {
		return 0
	}
	lo, hi := s[0], s[0]
	for _, x := range s {
		lo, hi = min(lo, x), max(hi, x)
	}
	m := s.Median()
	if m == 0 {
		return 0
	}
	return (hi - lo) / math.Abs(m)
}

// NoisySpread is the spread above which a row is flagged as noisy.
const NoisySpread = 0.15

// Row is one forwarder's measurements in a comparison.
type Row struct {
	Name    string // raild, asavie/xdp, xdp_tx, kernel, loopback
	Detail  string
	Offered float64 // the offered rate of the MaxPPS runs (the ladder's best)
	MaxPPS  Sample  // forwarded frames per second at Offered
	NsPkt   Sample  // forwarder CPU ns per forwarded frame at MaxPPS
	Busy    Sample  // forwarder CPU use at MaxPPS, in cores
	LossMax float64 // loss ratio over the MaxPPS runs
	LostAt  string  // where the MaxPPS runs' losses were counted
	// NsPktCommon is the CPU ns per forwarded frame at the comparison's
	// common offered rate (the same load for every row).
	NsPktCommon Sample
	Loss50      Sample // loss ratio at 50 % of the median MaxPPS
	Loss90      Sample // loss ratio at 90 %
	P50         Sample // latency p50 at 50 %, µs
	P99         Sample // latency p99 at 50 %, µs
	// Where NsPkt goes, per forwarded frame at MaxPPS: the forwarder's own
	// threads in user space and in the kernel (its system calls and the
	// softirqs they run), and lb0's NAPI thread (the copy into the UMEM).
	UserNs, SysNs, NAPINs Sample
	// Syscalls is the forwarder's system calls per forwarded frame at
	// MaxPPS (counted by a BPF program on sys_enter), SyscallMix the same
	// by call.
	Syscalls   Sample
	SyscallMix string
	// BusyPolledRx is the share of the max runs' frames the kernel
	// received inside a busy poll (BusyPollRxPackets of lb0's namespace).
	BusyPolledRx float64
	// BusyPoll is what raild logged about busy polling.
	BusyPoll string
	// Others is how much of the forwarder's CPU everything else took
	// during the max runs, in cores: other processes, other labs.
	Others Sample
	Err    string // why the row has no numbers, if it hasn't
}

// Noisy says which of the row's headline numbers varied more than NoisySpread.
func (r Row) Noisy() []string {
	var n []string
	if r.MaxPPS.Spread() > NoisySpread {
		n = append(n, fmt.Sprintf("max pps ±%.0f%%", 50*r.MaxPPS.Spread()))
	}
	if r.NsPkt.Spread() > NoisySpread {
		n = append(n, fmt.Sprintf("ns/pkt ±%.0f%%", 50*r.NsPkt.Spread()))
	}
	return n
}

// Comparison is the result of railbench compare.
type Comparison struct {
	Name    string
	Machine string // one line: kernel, CPU, cores, Go, load
	Command string
	Traffic string // what was sent
	// CommonRate is the offered rate of the NsPktCommon column.
	CommonRate float64
	Rows       []Row
	Notes      []string
}

func (c *Comparison) ref() *Row {
	for i := range c.Rows {
		if c.Rows[i].Name == "raild" {
			return &c.Rows[i]
		}
	}
	return nil
}

func fmtSample(s Sample, scale float64, prec int) string {
	if len(s) == 0 {
		return "—"
	}
	m := s.Median() * scale
	out := strconv.FormatFloat(m, 'f', prec, 64)
	if len(s) > 1 {
		out += fmt.Sprintf(" ±%.0f%%", 50*s.Spread())
	}
	return out
}

// fmtMedian is the median alone.
func fmtMedian(s Sample, prec int) string {
	if len(s) == 0 {
		return "—"
	}
	return strconv.FormatFloat(s.Median(), 'f', prec, 64)
}

func ratio(a, b Sample) string {
	if len(a) == 0 || len(b) == 0 || b.Median() == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", a.Median()/b.Median())
}

// Markdown writes the comparison as a Markdown page with the table.
func (c *Comparison) Markdown(w io.Writer) {
	fmt.Fprintf(w, "# railbench compare: %s\n\n", c.Name)
	fmt.Fprintf(w, "Machine: %s\n\n", c.Machine)
	fmt.Fprintf(w, "Command: `%s`\n\n", c.Command)
	fmt.Fprintf(w, "Traffic: %s\n\n", c.Traffic)
	c.table(w)
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Each number is the median of the repeats; ±x% is half the spread (max−min)/median;")
	fmt.Fprintln(w, "a row whose max pps or CPU ns/pkt @max spread more than 15 % is marked NOISY.")
	fmt.Fprintln(w, "Ratios are this row's median over raild's (for ns/pkt, below 1 is cheaper than raild).")
	fmt.Fprintln(w, "")
	fmt.Fprintln(w, "- **max pps**: forwarded frames/s at the offered rate that got the most through (a ladder")
	fmt.Fprintln(w, "  of 0.8 s runs in √2 steps from 70k pps; on a veth an overload beyond it makes the forwarded rate collapse).")
	fmt.Fprintln(w, "- **CPU ns/pkt @max**: run time of the forwarder's threads plus lb0's NAPI thread (the")
	fmt.Fprintln(w, "  kernel's receive work, incl. the copy into the UMEM) over the steady part of the max runs,")
	fmt.Fprintln(w, "  per forwarded frame: each forwarder at its own saturation point, where a busy poller's CPU")
	fmt.Fprintln(w, "  goes to packets. The issue's targets are checked on this column.")
	fmt.Fprintf(w, "- **CPU ns/pkt @%.0fk**: the same at one common offered rate for every row: what a packet\n", c.CommonRate/1e3)
	fmt.Fprintln(w, "  costs below saturation, where a busy poller's empty polls count against it.")
	fmt.Fprintln(w, "- **user / sys / NAPI ns/pkt @max**: where the CPU ns/pkt @max go: the forwarder's threads in")
	fmt.Fprintln(w, "  user space and in the kernel (its system calls, with the softirqs they run: the generator")
	fmt.Fprintln(w, "  side's receive of what it sends), and lb0's NAPI thread (veth receive, XDP, the copy into")
	fmt.Fprintln(w, "  the UMEM); user/sys split by the clock ticks of /proc/PID/task/*/stat, totals from schedstat.")
	fmt.Fprintln(w, "- **syscalls/pkt @max**: the forwarder's system calls per forwarded frame (a BPF program on")
	fmt.Fprintln(w, "  the sys_enter raw tracepoint counts the process's calls); **busy-polled rx**: the share of")
	fmt.Fprintln(w, "  frames the kernel received inside a busy poll (BusyPollRxPackets in lb0's namespace).")
	fmt.Fprintln(w, "- **others on fwd CPU**: what the forwarder's CPU spent on anything else during the max runs")
	fmt.Fprintln(w, "  (its busy time in /proc/stat minus the forwarder's and NAPI's), in cores: other processes and")
	fmt.Fprintln(w, "  labs on the machine; above ~0.05 the row's numbers are the machine's, not the forwarder's.")
	fmt.Fprintln(w, "- **loss @max (where)**: lost frames over the max runs and where they were counted: lb0 rx")
	fmt.Fprintln(w, "  (the forwarder side's veth ring full: the forwarder's CPU could not keep up), lb0→gen0 and")
	fmt.Fprintln(w, "  gen0 rx/sink (the generator side's ring or the sink socket could not take them),")
	fmt.Fprintln(w, "  forwarder (none of those: inside the forwarder, e.g. its rx or tx ring).")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "System calls per forwarded frame at max, by call:")
	fmt.Fprintln(w)
	for _, r := range c.Rows {
		if r.SyscallMix != "" {
			fmt.Fprintf(w, "- %s: %s\n", r.Name, r.SyscallMix)
		}
	}
	for _, r := range c.Rows {
		if r.BusyPoll != "" {
			fmt.Fprintf(w, "\n%s said: `%s`\n", r.Name, r.BusyPoll)
		}
	}
	for _, n := range c.Notes {
		fmt.Fprintf(w, "\n- %s", n)
	}
	fmt.Fprintln(w)
}

// Text writes the table for a terminal.
func (c *Comparison) Text(w io.Writer) {
	fmt.Fprintf(w, "machine: %s\ntraffic: %s\n\n", c.Machine, c.Traffic)
	c.table(w)
	for _, n := range c.Notes {
		fmt.Fprintf(w, "- %s\n", n)
	}
}

func (c *Comparison) table(w io.Writer) {
	ref := c.ref()
	fmt.Fprintf(w, "| forwarder | max pps | vs raild | CPU ns/pkt @max | vs raild | user / sys / NAPI ns/pkt @max | user %% | syscalls/pkt @max | busy-polled rx | fwd cores busy @max | others on fwd CPU @max | CPU ns/pkt @%.0fk | loss %% @max (where) | loss %% @50%% | loss %% @90%% | p50 µs @50%% | p99 µs @50%% | noise |\n", c.CommonRate/1e3)
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|")
	for _, r := range c.Rows {
		if r.Err != "" {
			fmt.Fprintf(w, "| %s | failed: %s ||||||||||||||||||\n", r.Name, r.Err)
			continue
		}
		vsPPS, vsNs := "1.00×", "1.00×"
		if ref != nil && r.Name != ref.Name {
			vsPPS, vsNs = ratio(r.MaxPPS, ref.MaxPPS), ratio(r.NsPkt, ref.NsPkt)
		}
		noise := "ok"
		if n := r.Noisy(); len(n) > 0 {
			noise = "NOISY: " + strings.Join(n, ", ")
		}
		where := fmt.Sprintf("%.2f", 100*r.LossMax)
		if r.LostAt != "" && r.LostAt != "none" {
			where += " (" + r.LostAt + ")"
		}
		split := fmt.Sprintf("%s / %s / %s", fmtMedian(r.UserNs, 0), fmtMedian(r.SysNs, 0), fmtMedian(r.NAPINs, 0))
		userPct := "—"
		if len(r.UserNs) > 0 && r.NsPkt.Median() > 0 {
			userPct = fmt.Sprintf("%.1f", 100*r.UserNs.Median()/r.NsPkt.Median())
		}
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %s | %s | %.1f %% | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", r.Name,
			fmtSample(r.MaxPPS, 1, 0), vsPPS, fmtSample(r.NsPkt, 1, 0), vsNs, split, userPct, fmtSample(r.Syscalls, 1, 3),
			100*r.BusyPolledRx, fmtSample(r.Busy, 1, 2), fmtMedian(r.Others, 2),
			fmtSample(r.NsPktCommon, 1, 0), where,
			fmtSample(r.Loss50, 100, 2), fmtSample(r.Loss90, 100, 2),
			fmtSample(r.P50, 1, 1), fmtSample(r.P99, 1, 1), noise)
	}
}

// CSV writes one line per row and quantity with every repeat.
func (c *Comparison) CSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"forwarder", "quantity", "median", "spread", "repeats"})
	for _, r := range c.Rows {
		for _, q := range []struct {
			name string
			s    Sample
		}{{"max_pps", r.MaxPPS}, {"cpu_ns_per_packet", r.NsPkt}, {"user_ns_per_packet", r.UserNs},
			{"system_ns_per_packet", r.SysNs}, {"napi_ns_per_packet", r.NAPINs}, {"syscalls_per_packet", r.Syscalls},
			{"busy_polled_rx", Sample{r.BusyPolledRx}}, {"forwarder_cores_busy", r.Busy}, {"others_on_forwarder_cpu_cores", r.Others},
			{"cpu_ns_per_packet_at_common_rate", r.NsPktCommon}, {"loss_at_max", Sample{r.LossMax}},
			{"loss_at_50", r.Loss50}, {"loss_at_90", r.Loss90}, {"latency_p50_us_at_50", r.P50}, {"latency_p99_us_at_50", r.P99}} {
			var reps []string
			for _, x := range q.s {
				reps = append(reps, strconv.FormatFloat(x, 'g', 6, 64))
			}
			cw.Write([]string{r.Name, q.name, strconv.FormatFloat(q.s.Median(), 'g', 6, 64),
				strconv.FormatFloat(q.s.Spread(), 'g', 3, 64), strings.Join(reps, " ")})
		}
	}
	cw.Flush()
	return cw.Error()
}

// PNG draws four bar charts side by side: max pps, CPU ns/pkt at max,
// where those ns go (stacked: the forwarder's user time, its system time,
// lb0's NAPI thread) and CPU ns/pkt at the common rate, per forwarder
// (bars in row order, each row its colour), each with its value written
// above it and the repeats' range as a whisker.
func (c *Comparison) PNG(w io.Writer) error {
	const W, H, pad, panels = 1800, 480, 40, 4
	img := image.NewRGBA(image.Rect(0, 0, W, H))
	fill(img, img.Bounds(), color.RGBA{255, 255, 255, 255})
	black := color.RGBA{0, 0, 0, 255}
	colors := []color.RGBA{{31, 119, 180, 255}, {120, 170, 220, 255}, {255, 127, 14, 255}, {44, 160, 44, 255}, {127, 127, 127, 255}, {148, 103, 189, 255}}
	pw := W/panels - 2*pad
	ph := H - 3*pad - 40
	base := pad + ph
	n := max(len(c.Rows), 1)
	bw := pw / (2*n + 1)
	labels := func(x0 int) {
		fill(img, image.Rect(x0, base, x0+pw, base+1), black)
		for i, r := range c.Rows {
			text(img, x0+bw*(2*i+1), base+6+13*(i%3), r.Name, colors[i%len(colors)]) // staggered: long names overlap
		}
	}
	panel := func(x0 int, title string, get func(Row) Sample, prec int) {
		top := 0.0
		for _, r := range c.Rows {
			for _, v := range get(r) {
				top = max(top, v)
			}
		}
		if top == 0 {
			top = 1
		}
		top *= 1.1 // room for the value above the tallest bar
		text(img, x0, pad/2, title, black)
		labels(x0)
		for i, r := range c.Rows {
			s := get(r)
			bx := x0 + bw*(2*i+1)
			if len(s) > 0 {
				h := int(float64(ph) * s.Median() / top)
				fill(img, image.Rect(bx, base-h, bx+bw, base), colors[i%len(colors)])
				lo, hi := s[0], s[0]
				for _, v := range s {
					lo, hi = min(lo, v), max(hi, v)
				}
				yl, yh := base-int(float64(ph)*lo/top), base-int(float64(ph)*hi/top)
				fill(img, image.Rect(bx+bw/2, yh, bx+bw/2+1, yl+1), black)
				text(img, bx, base-h-10, strconv.FormatFloat(s.Median(), 'f', prec, 64), black)
			}
		}
	}
	// The split: medians of user, sys and NAPI ns/pkt stacked.
	split := func(x0 int) {
		parts := []struct {
			name string
			c    color.RGBA
			get  func(Row) Sample
		}{
			{"USER", color.RGBA{214, 39, 40, 255}, func(r Row) Sample { return r.UserNs }},
			{"SYS", color.RGBA{255, 187, 120, 255}, func(r Row) Sample { return r.SysNs }},
			{"NAPI", color.RGBA{100, 100, 100, 255}, func(r Row) Sample { return r.NAPINs }},
		}
		top := 1.0
		for _, r := range c.Rows {
			t := 0.0
			for _, p := range parts {
				if s := p.get(r); len(s) > 0 {
					t += s.Median()
				}
			}
			top = max(top, t)
		}
		top *= 1.1
		text(img, x0, pad/2, "WHERE THE NS/PKT AT MAX GO", black)
		for j, p := range parts {
			lx := x0 + 220 + 56*j // after the title
			fill(img, image.Rect(lx, pad/2, lx+10, pad/2+10), p.c)
			text(img, lx+14, pad/2, p.name, black)
		}
		labels(x0)
		for i, r := range c.Rows {
			bx := x0 + bw*(2*i+1)
			y, total := base, 0.0
			for _, p := range parts {
				s := p.get(r)
				if len(s) == 0 {
					continue
				}
				h := int(float64(ph) * s.Median() / top)
				fill(img, image.Rect(bx, y-h, bx+bw, y), p.c)
				y -= h
				total += s.Median()
			}
			if total > 0 {
				text(img, bx, y-10, strconv.FormatFloat(total, 'f', 0, 64), black)
			}
		}
	}
	panel(pad, "MAX FORWARDED PPS", func(r Row) Sample { return r.MaxPPS }, 0)
	panel(W/panels+pad, "FORWARDER CPU NS/PKT AT MAX", func(r Row) Sample { return r.NsPkt }, 0)
	split(2*W/panels + pad)
	panel(3*W/panels+pad, fmt.Sprintf("CPU NS/PKT AT %.0fK PPS", c.CommonRate/1e3), func(r Row) Sample { return r.NsPktCommon }, 0)
	return png.Encode(w, img)
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}

// glyphs is a 3×5 pixel font for the chart's labels: digits, capitals and
// a little punctuation; each row of a glyph is 3 bits, top row first.
var glyphs = map[rune][5]uint8{
	'0': {7, 5, 5, 5, 7}, '1': {2, 6, 2, 2, 7}, '2': {7, 1, 7, 4, 7}, '3': {7, 1, 7, 1, 7}, '4': {5, 5, 7, 1, 1},
	'5': {7, 4, 7, 1, 7}, '6': {7, 4, 7, 5, 7}, '7': {7, 1, 1, 1, 1}, '8': {7, 5, 7, 5, 7}, '9': {7, 5, 7, 1, 7},
	'A': {2, 5, 7, 5, 5}, 'B': {6, 5, 6, 5, 6}, 'C': {7, 4, 4, 4, 7}, 'D': {6, 5, 5, 5, 6}, 'E': {7, 4, 6, 4, 7},
	'F': {7, 4, 6, 4, 4}, 'G': {7, 4, 5, 5, 7}, 'H': {5, 5, 7, 5, 5}, 'I': {7, 2, 2, 2, 7}, 'J': {1, 1, 1, 5, 7},
	'K': {5, 5, 6, 5, 5}, 'L': {4, 4, 4, 4, 7}, 'M': {5, 7, 7, 5, 5}, 'N': {6, 5, 5, 5, 5}, 'O': {7, 5, 5, 5, 7},
	'P': {7, 5, 7, 4, 4}, 'Q': {7, 5, 5, 7, 1}, 'R': {6, 5, 6, 5, 5}, 'S': {7, 4, 7, 1, 7}, 'T': {7, 2, 2, 2, 2},
	'U': {5, 5, 5, 5, 7}, 'V': {5, 5, 5, 5, 2}, 'W': {5, 5, 7, 7, 5}, 'X': {5, 5, 2, 5, 5}, 'Y': {5, 5, 2, 2, 2},
	'Z': {7, 1, 2, 4, 7}, '/': {1, 1, 2, 4, 4}, '_': {0, 0, 0, 0, 7}, '.': {0, 0, 0, 0, 2}, '-': {0, 0, 7, 0, 0},
}

// text draws s at (x, y) at twice the glyph size.
func text(img *image.RGBA, x, y int, s string, c color.RGBA) {
	for _, r := range strings.ToUpper(s) {
		g, ok := glyphs[r]
		if ok {
			for row := 0; row < 5; row++ {
				for col := 0; col < 3; col++ {
					if g[row]>>(2-col)&1 != 0 {
						fill(img, image.Rect(x+2*col, y+2*row, x+2*col+2, y+2*row+2), c)
					}
				}
			}
		}
		x += 8
	}
}
