package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"time"

	"github.com/rail-lb/rail/bench"
	"github.com/rail-lb/rail/pipeline"
)

func init() {
	commands["fragments"] = command{
		summary: "measure how often a later fragment that arrives before its first fragment reaches a different backend",
		run:     runFragments,
	}
}

// runFragments sends D fragmented datagrams (first fragment with ports,
// second without) through Process twice: in order, and with the second
// fragment first. In order, the fragment table sends both to the same
// backend; out of order the second falls back to the (source, destination,
// protocol) choice, which differs from the 5-tuple choice for about
// 1 − 1/N of datagrams with N equal backends.
func runFragments(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("railbench fragments", flag.ContinueOnError)
	fs.SetOutput(stderr)
	datagrams := fs.Int("datagrams", 100000, "fragmented datagrams")
	backends := fs.Int("backends", 10, "backends behind the VIP")
	if code, ok := parseFlags(fs, args, stdout, stderr); !ok {
		return code
	}
	if *datagrams <= 0 || *backends <= 0 || *backends > 1000 {
		return fail(stderr, "--datagrams must be positive and --backends 1…1000")
	}
	cfg := bench.BenchConfig(*backends)
	snap, err := pipeline.NewSnapshot(cfg)
	if err != nil {
		return fail(stderr, "%v", err)
	}
	frame := func(i int, later bool) []byte {
		f, _ := bench.AppendGRE(nil, bench.GRESpec{
			RouterMAC: [6]byte{2, 0, 0, 0, 0, 1}, NodeMAC: [6]byte{2, 0, 0, 0, 0, 2},
			Router: netip.MustParseAddr("10.0.0.1"), Local: cfg.Local,
			Flow: bench.FlowN(i, cfg.Services[0].VIP, 80), Payload: 64,
		})
		in := f[38:]
		binary.BigEndian.PutUint16(in[4:], uint16(i)) // identification
		if later {
			binary.BigEndian.PutUint16(in[6:], 80/8) // offset 80 bytes, last fragment
		} else {
			binary.BigEndian.PutUint16(in[6:], 0x2000) // MF
		}
		return f
	}
	run := func(laterFirst bool) (differ, total int) {
		ct, _ := pipeline.NewConntrack(1<<20, time.Hour, time.Minute)
		w := pipeline.NewWorker(ct)
		w.Begin(snap, time.Now())
		buf := make([]byte, 512)
		send := func(f []byte) pipeline.Result {
			copy(buf[bench.Headroom:], f)
			return w.Process(&pipeline.Packet{Buf: buf, Off: bench.Headroom, Len: len(f)})
		}
		for i := 0; i < *datagrams; i++ {
			var first, later pipeline.Result
			if laterFirst {
				later = send(frame(i, true))
				first = send(frame(i, false))
			} else {
				first = send(frame(i, false))
				later = send(frame(i, true))
			}
			if first.Verdict != pipeline.Tx || later.Verdict != pipeline.Tx {
				continue
			}
			total++
			if first.Backend != later.Backend {
				differ++
			}
		}
		return differ, total
	}
	d1, t1 := run(false)
	d2, t2 := run(true)
	fmt.Fprintf(stdout, "datagrams: %d, 2 fragments each, %d backends\n", *datagrams, *backends)
	fmt.Fprintf(stdout, "in order:          %d of %d datagrams split over two backends (%.2f%%)\n", d1, t1, 100*float64(d1)/float64(max(t1, 1)))
	fmt.Fprintf(stdout, "later one first:   %d of %d datagrams split over two backends (%.2f%%; 1 − 1/N = %.2f%%)\n",
		d2, t2, 100*float64(d2)/float64(max(t2, 1)), 100*(1-1/float64(*backends)))
	return 0
}
