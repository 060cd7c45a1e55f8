package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/rail-lb/rail/control"
	"github.com/rail-lb/rail/pin"
	"github.com/rail-lb/rail/pipeline"
	"github.com/rail-lb/rail/rings"
)

func cmdRun(args []string, stderr io.Writer) int {
	var file string
	var takeover bool
	idle := idlePolicy{spins: 20000, wait: 50 * time.Millisecond}
	if !flags("run", args, stderr, func(fs *flag.FlagSet) {
		fs.StringVar(&file, "config", "", "configuration file")
		fs.IntVar(&idle.spins, "idle-spins", idle.spins, "empty polls before a worker parks in poll(2) until traffic (0: never park, pure busy polling)")
		fs.DurationVar(&idle.wait, "idle-wait", idle.wait, "longest a parked worker sleeps before it polls again")
		fs.BoolVar(&takeover, "takeover", false, "take over the sockets, rings, connection tables and API state of the raild running with this configuration's api.socket, without losing packets")
	}) {
		return 2
	}
	if idle.spins < 0 || idle.wait <= 0 {
		fmt.Fprintf(stderr, "raild run: --idle-spins %d, --idle-wait %v: want spins ≥ 0 and wait > 0\n", idle.spins, idle.wait)
		return 2
	}
	cfg := loadConfig(file, stderr)
	if cfg == nil {
		return 1
	}
	if probs := cfg.RequireInterface(); len(probs) > 0 {
		for _, p := range probs {
			fmt.Fprintln(stderr, p)
		}
		return 1
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	if err := serve(cfg, file, idle, takeover, log); err != nil {
		fmt.Fprintf(stderr, "raild run: %v\n", err)
		return 1
	}
	return 0
}

// node is a running raild: the control state, the steering program, one
// socket and worker per queue, the metrics endpoint and the admin API.
type node struct {
	log   *slog.Logger
	state *control.State
	steer *rings.Steer
	// queues are the fully opened queues, in plan order: a queue is
	// appended only once its socket is registered and its worker built, so
	// close never sees a socket without its worker.
	queues []queue
	stop   atomic.Bool
	// exited gets one value per started worker when it ends: nil after a
	// requested stop, else why it ended (a pinning error).
	exited  chan error
	started int
	// handedOver: a takeover took the sockets; exit without undoing what
	// the new process now runs on.
	handedOver bool
	// mode is how the steering program is attached (after a takeover: as
	// the process before said it was).
	mode rings.XDPMode
	// allowed are the CPUs raild was started on, before confineControl:
	// what a raild it starts (an upgrade) may use.
	allowed []int
}

// queue is one opened NIC queue: its AF_XDP socket and the worker loop
// that polls it, pinned to cpu.
type queue struct {
	queue, cpu int
	sock       *rings.Socket
	loop       *pipeline.Loop
}

// idlePolicy is when a worker stops busy polling: after spins empty polls
// it parks in poll(2) for up to wait (woken by the next received frame).
// The default (20000 spins, 50 ms) keeps a loaded worker spinning and lets
// an idle one sleep; benchmarks that compare CPU per packet below
// saturation park sooner (railbench compare).
type idlePolicy struct {
	spins int
	wait  time.Duration
}

// serve runs raild until a signal stops it or a worker fails: it opens
// the queues (openQueues), starts the API and metrics (startServing) and
// the workers, then handles signals and the workers' ends (wait). Every
// step it took is undone on the way out, in reverse order.
func serve(cfg *control.Config, file string, idle idlePolicy, takeover bool, log *slog.Logger) (err error) {
	// Signals are ours from the start: a SIGHUP sent while raild is still
	// starting must not kill it, and a SIGTERM must still detach cleanly.
	// They wait in the channel until wait reads them.
	sig := make(chan os.Signal, 4)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGUSR2)
	defer signal.Stop(sig)
	ifi, err := net.InterfaceByName(cfg.Interface)
	if err != nil {
		return fmt.Errorf("interface %s: %w", cfg.Interface, err)
	}
	cfg.MTU = ifi.MTU
	plan, topo, err := planQueues(cfg)
	if err != nil {
		return err
	}
	allowed, err := confineControl(plan, topo, log)
	if err != nil {
		return err
	}
	state, err := control.NewState(cfg, file, log)
	if err != nil {
		return err
	}

	soft, hard := raiseNoFile()
	need := fdBudget(cfg, len(plan))
	if note := fdNote(soft, hard, need); note != "" {
		log.Warn(note)
	} else {
		log.Info("file descriptors", "limit", soft, "needed", need)
	}

	n := &node{log: log, state: state, exited: make(chan error, len(plan)), allowed: allowed}
	defer n.close()

	var tk *takeoverClient // takeover_linux.go
	if takeover {
		if tk, err = dialTakeover(cfg, log); err != nil {
			return err
		}
		defer tk.close()
	}
	if n.mode, err = n.openQueues(ifi.Index, cfg, plan, idle, tk); err != nil {
		return err
	}
	restoreBusyPoll := startBusyPoll(cfg, n.queues, log) // busypoll_linux.go
	defer func() {
		if !n.handedOver {
			restoreBusyPoll()
		}
	}()
	log.Info("attached", "interface", cfg.Interface, "xdp_mode", n.mode.String(), "plan", plan.String(),
		"services", len(cfg.Services), "local_address", cfg.LocalAddress)

	var speaker *control.Speaker
	if cfg.BGP != nil {
		if speaker, err = control.NewSpeaker(cfg.BGP, log); err != nil {
			return err
		}
		defer speaker.Stop()
		state.OnUsable(speaker.Update)
		log.Info("bgp", "asn", cfg.BGP.ASN, "router_id", cfg.BGP.RouterID, "peers", len(cfg.BGP.Peers))
	}
	h, stopServing, err := n.startServing(cfg, speaker, tk != nil)
	if err != nil {
		return err
	}
	defer stopServing()
	tks, err := listenTakeover(n, cfg, state, log) // takeover_linux.go
	if err != nil {
		return err
	}
	defer tks.close()
	n.startWorkers()
	if tk == nil {
		sdNotify("READY=1", log)
	}
	if speaker != nil {
		// The workers run: the VIPs may be announced.
		speaker.SetForwarding(true)
		var stopWatch atomic.Bool
		defer stopWatch.Store(true)
		go watchWorkers(n, speaker, &stopWatch, log)
	}
	// Everything the data path needs is allocated: from now on the
	// collector runs as memory: says (memory.go).
	applyMemory(cfg.Memory, log)
	return n.wait(sig, cfg, speaker, tks, h)
}

