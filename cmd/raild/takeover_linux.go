package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime/debug"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rail-lb/rail/control"
	"github.com/rail-lb/rail/pin"
	"github.com/rail-lb/rail/pipeline"
	"github.com/rail-lb/rail/rings"
)

// takeoverProtocol is the version of the hand-over between a running
// raild and one started with --takeover. Both must speak the same; the
// running one refuses any other and keeps forwarding. (A string so that a
// test can build a binary that speaks another: -ldflags -X.)
var takeoverProtocol = "1"

// takeoverPath is the unix socket a running raild listens on for a
// takeover: next to the admin socket.
func takeoverPath(cfg *control.Config) string {
	if cfg.API.Socket == "" {
		return ""
	}
	return cfg.API.Socket + ".takeover"
}

// How long each side waits for the other during a hand-over. The new
// process prepares between offer and ready (config checked already, so
// mostly mapping memory and building tables); between commit and taking
// the old process's workers are stopped, so that wait is short.
const (
	tkPrepareTimeout = 30 * time.Second
	tkCommitTimeout  = 5 * time.Second
)

// The messages, in order: hello (new → old), offer with the descriptors
// (old → new), ready (new → old), commit (old → new, the old workers are
// stopped), taking (new → old), yours (old → new, the old process exits).

type tkHello struct {
	Protocol, Version string
	PID               int
	// Tables is the newest connection-table file layout the new process
	// adopts (tableLayout); an older raild sends none (0).
	Tables int
}

// tableLayout is the layout of this raild's connection-table files:
// 1, the connection tables alone (the first takeover-capable raild); 2,
// the fragment table after them and the file rounded up to huge pages. A
// raild adopts both; the running one refuses a new process that knows
// only an older layout than its own, before any worker pauses.
const tableLayout = 2

type tkOffer struct {
	Error             string // a refusal; nothing else is set
	Protocol, Version string
	Steer             string // rings.SteerVersion of the running program
	// XDPMode is how the running program is attached (an older raild
	// leaves it out: auto).
	XDPMode    rings.XDPMode
	Interface  string
	Entries    uint32 // conntrack.entries_per_core
	Queues     []tkQueue
	Control    control.Handover
	Generation uint64
}

// tkQueue is one queue of the offer; its descriptors are the XSK, the UMEM
// memfd and the connection table's memfd, in queue order after the
// steering program's.
type tkQueue struct {
	Queue, CPU int
	Opts       rings.Opts
}

type tkCommit struct {
	Error   string
	Sockets []rings.Handoff
	Tables  []pipeline.CtState
	// Control is set when the state changed since the offer.
	Control *control.Handover
}

type tkStep struct{ Step string }

// steerFDCount is how many descriptors rings.Steer.Export passes.
const steerFDCount = 9

// sendMsg writes one message: its length, its JSON and fds attached.
func sendMsg(c *net.UnixConn, v any, fds []int) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	msg := binary.BigEndian.AppendUint32(nil, uint32(len(b)))
	msg = append(msg, b...)
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	n, oobn, err := c.WriteMsgUnix(msg, oob, nil)
	if err != nil {
		return err
	}
	if n != len(msg) || oobn != len(oob) {
		return fmt.Errorf("short write: %d of %d bytes", n, len(msg))
	}
	return nil
}

// recvMsg reads one message into v and returns the descriptors that came
// with it.
func recvMsg(c *net.UnixConn, v any) (fds []int, err error) {
	head := make([]byte, 4)
	oob := make([]byte, unix.CmsgSpace(4*253))
	n, oobn, _, _, err := c.ReadMsgUnix(head, oob)
	if err != nil {
		return nil, err
	}
	if oobn > 0 {
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return nil, err
		}
		for i := range msgs {
			got, err := unix.ParseUnixRights(&msgs[i])
			if err != nil {
				return nil, err
			}
			fds = append(fds, got...)
		}
	}
	if _, err := io.ReadFull(c, head[n:]); err != nil {
		closeFDs(fds)
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint32(head))
	if _, err := io.ReadFull(c, b); err != nil {
		closeFDs(fds)
		return nil, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		closeFDs(fds)
		return nil, fmt.Errorf("malformed message: %w", err)
	}
	return fds, nil
}

