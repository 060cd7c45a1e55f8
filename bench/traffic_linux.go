package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/rail-lb/rail/pin"
	"github.com/rail-lb/rail/rings"
)

// TrafficOpts configures RunTraffic: a generator, a sink, or both on one
// interface (like TRex in loopback).
type TrafficOpts struct {
	Ifname string // the interface to send from and receive on
	Queue  int    // its queue (the generator's frames leave on it; the sink's socket binds to it)

	Generate bool
	Template Template
	Flows    int           // flows to cycle through (≥ 1)
	Rate     float64       // frames per second; 0 = flat out
	Duration time.Duration // how long to send (0: until Count or ctx ends)
	Count    uint64        // how many frames to send (0: until Duration or ctx ends)

	Sink  bool
	Local netip.Addr // the generator's own address: frames to it stay with the kernel
	// Drain is how long the sink keeps counting after the generator stops.
	Drain time.Duration

	CPU int // pin the loop to this CPU (-1: don't)
	// NAPICPU ≥ 0 makes Ifname's NAPI a kernel thread pinned to that CPU
	// once the sink program is attached (see ThreadedNAPI).
	NAPICPU int
	// GenNice is the generator threads' nice value (0: as the process;
	// 20: SCHED_IDLE, only what the CPU's other threads leave).
	GenNice int
	// Started, if set, is called when everything is attached and traffic starts.
	Started func()
	// Status, if set, is called about once a second from the loop's goroutine.
	Status func(Status)
}

// Status is the live view of a run.
type Status struct {
	Elapsed              time.Duration
	Sent, Received, Lost uint64
	SentPPS, ReceivedPPS float64 // over the last interval
}

// Line is the one-line live status.
func (s Status) Line() string {
	return fmt.Sprintf("%5.1fs  tx %10d (%9.0f pps)  rx %10d (%9.0f pps)  lost %d",
		s.Elapsed.Seconds(), s.Sent, s.SentPPS, s.Received, s.ReceivedPPS, s.Lost)
}

// xdpMD is struct xdp_md, the context of an XDP test run.
type xdpMD struct {
	Data, DataEnd, DataMeta, IngressIfindex, RxQueueIndex, EgressIfindex uint32
}

// RunTraffic generates and/or sinks traffic until Duration, Count or ctx
// ends it, then (sink) drains for Drain and reports.
//
// The generator is the loadgen.c program run in live frame mode: the
// kernel turns each run into a real frame sent with XDP_TX from Ifname, so
// sending costs no system call per frame and no copy. The sink is a
// rings.Socket on Ifname/Queue behind loadgen.c's sink program.
func RunTraffic(ctx context.Context, o TrafficOpts) (Report, error) {
	var rep Report
	if !o.Generate && !o.Sink {
		return rep, errors.New("bench: neither generating nor sinking")
	}
	if o.Flows < 1 {
		o.Flows = 1
	}
	ifi, err := net.InterfaceByName(o.Ifname)
	if err != nil {
		return rep, fmt.Errorf("bench: interface %s: %w", o.Ifname, err)
	}
	spec, err := loadLoadgen()
	if err != nil {
		return rep, fmt.Errorf("bench: loadgen program: %w", err)
	}
	local := uint32(0)
	if o.Local.Is4() {
		a := o.Local.As4()
		local = binary.NativeEndian.Uint32(a[:])
	}
	gre := uint32(0)
	if o.Template.GRE {
		gre = 1
	}
	for name, v := range map[string]uint32{"gen_flows": uint32(o.Flows), "gen_gre": gre,
		"gen_stamp_off": uint32(o.Template.StampOff), "sink_local": local} {
		if err := spec.Variables[name].Set(v); err != nil {
			return rep, fmt.Errorf("bench: set %s: %w", name, err)
		}
	}
	// The headers the generator writes into every frame (see gen_hdr).
	var hdr [80]byte
	copy(hdr[:], o.Template.Frame)
	if err := spec.Variables["gen_hdr"].Set(hdr); err != nil {
		return rep, fmt.Errorf("bench: set gen_hdr: %w", err)
	}
	var objs loadgenObjects
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		return rep, fmt.Errorf("bench: load loadgen program (needs root): %w", err)
	}
	defer objs.Close()

	var sock *rings.Socket
	if o.Sink {
		opts := rings.DefaultOpts()
		opts.ZeroCopy = rings.ZeroCopyAuto
		if sock, err = rings.Open(ifi.Index, o.Queue, opts); err != nil {
			return rep, err
		}
		defer sock.Close()
		if err := objs.Xsks.Put(uint32(o.Queue), uint32(sock.FD())); err != nil {
			return rep, fmt.Errorf("bench: register sink socket: %w", err)
		}
		l, err := link.AttachXDP(link.XDPOptions{Program: objs.Sink, Interface: ifi.Index, Flags: link.XDPDriverMode})
		if err != nil {
			if l, err = link.AttachXDP(link.XDPOptions{Program: objs.Sink, Interface: ifi.Index, Flags: link.XDPGenericMode}); err != nil {
				return rep, fmt.Errorf("bench: attach sink program to %s: %w", o.Ifname, err)
			}
		}
		defer l.Close()
		if o.NAPICPU >= 0 {
			if _, err := ThreadedNAPI(o.Ifname, o.NAPICPU, SysfsThreaded(o.Ifname)); err != nil {
				return rep, err
			}
		}
	}

	r := &runner{o: o, sock: sock}
	return r.run(ctx, ifi.Index, &objs)
}