// planQueues is the queue → CPU plan for cfg's queues (all the
// interface's rx queues when it names none): the plan `raild plan` prints.
func planQueues(cfg *control.Config) (pin.Plan, pin.Topology, error) {
	queues := cfg.Queues
	if queues == nil {
		n, err := rxQueues(cfg.Interface)
		if err != nil {
			return nil, pin.Topology{}, err
		}
		for q := range n {
			queues = append(queues, q)
		}
	}
	topo, err := pin.Host(cfg.Interface)
	if err != nil {
		return nil, topo, err
	}
	plan, err := pin.PlanFor(topo, queues, cfg.CPUs)
	if err != nil {
		return nil, topo, fmt.Errorf("cpus: %w", err)
	}
	return plan, topo, nil
}

// openQueues loads the steering program (or, with tk, takes the running
// raild's), fills its maps and keeps them following the state, opens a
// socket and worker per queue of plan (or takes them over) and attaches
// the program to the interface; it returns the XDP mode attached. What it
// opened is in n, for n.close, also when it fails.
func (n *node) openQueues(ifindex int, cfg *control.Config, plan pin.Plan, idle idlePolicy, tk *takeoverClient) (mode rings.XDPMode, err error) {
	state, log := n.state, n.log
	opts := rings.DefaultOpts()
	opts.ZeroCopy = cfg.ZeroCopy
	opts.BusyPoll = cfg.BusyPoll
	if tk != nil {
		if err := tk.check(cfg, plan, opts); err != nil {
			return 0, err
		}
		if n.steer, err = tk.prepare(state); err != nil {
			return 0, err
		}
	} else if n.steer, err = rings.LoadSteer(); err != nil {
		return 0, err
	}
	if err := n.steer.SetLocals(cfg.Locals()); err != nil {
		return 0, err
	}
	if err := n.steer.SetServices(cfg.SteerKeys()); err != nil {
		return 0, err
	}
	// Every later change (reload, API) updates the steering maps after the
	// snapshot that knows the new services is in place.
	state.OnApply(func(c *control.Config, svcs []control.Service) {
		if err := n.steer.SetLocals(c.Locals()); err != nil {
			log.Error("steering: locals", "err", err)
		}
		if err := n.steer.SetServices(control.SteerKeys(svcs)); err != nil {
			log.Error("steering: services", "err", err)
		}
	})
	if tk != nil {
		if err := tk.commit(n, plan, state, cfg.Conntrack, idle); err != nil {
			return 0, err
		}
		return tk.offer.XDPMode, nil // the program stays attached as it was
	}
	for _, a := range plan {
		q, err := n.openQueue(ifindex, a, opts, cfg.Conntrack, idle)
		if err != nil {
			return 0, fmt.Errorf("queue %d: %w", a.Queue, err)
		}
		n.queues = append(n.queues, q)
		log.Info("queue open", "queue", a.Queue, "cpu", a.CPU, "zero_copy", q.sock.ZeroCopy(), "conntrack_pages", q.loop.W.Conntrack().Pages().String())
	}
	return n.steer.Attach(ifindex, cfg.XDPMode)
}