func closeFDs(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				return s.Value
			}
		}
		return bi.Main.Version
	}
	return "unknown"
}

// --- the running process's side ---

// takeoverServer listens for a takeover while raild runs. It serves one
// at a time: a second attempt while one is in progress is refused.
type takeoverServer struct {
	ln    *net.UnixListener
	n     *node
	cfg   *control.Config
	state *control.State
	log   *slog.Logger
	busy  atomic.Bool
	// requests hands the commit to the main loop, which stops the
	// workers (it owns them) and answers on the request.
	requests chan *tkRequest
}

type tkRequest struct {
	gen   uint64 // the control state's generation at the offer
	reply chan tkCommit
	// taken says whether the new process took over (true: exit) or not
	// (false: resume forwarding).
	taken chan bool
	// released is closed once the old process let go of what the new one
	// must listen on (API, metrics), after taken said true; confirmed once
	// the new process was told (the old one exits only then).
	released, confirmed chan struct{}
}

// listenTakeover opens the takeover socket (0600, like the admin socket).
func listenTakeover(n *node, cfg *control.Config, state *control.State, log *slog.Logger) (*takeoverServer, error) {
	path := takeoverPath(cfg)
	if path == "" {
		log.Info("takeover: unavailable without api.socket")
		return &takeoverServer{}, nil
	}
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			c.Close()
			return nil, fmt.Errorf("takeover socket %s: another process is serving it", path)
		}
		os.Remove(path)
	}
	old := unix.Umask(0o177)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	unix.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("takeover socket: %w", err)
	}
	t := &takeoverServer{ln: ln, n: n, cfg: cfg, state: state, log: log, requests: make(chan *tkRequest)}
	go t.accept()
	log.Info("takeover: listening", "socket", path)
	return t, nil
}

func (t *takeoverServer) accept() {
	for {
		c, err := t.ln.AcceptUnix()
		if err != nil {
			return
		}
		go t.handle(c)
	}
}

// close stops listening and removes the socket.
func (t *takeoverServer) close() {
	if t.ln != nil {
		t.ln.Close()
	}
}

func (t *takeoverServer) refuse(c *net.UnixConn, msg string) {
	t.log.Warn("takeover refused", "reason", msg)
	sendMsg(c, tkOffer{Error: msg}, nil)
}

// handle runs one takeover from the old process's side. Until the new
// process says it is taking over, any failure leaves this process
// forwarding as before.
func (t *takeoverServer) handle(c *net.UnixConn) {
	defer c.Close()
	c.SetDeadline(time.Now().Add(tkPrepareTimeout))
	var hello tkHello
	if _, err := recvMsg(c, &hello); err != nil {
		t.log.Warn("takeover: no hello", "err", err)
		return
	}
	if !t.busy.CompareAndSwap(false, true) {
		t.refuse(c, "another takeover is in progress")
		return
	}
	defer t.busy.Store(false)
	if hello.Protocol != takeoverProtocol {
		t.refuse(c, fmt.Sprintf("incompatible versions: the running raild (%s) speaks takeover protocol %s, the new one (%s) %s; restart instead",
			buildVersion(), takeoverProtocol, hello.Version, hello.Protocol))
		return
	}
	if hello.Tables < tableLayout {
		t.refuse(c, fmt.Sprintf("incompatible versions: the new raild (%s) cannot adopt the running one's (%s) connection tables (file layout %d, with the fragment table); restart instead",
			hello.Version, buildVersion(), tableLayout))
		return
	}
	if t.cfg.BGP != nil {
		t.refuse(c, "the running raild speaks BGP, whose sessions a takeover cannot carry yet; restart instead")
		return
	}
	offer, fds, err := t.offer()
	if err != nil {
		t.refuse(c, err.Error())
		return
	}
	t.log.Info("takeover: offering", "pid", hello.PID, "version", hello.Version, "queues", len(offer.Queues), "descriptors", len(fds))
	if err := sendMsg(c, offer, fds); err != nil {
		t.log.Warn("takeover: sending the offer", "err", err)
		return
	}
	var step tkStep
	if _, err := recvMsg(c, &step); err != nil || step.Step != "ready" {
		t.log.Warn("takeover: the new process gave up before the hand-over; still forwarding", "step", step.Step, "err", err)
		return
	}
	req := &tkRequest{gen: offer.Generation, reply: make(chan tkCommit), taken: make(chan bool, 1),
		released: make(chan struct{}), confirmed: make(chan struct{})}
	t.requests <- req
	commit := <-req.reply
	taken := false
	defer func() {
		if !taken {
			req.taken <- false
		}
	}()
	if commit.Error != "" {
		sendMsg(c, commit, nil)
		return
	}
	c.SetDeadline(time.Now().Add(tkCommitTimeout))
	if err := sendMsg(c, commit, nil); err != nil {
		t.log.Warn("takeover: sending the commit", "err", err)
		return
	}
	if _, err := recvMsg(c, &step); err != nil || step.Step != "taking" {
		t.log.Warn("takeover: the new process did not take over; resuming", "step", step.Step, "err", err)
		return
	}
	// From here the rings are the new process's. What it listens on goes
	// first: the takeover socket, the API and metrics (the main loop).
	t.close()
	taken = true
	req.taken <- true
	<-req.released
	if err := sendMsg(c, tkStep{Step: "yours"}, nil); err != nil {
		t.log.Warn("takeover: confirming", "err", err)
	}
	// The new process tells systemd it is the main process now, then
	// says so: only then may this one exit (systemd would otherwise see the
	// service's main process end).
	c.SetDeadline(time.Now().Add(time.Second))
	recvMsg(c, &step)
	close(req.confirmed)
}