type backendSlot struct {
	addr uint32
	n    uint64
}

type runner struct {
	o    TrafficOpts
	sock *rings.Socket

	// Sink state, owned by the sink goroutine until it ends.
	received, foreign, reordered uint64
	maxSeq                       uint32
	seen                         bool
	hist                         Histogram
	backends                     [64]backendSlot
	nb                           int
	descs                        [64]rings.Desc
	recvPub                      atomic.Uint64 // received, published per batch
	lastRx, maxGap               uint64        // when the last batch came; the longest time between two
	startRx                      uint64        // CLOCK_MONOTONIC at the start: second 0 of perSecond
	perSecond                    []SecondStats
}

func monoNow() uint64 {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano())
}

// schedIdle is SCHED_IDLE.
const schedIdle = 5

// genThreads is how many goroutines run the generator: the kernel tears a
// live-frame test run down with an RCU grace period (milliseconds of
// sleep), during which the other one sends.
const genThreads = 2

func (r *runner) run(ctx context.Context, ifindex int, objs *loadgenObjects) (Report, error) {
	o := r.o
	var rep Report
	st := loadgenGenState{}
	if o.Rate > 0 {
		st.Gap = uint64(1e9 / o.Rate)
		st.Slack = 50_000
		st.Next = monoNow() + 1_000_000
	}
	st.Limit = o.Count
	if err := objs.State.Put(uint32(0), &st); err != nil {
		return rep, fmt.Errorf("bench: generator state: %w", err)
	}
	readSent := func() uint64 {
		var s loadgenGenState
		if err := objs.State.Lookup(uint32(0), &s); err != nil {
			return 0
		}
		return s.Seq
	}
	pinned := func(fn func() error) <-chan error {
		out := make(chan error, 1)
		if o.CPU < 0 {
			go func() { out <- fn() }()
			return out
		}
		var ferr error
		done := pin.Go(o.CPU, func() { ferr = fn() })
		go func() {
			if err := <-done; err != nil {
				out <- fmt.Errorf("bench: pin to cpu %d: %w", o.CPU, err)
				return
			}
			out <- ferr
		}()
		return out
	}

	if o.Started != nil {
		o.Started()
	}
	start := time.Now()
	r.startRx = monoNow()
	if o.Duration > 0 {
		r.perSecond = make([]SecondStats, 0, int((o.Duration+o.Drain)/time.Second)+2)
	}
	var stopGen, stopSink atomic.Bool
	var gens []<-chan error
	if o.Generate {
		// Two threads, so that one sends while the other's test run is
		// torn down (an RCU grace period of sleep: with one thread a paced
		// run reached half its rate). Paced, the departure schedule is
		// shared (compare-and-swap in loadgen.c).
		threads, batch := genThreads, uint32(64)
		if o.Rate > 0 {
			batch = 16
		}
		for range threads {
			gens = append(gens, pinned(func() error {
				// A lower priority keeps the generator from starving the
				// receiving side on its CPU (the sink, the NAPI thread).
				if o.GenNice != 0 {
					attr := unix.SchedAttr{Size: unix.SizeofSchedAttr, Nice: int32(o.GenNice)}
					if o.GenNice > 19 {
						attr = unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: schedIdle}
					}
					if err := unix.SchedSetAttr(0, &attr, 0); err != nil {
						return fmt.Errorf("bench: generator priority: %w", err)
					}
				}
				ro := ebpf.RunOptions{Data: o.Template.Frame, Flags: unix.BPF_F_TEST_XDP_LIVE_FRAMES, BatchSize: batch,
					Context: xdpMD{DataEnd: uint32(len(o.Template.Frame)), IngressIfindex: uint32(ifindex), RxQueueIndex: uint32(o.Queue)},
					Repeat:  1 << 18}
				for !stopGen.Load() {
					if o.Count > 0 && readSent() >= o.Count {
						return nil
					}
					if _, err := objs.Gen.Run(&ro); err != nil {
						return fmt.Errorf("bench: generator test run: %w", err)
					}
				}
				return nil
			}))
		}
	}
	var sinkDone <-chan error
	if r.sock != nil {
		sinkDone = pinned(func() error {
			idle := 0
			for !stopSink.Load() {
				if r.sinkPoll() > 0 {
					idle = 0
					continue
				}
				if idle++; idle >= 2000 {
					if err := r.sock.Wait(time.Millisecond); err != nil {
						return err
					}
					idle = 0
				}
			}
			return nil
		})
	}

	// Watch: the status line, the end of sending, the drain.
	var genErr error
	gensLeft := len(gens)
	genEnd := time.Time{}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	lastStatus, lastSent, lastRecv := start, uint64(0), uint64(0)
	for genEnd.IsZero() {
		select {
		case <-ctx.Done():
			stopGen.Store(true)
		case <-tick.C:
		}
		now := time.Now()
		if o.Duration > 0 && now.Sub(start) >= o.Duration {
			stopGen.Store(true)
		}
		if !o.Generate && stopGen.Load() {
			genEnd = now
		}
		for i, g := range gens {
			if g == nil {
				continue
			}
			select {
			case err := <-g:
				gens[i] = nil
				gensLeft--
				if err != nil && genErr == nil {
					genErr = err
					stopGen.Store(true)
				}
			default:
			}
		}
		if o.Generate && gensLeft == 0 {
			genEnd = time.Now()
		}
		if o.Status != nil && now.Sub(lastStatus) >= time.Second {
			sent, recv := readSent(), r.recvPub.Load()
			dt := now.Sub(lastStatus).Seconds()
			s := Status{Elapsed: now.Sub(start), Sent: sent, Received: recv,
				SentPPS: float64(sent-lastSent) / dt, ReceivedPPS: float64(recv-lastRecv) / dt}
			if o.Generate && sent > recv {
				s.Lost = sent - recv
			}
			o.Status(s)
			lastStatus, lastSent, lastRecv = now, sent, recv
		}
	}
	if sinkDone != nil {
		if o.Generate {
			time.Sleep(o.Drain)
		}
		stopSink.Store(true)
		if err := <-sinkDone; err != nil {
			return rep, err
		}
	}
	if genErr != nil {
		return rep, genErr
	}
	form := "gre"
	if !o.Template.GRE {
		form = "plain"
	}
	rep = Report{Form: form, Size: len(o.Template.Frame), Flows: o.Flows, RatePPS: o.Rate,
		Elapsed: genEnd.Sub(start), Received: r.received, Foreign: r.foreign,
		Reordered: r.reordered, Latency: r.hist.Latency(), MaxGap: time.Duration(r.maxGap), PerSecond: r.perSecond}
	if o.Generate {
		rep.Sent = readSent()
	} else {
		rep.Form, rep.Size, rep.Flows = "", 0, 0
	}
	if r.sock != nil {
		if st, err := r.sock.Stats(); err == nil {
			rep.SinkDrops = st.RxDropped + st.RxRingFull + st.RxFillRingEmptyDescs
		}
	}
	for _, b := range r.backends[:r.nb] {
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], b.addr)
		rep.Backends = append(rep.Backends, BackendCount{Addr: netip.AddrFrom4(a), Packets: b.n})
	}
	return rep, nil
}