// startServing gives every worker a capture tap, starts the health checks
// (and the neighbour resolver), the admin API and the metrics endpoint.
// After a takeover (tookOver) the workers start first: the rings are
// theirs already, and they forward while the rest starts. stop undoes
// what it started; on an error it has undone it already.
func (n *node) startServing(cfg *control.Config, speaker *control.Speaker, tookOver bool) (h *httpServing, stop func(), err error) {
	state, log := n.state, n.log
	// Live capture (GET /v1/capture): a tap per worker, before they run.
	capture := pipeline.NewCapture()
	for _, q := range n.queues {
		q.loop.Tap = capture.NewTap(q.queue, q.cpu)
	}
	if tookOver {
		n.startWorkers() // the rings are ours: forward before the rest starts
	}
	api := &control.APIServer{State: state, Log: log, BGP: speaker, Capture: capture}
	m := &control.Metrics{Snap: &state.Snap, Steer: n.steer, State: state, API: api, BGP: speaker, Capture: capture}
	for _, q := range n.queues {
		m.Queues = append(m.Queues, control.QueueStats{Queue: q.queue, CPU: q.cpu, Pipeline: q.loop.W.Stats(), Sock: q.sock, Worker: q.loop.W})
	}
	state.SetQueues(m.Queues)
	checker, stopCtl, err := startControl(state, cfg, log)
	if err != nil {
		return nil, nil, err
	}
	m.Checker = checker
	h = &httpServing{api: api, metrics: m, cfg: cfg, log: log}
	if err := h.start(); err != nil {
		stopCtl()
		return nil, nil, err
	}
	return h, func() { h.stop(); stopCtl() }, nil
}

// wait handles signals until one stops raild (SIGHUP reloads the file,
// SIGUSR2 starts an upgrade), a worker ends (its error, nil after a
// requested stop) or a takeover took everything over.
func (n *node) wait(sig chan os.Signal, cfg *control.Config, speaker *control.Speaker, tks *takeoverServer, h *httpServing) error {
	for {
		select {
		case s := <-sig:
			if s == syscall.SIGHUP {
				// Reload logs its outcome; an invalid file changes nothing.
				n.state.Reload()
				continue
			}
			if s == syscall.SIGUSR2 {
				spawnTakeover(n.allowed, n.log) // an upgrade: takeover_linux.go
				continue
			}
			n.log.Info("stopping", "signal", s.String())
			if speaker != nil {
				drain(speaker, cfg.BGP, sig, n.log)
			}
		case err := <-n.exited:
			n.started--
			return err
		case req := <-tks.requests:
			if !n.handOver(req, n.state, h) {
				continue
			}
		}
		return nil
	}
}

// startWorkers starts one pinned worker per queue; n.exited hears of
// each one's end.
// A takeover starts them as soon as it has the rings; then this does
// nothing.
func (n *node) startWorkers() {
	if n.started > 0 {
		return
	}
	n.stop.Store(false)
	for _, q := range n.queues {
		l := q.loop
		done := pin.Go(q.cpu, func() { l.Run(&n.stop) })
		n.started++
		go func() {
			err := <-done
			if err == nil && !n.stop.Load() {
				err = fmt.Errorf("queue %d: worker stopped", q.queue)
			}
			if err != nil {
				err = fmt.Errorf("queue %d on cpu %d: %w", q.queue, q.cpu, err)
			}
			n.exited <- err
		}()
	}
}

// startControl starts the health checker and, for next_hop: kernel, the
// neighbour resolver; both follow every change of the state.
func startControl(state *control.State, cfg *control.Config, log *slog.Logger) (checker *control.Checker, stop func(), err error) {
	checker = control.NewChecker(state.SetHealthFrom, log)
	tun := &tunnel{ifname: cfg.Interface, local: cfg.LocalAddress, log: log}
	checker.Tunnel, checker.Local = tun, cfg.LocalAddress
	state.OnApply(checker.Reconcile)
	stopChecks := func() { checker.Stop(); tun.Close() }
	if cfg.NextHop != control.NextHopKernel {
		return checker, stopChecks, nil
	}
	res, err := control.NewResolver(cfg.Interface, state.SetNeighbor, log)
	if err != nil {
		stopChecks()
		return nil, nil, err
	}
	state.OnApply(res.Reconcile)
	go res.Run()
	return checker, func() { stopChecks(); res.Stop() }, nil
}