// offer describes the queues and collects the descriptors: the steering
// program's, then each queue's XSK, UMEM and connection table.
func (t *takeoverServer) offer() (tkOffer, []int, error) {
	fds, err := t.n.steer.Export()
	if err != nil {
		return tkOffer{}, nil, err
	}
	o := tkOffer{
		Protocol: takeoverProtocol, Version: buildVersion(), Steer: rings.SteerVersion(), XDPMode: t.n.mode,
		Interface: t.cfg.Interface, Entries: t.cfg.Conntrack.EntriesPerCore,
		Generation: t.state.Generation(), Control: t.state.Export(),
	}
	for _, q := range t.n.queues {
		o.Queues = append(o.Queues, tkQueue{Queue: q.queue, CPU: q.cpu, Opts: q.sock.Opts()})
		fds = append(fds, q.sock.FD(), q.sock.UMEMFile(), q.loop.W.Conntrack().File())
	}
	return o, fds, nil
}

// handOver is the main loop's part of a takeover: stop the workers at a
// batch boundary, export where every frame is, stop serving HTTP, and
// wait for the verdict. It reports whether the new process took over;
// if not, everything is resumed as it was.
func (n *node) handOver(req *tkRequest, state *control.State, h *httpServing) bool {
	start := time.Now()
	n.pauseWorkers()
	var c tkCommit
	for _, q := range n.queues {
		ho, err := q.sock.Handoff()
		if err != nil {
			c = tkCommit{Error: err.Error()}
			break
		}
		c.Sockets = append(c.Sockets, ho)
		c.Tables = append(c.Tables, q.loop.W.Handoff())
	}
	if state.Generation() != req.gen {
		ex := state.Export()
		c.Control = &ex
	}
	paused := time.Since(start)
	req.reply <- c
	if <-req.taken {
		h.stop()
		close(req.released)
		select {
		case <-req.confirmed:
		case <-time.After(time.Second):
		}
		n.handedOver = true
		n.log.Info("takeover: handed over; exiting", "workers_stopped_in", paused.Round(time.Microsecond),
			"until_taken", time.Since(start).Round(time.Microsecond))
		return true
	}
	n.startWorkers()
	n.log.Info("takeover: rolled back; forwarding again", "paused_for", time.Since(start).Round(time.Microsecond))
	return false
}

// pauseWorkers stops every worker at a batch boundary and waits for them.
func (n *node) pauseWorkers() {
	n.stop.Store(true)
	for ; n.started > 0; n.started-- {
		if err := <-n.exited; err != nil {
			n.log.Error("worker", "err", err)
		}
	}
}