// sinkPoll takes one batch from the sink socket and counts it.
func (r *runner) sinkPoll() int {
	s := r.sock
	s.Service()
	n := s.Receive(r.descs[:])
	if n == 0 {
		return 0
	}
	now := monoNow()
	sec := int((now - r.startRx) / 1e9)
	for len(r.perSecond) <= sec {
		r.perSecond = append(r.perSecond, SecondStats{})
	}
	ps := &r.perSecond[sec]
	if r.lastRx != 0 {
		gap := now - r.lastRx
		r.maxGap = max(r.maxGap, gap)
		ps.MaxGap = max(ps.MaxGap, time.Duration(gap))
	}
	r.lastRx = now
	before := r.received
	for i := range r.descs[:n] {
		d := &r.descs[i]
		buf, off := s.Frame(d.Addr)
		if buf != nil && off+int(d.Len) <= len(buf) {
			r.count(buf[off:off+int(d.Len)], now, ps)
		}
		s.Recycle(d.Addr)
	}
	ps.Received += r.received - before
	r.recvPub.Store(r.received)
	return n
}

// count parses one received frame: the outer destination, and the stamp
// after the (GRE-encapsulated or plain) IPv4 and TCP headers.
func (r *runner) count(f []byte, now uint64, ps *SecondStats) {
	if len(f) < 34 || f[12] != 0x08 || f[13] != 0x00 {
		r.foreign++
		return
	}
	ihl := int(f[14]&0xf) * 4
	dst := binary.BigEndian.Uint32(f[30:34])
	p := 14 + ihl
	if f[23] == 47 { // GRE: skip its header and the inner IPv4 header
		if len(f) < p+4 {
			r.foreign++
			return
		}
		flags := binary.BigEndian.Uint16(f[p:])
		glen := 4
		for _, bit := range []uint16{0x8000, 0x2000, 0x1000} {
			if flags&bit != 0 {
				glen += 4
			}
		}
		p += glen
		if len(f) < p+20 {
			r.foreign++
			return
		}
		p += int(f[p]&0xf) * 4
	}
	if len(f) < p+20 {
		r.foreign++
		return
	}
	p += int(f[p+12]>>4) * 4 // TCP data offset
	if len(f) < p+StampLen || binary.NativeEndian.Uint32(f[p:]) != StampMagic {
		r.foreign++
		return
	}
	seq := binary.NativeEndian.Uint32(f[p+4:])
	ts := binary.NativeEndian.Uint64(f[p+8:])
	r.received++
	if now > ts {
		r.hist.Add(now - ts)
		ps.MaxLatency = max(ps.MaxLatency, time.Duration(now-ts))
	} else {
		r.hist.Add(0)
	}
	if r.seen && int32(seq-r.maxSeq) < 0 {
		r.reordered++
	} else {
		r.maxSeq, r.seen = seq, true
	}
	for i := range r.backends[:r.nb] {
		if r.backends[i].addr == dst {
			r.backends[i].n++
			return
		}
	}
	if r.nb < len(r.backends) {
		r.backends[r.nb] = backendSlot{addr: dst, n: 1}
		r.nb++
	}
}
