// Command asaviefwd is the baseline of `railbench compare`: Rail's
// forwarder with github.com/asavie/xdp v0.3.3 as the AF_XDP layer instead
// of package rings. It reads the same configuration file as raild, builds
// the same pipeline snapshot and calls the same pipeline.Worker.Process on
// every frame, so that the difference between the two rows is the ring
// layer.
//
// It drives the socket the way asavie/xdp is meant to be used (its package
// example): Fill with GetDescs, Poll, Receive, Transmit, with the library's
// own XDP program that redirects every frame of the queue to the socket.
// Each Poll is a poll(2) and each Transmit a sendto(2); GetDescs scans the
// whole frame table. Those are the costs the comparison measures.
//
//	asaviefwd --config lab.yaml [--cpu N] [--frames N]
//
// It prints "attached" once frames can flow, and stops on SIGINT/SIGTERM
// (detaching the program).
package main

import (
	"flag"
	"fmt"
	"net"
	"os"
	"os/signal"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/asavie/xdp"
	"golang.org/x/sys/unix"

	"github.com/rail-lb/rail/control"
	"github.com/rail-lb/rail/pipeline"
)

func main() {
	os.Exit(run())
}

func run() int {
	config := flag.String("config", "", "raild configuration file (interface, local_address, services)")
	cpu := flag.Int("cpu", -1, "pin the forwarding thread to this CPU (-1: don't)")
	queue := flag.Int("queue", 0, "NIC queue")
	frames := flag.Int("frames", 4096, "UMEM frames")
	ring := flag.Int("ring", 2048, "descriptors per ring")
	flag.Parse()
	fail := func(format string, a ...any) int {
		fmt.Fprintf(os.Stderr, "asaviefwd: "+format+"\n", a...)
		return 1
	}
	cfg, probs := control.Load(*config)
	for _, p := range probs {
		fmt.Fprintln(os.Stderr, p)
	}
	if cfg == nil {
		return 1
	}
	pc, err := cfg.PipelineConfig()
	if err != nil {
		return fail("%v", err)
	}
	snap, err := pipeline.NewSnapshot(pc)
	if err != nil {
		return fail("%v", err)
	}
	var sp atomic.Pointer[pipeline.Snapshot]
	sp.Store(snap)
	ct, err := pipeline.NewConntrack(cfg.Conntrack.EntriesPerCore, cfg.Conntrack.TCPTimeout, cfg.Conntrack.UDPTimeout)
	if err != nil {
		return fail("%v", err)
	}
	w := pipeline.NewWorker(ct)

	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return fail("interface %s: %v", cfg.Interface, err)
	}
	prog, err := xdp.NewProgram(*queue + 1)
	if err != nil {
		return fail("%v", err)
	}
	defer prog.Close()
	if err := prog.Attach(ifi.Index); err != nil {
		return fail("attach: %v", err)
	}
	defer prog.Detach(ifi.Index)
	so := xdp.SocketOptions{NumFrames: *frames, FrameSize: 4096, FillRingNumDescs: *ring,
		CompletionRingNumDescs: *ring, RxRingNumDescs: *ring, TxRingNumDescs: *ring}
	xsk, err := xdp.NewSocket(ifi.Index, *queue, &so)
	if err != nil {
		return fail("socket: %v", err)
	}
	defer xsk.Close()
	if err := prog.Register(*queue, xsk.FD()); err != nil {
		return fail("register: %v", err)
	}

	var stop atomic.Bool
	var rx, tx atomic.Uint64
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		if *cpu >= 0 {
			var set unix.CPUSet
			set.Set(*cpu)
			if err := unix.SchedSetaffinity(0, &set); err != nil {
				done <- fmt.Errorf("pin to cpu %d: %w", *cpu, err)
				return
			}
		}
		done <- forward(xsk, w, &sp, &stop, &rx, &tx)
	}()
	fmt.Printf("attached interface=%s queue=%d cpu=%d\n", cfg.Interface, *queue, *cpu)

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-sig:
		stop.Store(true)
		err = <-done
	case err = <-done:
	}
	fmt.Printf("stopped rx=%d tx=%d\n", rx.Load(), tx.Load())
	if err != nil {
		return fail("%v", err)
	}
	return 0
}

// forward is the loop of asavie/xdp's package example with pipeline.Process
// in the middle. Poll's timeout is short so that a stop request is seen.
func forward(xsk *xdp.Socket, w *pipeline.Worker, sp *atomic.Pointer[pipeline.Snapshot], stop *atomic.Bool, rx, tx *atomic.Uint64) error {
	txDescs := make([]xdp.Desc, 0, pipeline.Batch*64)
	for !stop.Load() {
		xsk.Fill(xsk.GetDescs(xsk.NumFreeFillSlots()))
		numRx, _, err := xsk.Poll(100)
		if err != nil {
			return fmt.Errorf("poll: %w", err)
		}
		if numRx == 0 {
			continue
		}
		descs := xsk.Receive(numRx)
		w.Begin(sp.Load(), time.Now())
		txDescs = txDescs[:0]
		for _, d := range descs {
			// GetFrame returns the data only; Process needs the headroom
			// in front of it to prepend headers, so view the whole frame.
			base := d.Addr - d.Addr%4096
			frame := xsk.GetFrame(xdp.Desc{Addr: base, Len: 4096})
			p := pipeline.Packet{Buf: frame, Off: int(d.Addr - base), Len: int(d.Len)}
			if w.Process(&p).Verdict == pipeline.Tx {
				txDescs = append(txDescs, xdp.Desc{Addr: base + uint64(p.Off), Len: uint32(p.Len)})
			}
		}
		w.Flush()
		rx.Add(uint64(len(descs)))
		if len(txDescs) > 0 {
			tx.Add(uint64(xsk.Transmit(txDescs)))
		}
	}
	return nil
}