// --- the new process's side ---

// takeoverClient is a takeover from the new process's side.
type takeoverClient struct {
	c      *net.UnixConn
	oldPID int
	offer  tkOffer
	fds    []int // the offer's, until used
	log    *slog.Logger
}

// dialTakeover connects to the running raild, says hello and receives
// the offer. A refusal is an error that says why.
func dialTakeover(cfg *control.Config, log *slog.Logger) (*takeoverClient, error) {
	if cfg.BGP != nil {
		return nil, errors.New("--takeover: a takeover cannot carry BGP sessions yet; restart instead")
	}
	path := takeoverPath(cfg)
	if path == "" {
		return nil, errors.New("--takeover needs api.socket: the running raild listens next to it")
	}
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, fmt.Errorf("--takeover: no running raild at %s: %w", path, err)
	}
	t := &takeoverClient{c: conn, log: log}
	if raw, err := conn.SyscallConn(); err == nil {
		raw.Control(func(fd uintptr) {
			if cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
				t.oldPID = int(cred.Pid)
			}
		})
	}
	conn.SetDeadline(time.Now().Add(tkPrepareTimeout))
	if err := sendMsg(conn, tkHello{Protocol: takeoverProtocol, Version: buildVersion(), PID: os.Getpid(), Tables: tableLayout}, nil); err != nil {
		conn.Close()
		return nil, fmt.Errorf("--takeover: %w", err)
	}
	fds, err := recvMsg(conn, &t.offer)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("--takeover: reading the offer: %w", err)
	}
	t.fds = fds
	if t.offer.Error != "" {
		t.close()
		return nil, fmt.Errorf("--takeover: the running raild (pid %d) refused: %s", t.oldPID, t.offer.Error)
	}
	if want := steerFDCount + 3*len(t.offer.Queues); len(fds) != want {
		t.close()
		return nil, fmt.Errorf("--takeover: the offer came with %d descriptors, want %d", len(fds), want)
	}
	log.Info("takeover: offer", "pid", t.oldPID, "version", t.offer.Version, "queues", len(t.offer.Queues))
	return t, nil
}

// check compares the offer with what this process would open itself: the
// same steering program, interface, queues, ring and frame geometry and
// table size. Anything else is refused before anything changes.
func (t *takeoverClient) check(cfg *control.Config, plan pin.Plan, opts rings.Opts) error {
	o := t.offer
	var probs []string
	if o.Steer != rings.SteerVersion() {
		probs = append(probs, fmt.Sprintf("the steering program differs (running %s, this binary %s)", o.Steer, rings.SteerVersion()))
	}
	if o.Interface != cfg.Interface {
		probs = append(probs, fmt.Sprintf("interface %s, the running raild forwards on %s", cfg.Interface, o.Interface))
	}
	if o.Entries != cfg.Conntrack.EntriesPerCore {
		probs = append(probs, fmt.Sprintf("conntrack.entries_per_core %d, the running raild's tables have %d", cfg.Conntrack.EntriesPerCore, o.Entries))
	}
	var mine, theirs []int
	for _, a := range plan {
		mine = append(mine, a.Queue)
	}
	for _, q := range o.Queues {
		theirs = append(theirs, q.Queue)
		g := q.Opts
		if g.FrameSize != opts.FrameSize || g.FrameCount != opts.FrameCount || g.Headroom != opts.Headroom ||
			g.FillSize != opts.FillSize || g.CompletionSize != opts.CompletionSize || g.RxSize != opts.RxSize || g.TxSize != opts.TxSize {
			probs = append(probs, fmt.Sprintf("queue %d: UMEM and rings differ (running %d frames of %d)", q.Queue, g.FrameCount, g.FrameSize))
		}
		if g.ZeroCopy != opts.ZeroCopy {
			probs = append(probs, fmt.Sprintf("queue %d: zero_copy differs", q.Queue))
		}
	}
	if !slices.Equal(mine, theirs) {
		probs = append(probs, fmt.Sprintf("queues %v, the running raild forwards on %v", mine, theirs))
	}
	if len(probs) > 0 {
		return fmt.Errorf("--takeover: cannot take over (the running raild keeps forwarding; restart to change these): %s", joinProbs(probs))
	}
	return nil
}