// close stops the workers, detaches the program (the NIC goes back to the
// kernel) and closes the sockets, logging what each queue did.
func (n *node) close() {
	n.stop.Store(true)
	for ; n.started > 0; n.started-- {
		if err := <-n.exited; err != nil {
			n.log.Error("worker", "err", err)
		}
	}
	if n.steer != nil {
		if err := n.steer.Close(); err != nil {
			n.log.Error("detach", "err", err)
		} else if n.handedOver {
			n.log.Info("closed: the interface stays with the raild that took over")
		} else {
			n.log.Info("detached: the interface is back with the kernel")
		}
	}
	for _, q := range n.queues {
		st := q.loop.W.Stats()
		n.log.Info("queue closed", "queue", q.queue, "rx", st.Packets(), "tx", st.Transmitted())
		if err := q.sock.Close(); err != nil {
			n.log.Error("close", "queue", q.queue, "err", err)
		}
	}
}

// openQueue opens the AF_XDP socket of a.Queue, registers it with the
// steering program and builds its worker. On any failure it closes what it
// opened itself, so the node holds only complete queues.
func (n *node) openQueue(ifindex int, a pin.Assignment, opts rings.Opts, ct control.Conntrack, idle idlePolicy) (q queue, err error) {
	s, err := rings.Open(ifindex, a.Queue, opts)
	if err != nil {
		return q, err
	}
	defer func() {
		if err != nil {
			n.steer.Unregister(a.Queue)
			s.Close()
		}
	}()
	if err := n.steer.Register(a.Queue, s); err != nil {
		return q, err
	}
	table, err := pipeline.NewConntrack(ct.EntriesPerCore, ct.TCPTimeout, ct.UDPTimeout)
	if err != nil {
		return q, err
	}
	return newQueue(a.Queue, a.CPU, s, pipeline.NewWorker(table), n.state, idle), nil
}

// newQueue is queue q's worker loop on cpu over socket s, on state's
// snapshots: for a queue opened here or taken over from another raild.
func newQueue(q, cpu int, s *rings.Socket, w *pipeline.Worker, state *control.State, idle idlePolicy) queue {
	return queue{queue: q, cpu: cpu, sock: s, loop: &pipeline.Loop{
		W: w, Sock: s, Snap: &state.Snap, IdleSpins: idle.spins, IdleWait: idle.wait,
	}}
}

// rxQueues counts the interface's receive queues in sysfs.
func rxQueues(ifname string) (int, error) {
	m, err := filepath.Glob(filepath.Join("/sys/class/net", ifname, "queues", "rx-*"))
	if err != nil || len(m) == 0 {
		return 0, errors.New("interface " + ifname + ": cannot count its rx queues in sysfs")
	}
	return len(m), nil
}

// confineControl keeps everything but the workers — the Go runtime and
// its collector, health checks, the API, metrics, BGP, and a new raild's
// preparation during a takeover — off the CPUs plan gives the workers, on
// the others raild may use (pin.Confine; the isolated ones only if there
// are no others: the kernel balances no load there), so that none of it
// preempts a busy-polling worker. It returns the CPUs raild was allowed
// before. When the workers take every allowed CPU, the control plane
// shares them.
//
// It also fixes GOMAXPROCS. A busy-polling worker holds a P for good, and
// the collector takes a quarter of the Ps for dedicated mark workers,
// which run until marking ends: so one P per worker, plus enough for the
// collector's and one more goroutine's — at least one per control-plane
// CPU. Left alone, Go would lower GOMAXPROCS to the confined threads' CPU
// count within seconds, and the workers would take turns with the control
// plane. The extra Ps cost nothing: their threads run on the
// control-plane CPUs.
func confineControl(plan pin.Plan, topo pin.Topology, log *slog.Logger) ([]int, error) {
	allowed := topo.Allowed
	var rest, restIsolated []int
	for _, c := range allowed {
		if slices.ContainsFunc(plan, func(a pin.Assignment) bool { return a.CPU == c }) {
			continue
		}
		if topo.IsIsolated(c) {
			restIsolated = append(restIsolated, c)
		} else {
			rest = append(rest, c)
		}
	}
	if len(rest) == 0 {
		rest = restIsolated
	}
	if os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(controlProcs(len(plan), len(rest)))
	}
	if len(rest) == 0 {
		log.Warn("control plane: every allowed CPU runs a worker; the control plane shares them", "allowed", pin.FormatCPUs(allowed), "gomaxprocs", runtime.GOMAXPROCS(0))
		return allowed, nil
	}
	if err := pin.Confine(rest); err != nil {
		return nil, err
	}
	log.Info("control plane", "cpus", pin.FormatCPUs(rest), "gomaxprocs", runtime.GOMAXPROCS(0))
	return allowed, nil
}

// controlProcs is GOMAXPROCS for workers busy-polling workers and a
// control plane on control CPUs: workers + x Ps, where x is at least
// control and leaves the collector's dedicated mark workers (a quarter of
// all Ps) one P to spare: x ≥ (workers+x)/4 + 1, so x ≥ (workers+4)/3.
func controlProcs(workers, control int) int {
	return workers + max(control, (workers+4+2)/3)
}
