package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rail-lb/rail/bench"
	"github.com/rail-lb/rail/internal/privtest"
)

// TestMain removes the raild that raildBinary built (a temporary directory
// per test binary) once the tests are done.
func TestMain(m *testing.M) {
	code := m.Run()
	if buildOnce.path != "" {
		os.RemoveAll(filepath.Dir(buildOnce.path))
	}
	os.Exit(code)
}

// The unit the privilege tests hold raild to.
const unitFile = "../../tools/raild.service"

// unitService is what the privilege tests read from a unit's [Service]
// section, with systemd's rules for list settings: assignments add up, an
// empty one resets the list.
type unitService struct {
	ambient, bounding []string // CAP_… names, sorted
	memlock           string   // LimitMEMLOCK=
}

func readUnit(t *testing.T, path string) unitService {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		u       unitService
		section string
		line    string
	)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// A line ending in a backslash continues on the next one.
		if s := sc.Text(); strings.HasSuffix(s, `\`) {
			line += strings.TrimSuffix(s, `\`) + " "
			continue
		} else {
			line += s
		}
		l := strings.TrimSpace(line)
		line = ""
		if l == "" || l[0] == '#' || l[0] == ';' {
			continue
		}
		if l[0] == '[' {
			section = l
			continue
		}
		if section != "[Service]" {
			continue
		}
		key, value, ok := strings.Cut(l, "=")
		if !ok {
			t.Fatalf("%s: not key=value: %q", path, l)
		}
		key, value = strings.TrimSpace(key), strings.TrimSpace(value)
		switch key {
		case "AmbientCapabilities", "CapabilityBoundingSet":
			list := &u.ambient
			if key == "CapabilityBoundingSet" {
				list = &u.bounding
			}
			if value == "" {
				*list = nil
				continue
			}
			if strings.HasPrefix(value, "~") {
				t.Fatalf("%s: %s=%s: an inverted list is not what this test understands; name the capabilities", path, key, value)
			}
			for _, c := range strings.Fields(value) {
				c = strings.ToUpper(c)
				if !strings.HasPrefix(c, "CAP_") {
					t.Fatalf("%s: %s: %q is not a capability name", path, key, c)
				}
				if !slices.Contains(*list, c) {
					*list = append(*list, c)
				}
			}
		case "LimitMEMLOCK":
			u.memlock = value
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	slices.Sort(u.ambient)
	slices.Sort(u.bounding)
	return u
}

// TestPrivilegeUnitParse: readUnit follows systemd's list rules.
func TestPrivilegeUnitParse(t *testing.T) {
	p := filepath.Join(t.TempDir(), "x.service")
	err := os.WriteFile(p, []byte("[Unit]\nAmbientCapabilities=CAP_SYS_ADMIN\n[Service]\n# AmbientCapabilities=CAP_SYS_ADMIN\n"+
		"AmbientCapabilities=CAP_SYS_ADMIN\nAmbientCapabilities=\nAmbientCapabilities=cap_net_raw \\\n  CAP_BPF\n"+
		"AmbientCapabilities=CAP_NET_ADMIN CAP_BPF\nCapabilityBoundingSet=CAP_BPF\nLimitMEMLOCK=infinity\n[Install]\nAmbientCapabilities=CAP_KILL\n"), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	u := readUnit(t, p)
	if want := []string{"CAP_BPF", "CAP_NET_ADMIN", "CAP_NET_RAW"}; !slices.Equal(u.ambient, want) {
		t.Errorf("ambient %v, want %v", u.ambient, want)
	}
	if !slices.Equal(u.bounding, []string{"CAP_BPF"}) || u.memlock != "infinity" {
		t.Errorf("bounding %v memlock %q", u.bounding, u.memlock)
	}
}

// asUnit is how the privilege tests start a command the way systemd would
// under tools/raild.service: as user nobody (DynamicUser=yes), with no
// new privileges and exactly the unit's ambient capabilities, in network
// namespace ns.
type asUnit struct {
	caps   []string // setpriv's names: net_admin, …
	prefix []string // what raises RLIMIT_MEMLOCK first, if root may
	uid    string
	gid    string
	binary string // a copy of raild that nobody can run
	dir    string // 0755, holds the configuration
	rundir string // nobody's, like RuntimeDirectory=
}

// umem says the command opens AF_XDP sockets: their UMEM is what
// LimitMEMLOCK=infinity is for.
func newAsUnit(t *testing.T, umem bool) *asUnit {
	t.Helper()
	u := readUnit(t, unitFile)
	if len(u.ambient) == 0 {
		t.Fatalf("%s: no AmbientCapabilities=", unitFile)
	}
	for _, c := range u.ambient {
		if !slices.Contains(u.bounding, c) {
			t.Errorf("%s: %s is in AmbientCapabilities= but not in CapabilityBoundingSet=: systemd would drop it", unitFile, c)
		}
	}
	if u.memlock != "infinity" {
		t.Errorf("%s: LimitMEMLOCK=%q; the UMEM needs infinity (or CAP_IPC_LOCK)", unitFile, u.memlock)
	}
	a := &asUnit{}
	for _, c := range u.ambient {
		a.caps = append(a.caps, strings.ToLower(strings.TrimPrefix(c, "CAP_")))
	}
	// LimitMEMLOCK=infinity: root raises the limit, then setpriv drops
	// root. Without CAP_SYS_RESOURCE root cannot raise a hard limit; then
	// CAP_IPC_LOCK, which exempts the UMEM from RLIMIT_MEMLOCK, stands in
	// for it. It is no BPF capability: it changes nothing the verifier
	// allows.
	if umem {
		if err := exec.Command("prlimit", "--memlock=unlimited:unlimited", "true").Run(); err == nil {
			a.prefix = []string{"prlimit", "--memlock=unlimited:unlimited", "--"}
		} else if !slices.Contains(a.caps, "ipc_lock") {
			t.Logf("cannot raise RLIMIT_MEMLOCK here (%v; no CAP_SYS_RESOURCE?): CAP_IPC_LOCK stands in for LimitMEMLOCK=infinity", err)
			a.caps = append(a.caps, "ipc_lock")
		}
	}
	nobody, err := user.Lookup("nobody")
	if err != nil {
		t.Fatal(err)
	}
	a.uid, a.gid = nobody.Uid, nobody.Gid
	uid, _ := strconv.Atoi(a.uid)
	gid, _ := strconv.Atoi(a.gid)

	// raildBinary's directory is 0700: nobody gets a copy of its own.
	dir, err := os.MkdirTemp("", "rp-priv-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	a.dir = dir
	a.binary = filepath.Join(dir, "raild")
	copyFile(t, raildBinary(t), a.binary, 0o755)
	a.rundir = filepath.Join(dir, "run")
	if err := os.Mkdir(a.rundir, 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(a.rundir, uid, gid); err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: AmbientCapabilities=%s; running as nobody (uid %s) with %s", unitFile, strings.Join(u.ambient, " "), a.uid, strings.Join(a.caps, ","))
	return a
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// command returns raild with args, in ns, as the unit would run it.
func (a *asUnit) command(ns string, args ...string) *exec.Cmd {
	set := "-all"
	for _, c := range a.caps {
		set += ",+" + c
	}
	argv := []string{"netns", "exec", ns}
	argv = append(argv, a.prefix...)
	argv = append(argv, "setpriv", "--reuid="+a.uid, "--regid="+a.gid, "--clear-groups", "--no-new-privs",
		"--inh-caps="+set, "--ambient-caps="+set, "--bounding-set="+set, "--", a.binary)
	cmd := exec.Command("ip", append(argv, args...)...)
	cmd.Dir = a.dir
	return cmd
}

// started is a command running in the background, its output logged.
type started struct {
	cmd  *exec.Cmd
	log  *syncBuffer
	done chan struct{}
	err  error
}

func (a *asUnit) start(t *testing.T, ns string, args ...string) *started {
	t.Helper()
	s := &started{cmd: a.command(ns, args...), log: &syncBuffer{}, done: make(chan struct{})}
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		select {
		case <-s.done:
		default:
			s.cmd.Process.Kill()
			<-s.done
		}
	})
	return s
}

// waitLog waits until the log holds msg; it fails if the command exits first.
func (s *started) waitLog(t *testing.T, msg string, within time.Duration) {
	t.Helper()
	deadline := time.After(within)
	for !strings.Contains(s.log.String(), msg) {
		select {
		case <-s.done:
			t.Fatalf("%s exited (%v) before logging %q:\n%s", strings.Join(s.cmd.Args, " "), s.err, msg, s.log)
		case <-deadline:
			t.Fatalf("no %q within %v:\n%s", msg, within, s.log)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// stop sends SIGTERM and wants exit status 0.
func (s *started) stop(t *testing.T) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
		t.Fatalf("did not stop within 10 s of SIGTERM:\n%s", s.log)
	}
	if s.err != nil {
		t.Fatalf("exit after SIGTERM: %v (want status 0):\n%s", s.err, s.log)
	}
}

// netnsUp adds network namespaces (removed when the test ends, even on failure).
func netnsUp(t *testing.T, names ...string) {
	t.Helper()
	for _, ns := range names {
		exec.Command("ip", "netns", "del", ns).Run() // left over from a killed run
		sh(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		sh(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
}

func xdpOn(t *testing.T, ns, dev string) bool {
	out := sh(t, "ip", "-n", ns, "-d", "link", "show", "dev", dev)
	return strings.Contains(out, "prog/xdp") || strings.Contains(out, "xdpgeneric") || strings.Contains(out, " xdp ")
}

// packetSocket opens an AF_PACKET socket on dev in ns (closed at the end).
func packetSocket(t *testing.T, ns, dev string) int {
	t.Helper()
	fd := -1
	var err error
	inNetns(t, ns, func() {
		var ifi *net.Interface
		if ifi, err = net.InterfaceByName(dev); err != nil {
			return
		}
		proto := int(htons(unix.ETH_P_ALL))
		if fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto); err != nil {
			return
		}
		err = unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: ifi.Index})
	})
	if err != nil {
		t.Fatalf("packet socket on %s in %s: %v", dev, ns, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	tv := unix.NsecToTimeval((100 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		t.Fatal(err)
	}
	return fd
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func sendFrames(t *testing.T, fd int, frames [][]byte) {
	t.Helper()
	for _, f := range frames {
		if _, err := unix.Write(fd, f); err != nil {
			t.Fatalf("send: %v", err)
		}
		time.Sleep(time.Millisecond) // the copy-mode veth path: no overrun
	}
}

// forwarded reads fd until it has been quiet for a second and counts the
// GRE frames addressed to a backend.
func forwarded(fd int) int {
	n := 0
	buf := make([]byte, 4096)
	quiet := time.Now().Add(time.Second)
	for time.Now().Before(quiet) {
		m, err := unix.Read(fd, buf)
		if err != nil {
			if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
				continue
			}
			break
		}
		f := buf[:m]
		if dst := outerDst(f); dst.IsValid() && f[23] == 47 && slices.Contains(labBackends, dst.String()) {
			n++
			quiet = time.Now().Add(time.Second)
		}
	}
	return n
}

// TestPrivilegeRunAsUnit runs `raild check` and `raild run` the way
// tools/raild.service does — user nobody, the unit's capabilities and no
// others (but CAP_IPC_LOCK for LimitMEMLOCK= where root cannot raise the
// limit, see newAsUnit) — in namespaces of its own (rp-gen, rp-lb): raild
// must attach, forward GRE and stop cleanly on SIGTERM. A capability the
// unit lacks fails it: with a steering program that subtracts packet
// pointers, raild dies with "load steer program: … permission denied …
// pointer -= pointer prohibited" (the verifier wants CAP_PERFMON for it).
func TestPrivilegeRunAsUnit(t *testing.T) {
	privtest.Require(t, "ip", "setpriv", "prlimit")
	a := newAsUnit(t, true)
	const (
		gen, lb     = "rp-gen", "rp-lb"
		genDev, dev = "rpgen0", "rplb0"
	)
	netnsUp(t, gen, lb)
	sh(t, "ip", "link", "add", genDev, "netns", gen, "type", "veth", "peer", "name", dev, "netns", lb)
	sh(t, "ip", "-n", gen, "link", "set", genDev, "address", net6(genMAC), "up")
	sh(t, "ip", "-n", lb, "link", "set", dev, "address", net6(lbMAC), "up")
	sh(t, "ip", "-n", gen, "addr", "add", genAddr.String()+"/24", "dev", genDev)
	sh(t, "ip", "-n", lb, "addr", "add", lbAddr.String()+"/24", "dev", dev)

	var b strings.Builder
	fmt.Fprintf(&b, "interface: %s\nlocal_address: %s\nmetrics_address: 127.0.0.1:9790\nconntrack:\n  entries_per_core: 65536\n", dev, lbAddr)
	fmt.Fprintf(&b, "services:\n  - name: web\n    vip: %s\n    port: 80\n    protocol: tcp\n    table_size: 65537\n    backends:\n", labVIP)
	for _, be := range labBackends {
		fmt.Fprintf(&b, "      - address: %s\n", be)
	}
	fmt.Fprintf(&b, "api:\n  socket: %s\n", filepath.Join(a.rundir, "raild.sock"))
	cfg := filepath.Join(a.dir, "rail.yaml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	// ExecStartPre=raild check, as the same user.
	if out, err := a.command(lb, "check", "--config", cfg).CombinedOutput(); err != nil {
		t.Fatalf("raild check as nobody: %v\n%s", err, out)
	}

	d := a.start(t, lb, "run", "--config", cfg)
	d.waitLog(t, "msg=metrics", 20*time.Second)
	if !xdpOn(t, lb, dev) {
		t.Fatalf("no XDP program on %s while raild runs:\n%s", dev, d.log)
	}
	if fi, err := os.Stat(filepath.Join(a.rundir, "raild.sock")); err != nil || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("no admin socket in the runtime directory: %v", err)
	} else if st := fi.Sys().(*syscall.Stat_t); strconv.Itoa(int(st.Uid)) != a.uid {
		t.Errorf("admin socket owned by uid %d, want nobody (%s)", st.Uid, a.uid)
	}

	fd := packetSocket(t, gen, genDev)
	sent := greFrames(t, 20, 2)
	sendFrames(t, fd, sent)
	n := forwarded(fd)
	t.Logf("%d of %d GRE frames came back re-targeted at a backend", n, len(sent))
	if n == 0 {
		t.Errorf("raild as nobody forwarded none of %d GRE frames:\n%s", len(sent), d.log)
	}

	d.stop(t)
	if xdpOn(t, lb, dev) {
		t.Errorf("XDP program still on %s after SIGTERM", dev)
	}
	if !strings.Contains(d.log.String(), "detached") {
		t.Errorf("raild did not log the detach:\n%s", d.log)
	}
}

// TestPrivilegeDecapAsUnit runs `raild decap` as user nobody with the
// unit's capabilities (a backend runs it under a unit of its own, with the
// same needs: CAP_BPF and CAP_NET_ADMIN) in namespace rp-dc, in both tc
// modes: it attaches, decapsulates a GRE frame and detaches on SIGTERM.
func TestPrivilegeDecapAsUnit(t *testing.T) {
	privtest.Require(t, "ip", "setpriv", "tc")
	a := newAsUnit(t, false)
	const ns, dev, peer = "rp-dc", "rpdc0", "rpdc1"
	backendMAC := [6]byte{2, 0, 0, 0, 0x11, 1}
	backend := netip.MustParseAddr(labBackends[0])
	netnsUp(t, ns)
	sh(t, "ip", "-n", ns, "link", "add", dev, "type", "veth", "peer", "name", peer)
	sh(t, "ip", "-n", ns, "link", "set", dev, "address", net6(backendMAC), "up")
	sh(t, "ip", "-n", ns, "link", "set", peer, "address", net6(lbMAC), "up")
	sh(t, "ip", "-n", ns, "addr", "add", backend.String()+"/24", "dev", dev)
	frame, err := bench.AppendGRE(nil, bench.GRESpec{
		RouterMAC: lbMAC, NodeMAC: backendMAC, Router: lbAddr, Local: backend,
		Flow: bench.FlowN(1, labVIP, 80), Payload: 18,
	})
	if err != nil {
		t.Fatal(err)
	}
	fd := packetSocket(t, ns, peer)

	for _, mode := range []string{"tc", "tcx"} {
		t.Run(mode, func(t *testing.T) {
			d := a.start(t, ns, "decap", "--interface", dev, "--mode", mode)
			d.waitLog(t, "msg=attached", 10*time.Second)
			if !strings.Contains(d.log.String(), "mode="+mode) {
				t.Errorf("not attached with mode %s:\n%s", mode, d.log)
			}
			if mode == "tc" {
				if out := sh(t, "ip", "netns", "exec", ns, "tc", "filter", "show", "dev", dev, "ingress"); !strings.Contains(out, "rail_decap") {
					t.Errorf("no rail_decap filter while raild decap runs:\n%s", out)
				}
			}
			sendFrames(t, fd, [][]byte{frame})
			time.Sleep(100 * time.Millisecond)
			d.stop(t)
			if !strings.Contains(d.log.String(), "msg=detached") || !strings.Contains(d.log.String(), "decapsulated=1 ") {
				t.Errorf("want one frame decapsulated, then detached:\n%s", d.log)
			}
			if out := sh(t, "ip", "netns", "exec", ns, "tc", "filter", "show", "dev", dev, "ingress"); strings.Contains(out, "rail_decap") {
				t.Errorf("rail_decap filter left after SIGTERM:\n%s", out)
			}
		})
	}
}