func joinProbs(p []string) string {
	b, _ := json.Marshal(p)
	return string(b)
}

// steer adopts the running steering program and imports the offer's
// control state: this process's tables are built now, while the old one
// forwards.
func (t *takeoverClient) prepare(state *control.State) (*rings.Steer, error) {
	s, err := rings.AdoptSteer(t.fds[:steerFDCount])
	t.fds = t.fds[steerFDCount:]
	if err != nil {
		return nil, err
	}
	if _, err := state.Import(t.offer.Control); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// stall is a testing aid: RAILD_TAKEOVER_STALL=STEP makes the new process
// wait at that step of the hand-over (ready, taking), so that a test can
// kill it there; STEP:DURATION (taking:3s) waits that long and goes on,
// so that a test can kill the old process meanwhile.
func stall(step string, log *slog.Logger) {
	v := os.Getenv("RAILD_TAKEOVER_STALL")
	name, d, timed := strings.Cut(v, ":")
	if name != step {
		return
	}
	wait := time.Hour
	if timed {
		var err error
		if wait, err = time.ParseDuration(d); err != nil {
			log.Warn("takeover: RAILD_TAKEOVER_STALL: not a duration; stalling for good", "value", v)
			wait = time.Hour
		}
	}
	log.Warn("takeover: stalled (RAILD_TAKEOVER_STALL)", "step", step, "for", wait)
	time.Sleep(wait)
}

// commit asks the old process to stop, adopts its sockets and tables and
// takes over: the caller starts the workers at once. An error before "taking" leaves the
// old process forwarding; after it, the old one has stopped for good.
func (t *takeoverClient) commit(n *node, plan pin.Plan, state *control.State, ct control.Conntrack, idle idlePolicy) (err error) {
	stall("ready", t.log)
	t.c.SetDeadline(time.Now().Add(tkCommitTimeout))
	if err := sendMsg(t.c, tkStep{Step: "ready"}, nil); err != nil {
		return fmt.Errorf("--takeover: %w", err)
	}
	start := time.Now()
	var c tkCommit
	if _, err := recvMsg(t.c, &c); err != nil {
		return fmt.Errorf("--takeover: waiting for the running raild to stop its workers: %w", err)
	}
	if c.Error != "" {
		return fmt.Errorf("--takeover: the running raild could not hand over: %s", c.Error)
	}
	if len(c.Sockets) != len(t.offer.Queues) || len(c.Tables) != len(t.offer.Queues) {
		return fmt.Errorf("--takeover: the commit names %d sockets and %d tables for %d queues", len(c.Sockets), len(c.Tables), len(t.offer.Queues))
	}
	stopped := time.Now()
	if c.Control != nil {
		if _, err := state.Import(*c.Control); err != nil {
			return err
		}
	}
	for i, q := range t.offer.Queues {
		// Each queue's three descriptors are the adopted socket's and
		// table's from here, whatever happens.
		fd := t.fds[:3]
		t.fds = t.fds[3:]
		s, err := rings.Adopt(fd[0], fd[1], c.Sockets[i])
		if err != nil {
			unix.Close(fd[2])
			return fmt.Errorf("--takeover: queue %d: %w", q.Queue, err)
		}
		table, err := pipeline.AdoptConntrack(fd[2], ct.EntriesPerCore, ct.TCPTimeout, ct.UDPTimeout, c.Tables[i])
		if err != nil {
			s.Close()
			return fmt.Errorf("--takeover: queue %d: %w", q.Queue, err)
		}
		w := pipeline.NewWorker(table)
		w.Resume(c.Tables[i])
		n.queues = append(n.queues, newQueue(q.Queue, plan[i].CPU, s, w, state, idle))
	}
	stall("taking", t.log)
	// The old process stopped its workers for good only if it reads this;
	// if it is gone instead (killed mid-hand-over), the rings are ours.
	var yours tkStep
	err = sendMsg(t.c, tkStep{Step: "taking"}, nil)
	if err == nil {
		_, err = recvMsg(t.c, &yours)
	}
	if err != nil || yours.Step != "yours" {
		if running(t.oldPID) {
			return fmt.Errorf("--takeover: the running raild did not confirm (%v); it keeps forwarding", err)
		}
		t.log.Warn("takeover: the old process died during the hand-over; completing", "err", err)
	}
	sdNotify(fmt.Sprintf("MAINPID=%d\nREADY=1", os.Getpid()), t.log)
	sendMsg(t.c, tkStep{Step: "notified"}, nil)
	t.log.Info("takeover: the rings are ours", "queues", len(n.queues), "since_ready", time.Since(start).Round(time.Microsecond),
		"adopt", time.Since(stopped).Round(time.Microsecond))
	return nil
}

// sdNotify sends state to systemd's notification socket when raild runs
// under a unit that has one (Type=notify): READY=1 once forwarding, and
// after a takeover MAINPID= of the new process (NotifyAccess=all).
func sdNotify(state string, log *slog.Logger) {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return
	}
	if path[0] == '@' {
		path = "\x00" + path[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		log.Warn("systemd notify", "err", err)
		return
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		log.Warn("systemd notify", "err", err)
	}
}

// spawnTakeover starts the raild binary now installed where this one was
// started from (os.Executable: the path, even if the file was replaced)
// with this process's arguments and --takeover: an upgrade on SIGUSR2
// (the unit's ExecReload). The child reports on this process's output;
// a takeover it cannot make leaves this process forwarding.
func spawnTakeover(allowed []int, log *slog.Logger) {
	exe, err := os.Executable()
	if err != nil {
		log.Error("upgrade: cannot find the raild binary", "err", err)
		return
	}
	args := os.Args[1:]
	if !slices.Contains(args, "--takeover") && !slices.Contains(args, "-takeover") {
		args = append(slices.Clone(args), "--takeover")
	}
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr, cmd.Env = os.Stdout, os.Stderr, os.Environ()
	// Started from a thread on every CPU raild was started on, not on the
	// control plane's (confineControl): the new raild plans its workers on
	// those, as this one did.
	if err := pin.OnCPUs(allowed, cmd.Start); err != nil {
		log.Error("upgrade: starting the new raild", "binary", exe, "err", err)
		return
	}
	log.Info("upgrade: started the new raild to take over", "binary", exe, "pid", cmd.Process.Pid)
	go func() {
		err := cmd.Wait()
		log.Warn("upgrade: the new raild exited", "pid", cmd.Process.Pid, "err", err)
	}()
}

// running reports whether process pid runs (exists and is not a zombie:
// a process that exited but was not reaped yet forwards nothing).
func running(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) S ...: the state follows the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	st := b[i+2]
	return st != 'Z' && st != 'X'
}

// close hangs up; descriptors not adopted are closed.
func (t *takeoverClient) close() {
	if t == nil {
		return
	}
	closeFDs(t.fds)
	t.fds = nil
	t.c.Close()
}

// httpServing is the admin API and the metrics endpoint, which a takeover
// stops in the old process (so that the new one can listen on the same
// socket and address) and a rollback starts again.
type httpServing struct {
	api     *control.APIServer
	metrics *control.Metrics
	cfg     *control.Config
	log     *slog.Logger
	lis     *control.Listeners
	srv     *http.Server
}

func (h *httpServing) start() error {
	lis, err := h.api.Serve(h.cfg.API, h.cfg.HTTP)
	if err != nil {
		return err
	}
	h.log.Info("api", "socket", h.cfg.API.Socket, "address", h.cfg.API.Address)
	srv, err := h.metrics.Serve(h.cfg.MetricsAddress, h.cfg.HTTP)
	if err != nil {
		lis.Close()
		return err
	}
	h.lis, h.srv = lis, srv
	h.log.Info("metrics", "address", "http://"+h.cfg.MetricsAddress+"/metrics")
	return nil
}

func (h *httpServing) stop() {
	if h.lis != nil {
		h.lis.Close()
		h.lis = nil
	}
	if h.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		h.srv.Shutdown(ctx)
		h.srv = nil
	}
}
