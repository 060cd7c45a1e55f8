package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/rail-lb/rail/internal/privtest"
	"github.com/rail-lb/rail/rings"
)

// fakeNAPI is a kernel with NAPI instances and the device's sysfs files.
type fakeNAPI struct {
	napis   map[uint32]rings.NAPI
	sys     map[string]uint64
	noNAPIs bool // no NAPI_SET: ErrNoNetdevFamily
}

func (f *fakeNAPI) ops() napiOps {
	return napiOps{
		get: func(id uint32) (rings.NAPI, error) {
			if f.noNAPIs {
				return rings.NAPI{}, rings.ErrNoNetdevFamily
			}
			n, ok := f.napis[id]
			if !ok {
				return n, unix.ENOENT
			}
			return n, nil
		},
		set: func(id uint32, d uint32, g uint64) error {
			n, ok := f.napis[id]
			if !ok {
				return unix.ENOENT
			}
			n.DeferHardIRQs, n.GROFlushTimeout = d, g
			f.napis[id] = n
			return nil
		},
		readSys: func(_, name string) (uint64, error) {
			v, ok := f.sys[name]
			if !ok {
				return 0, os.ErrNotExist
			}
			return v, nil
		},
		writeSys: func(_, name string, v uint64) error { f.sys[name] = v; return nil },
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func readState(t *testing.T, file string) busyPollState {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var st busyPollState
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestBusyPollApplyRestore(t *testing.T) {
	f := &fakeNAPI{napis: map[uint32]rings.NAPI{8193: {ID: 8193, DeferHardIRQs: 0, GROFlushTimeout: 0}, 8194: {ID: 8194, DeferHardIRQs: 5, GROFlushTimeout: 1000}}}
	file := filepath.Join(t.TempDir(), "busypoll-eth1.state")
	restore := applyBusyPoll(f.ops(), file, "eth1", []uint32{8193, 8194}, quiet())
	for id, n := range f.napis {
		if n.DeferHardIRQs != busyPollDeferHardIRQs || n.GROFlushTimeout != busyPollGROFlush {
			t.Errorf("NAPI %d while running: %+v", id, n)
		}
	}
	if st := readState(t, file); len(st.Changes) != 2 || st.PID != os.Getpid() || st.Changes[1].Defer != 5 || st.Changes[1].Flush != 1000 {
		t.Errorf("state file: %+v", st)
	}
	restore()
	if f.napis[8193].DeferHardIRQs != 0 || f.napis[8194].DeferHardIRQs != 5 || f.napis[8194].GROFlushTimeout != 1000 {
		t.Errorf("after restore: %+v", f.napis)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file left after a full restore: %v", err)
	}
}

// TestBusyPollRecoverAfterKill: a raild killed before it restored leaves
// the state file; the next start puts the values back.
func TestBusyPollRecoverAfterKill(t *testing.T) {
	f := &fakeNAPI{napis: map[uint32]rings.NAPI{8193: {ID: 8193, DeferHardIRQs: 1, GROFlushTimeout: 50000}}}
	file := filepath.Join(t.TempDir(), "busypoll-eth1.state")
	_ = applyBusyPoll(f.ops(), file, "eth1", []uint32{8193}, quiet()) // killed: never restored
	st := readState(t, file)
	st.PID = 1 << 30 // a raild that is gone
	if err := writeBusyPollState(file, &st); err != nil {
		t.Fatal(err)
	}
	recoverBusyPoll(f.ops(), file, quiet())
	if n := f.napis[8193]; n.DeferHardIRQs != 1 || n.GROFlushTimeout != 50000 {
		t.Errorf("after recovery: %+v", n)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file left after recovery: %v", err)
	}
	// A NAPI gone meanwhile (a veth's goes with its XDP program) has
	// nothing to restore and does not keep the file.
	_ = applyBusyPoll(f.ops(), file, "eth1", []uint32{8193}, quiet())
	delete(f.napis, 8193)
	st = readState(t, file)
	st.PID = 1 << 30
	writeBusyPollState(file, &st)
	recoverBusyPoll(f.ops(), file, quiet())
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file left for a NAPI that is gone: %v", err)
	}
}

// TestBusyPollSysfsFallback: without NAPI_SET the device's sysfs files are
// set, recorded and restored.
func TestBusyPollSysfsFallback(t *testing.T) {
	f := &fakeNAPI{noNAPIs: true, sys: map[string]uint64{"napi_defer_hard_irqs": 0, "gro_flush_timeout": 20000}}
	file := filepath.Join(t.TempDir(), "busypoll-eth1.state")
	restore := applyBusyPoll(f.ops(), file, "eth1", []uint32{8193}, quiet())
	if f.sys["napi_defer_hard_irqs"] != busyPollDeferHardIRQs || f.sys["gro_flush_timeout"] != busyPollGROFlush {
		t.Errorf("sysfs while running: %v", f.sys)
	}
	if st := readState(t, file); len(st.Changes) != 2 || st.Changes[0].Via != "sysfs" {
		t.Errorf("state file: %+v", st)
	}
	restore()
	if f.sys["napi_defer_hard_irqs"] != 0 || f.sys["gro_flush_timeout"] != 20000 {
		t.Errorf("sysfs after restore: %v", f.sys)
	}
}

// TestBusyPollLabNAPI runs apply, a SIGKILL's missing restore and the next
// start's recovery against a real NAPI instance (a veth's, which exists
// while an XDP program is attached) over netdev netlink.
func TestBusyPollLabNAPI(t *testing.T) {
	privtest.Require(t, "ip")
	ns := fmt.Sprintf("rbp%d", os.Getpid())
	for _, c := range [][]string{
		{"ip", "netns", "add", ns},
		{"ip", "-n", ns, "link", "add", "bpa", "type", "veth", "peer", "name", "bpb"},
		{"ip", "-n", ns, "link", "set", "bpa", "up"},
		{"ip", "-n", ns, "link", "set", "bpb", "up"},
	} {
		if out, err := exec.Command(c[0], c[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v %s", c, err, out)
		}
	}
	defer exec.Command("ip", "netns", "del", ns).Run()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := os.Open("/proc/thread-self/ns/net")
	if err != nil {
		t.Fatal(err)
	}
	defer orig.Close()
	target, err := os.Open("/var/run/netns/" + ns)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		t.Fatal(err)
	}
	defer unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET)

	ifi, err := net.InterfaceByName("bpa")
	if err != nil {
		t.Fatal(err)
	}
	steer, err := rings.LoadSteer()
	if err != nil {
		t.Fatal(err)
	}
	defer steer.Close()
	if _, err := steer.Attach(ifi.Index, rings.XDPNative); err != nil {
		t.Fatal(err)
	}
	napis, err := rings.NAPIs(ifi.Index)
	if err != nil || len(napis) == 0 {
		t.Fatalf("NAPIs of bpa: %v %v", napis, err)
	}
	before := napis[0]
	file := filepath.Join(t.TempDir(), "busypoll-bpa.state")
	_ = applyBusyPoll(kernelNAPI, file, "bpa", []uint32{before.ID}, quiet())
	if n, err := rings.GetNAPI(before.ID); err != nil || n.DeferHardIRQs != busyPollDeferHardIRQs || n.GROFlushTimeout != busyPollGROFlush {
		t.Fatalf("NAPI %d while raild runs: %+v %v", before.ID, n, err)
	}
	// SIGKILL: no restore. The next start finds the file and restores.
	st := readState(t, file)
	st.PID = 1 << 30
	writeBusyPollState(file, &st)
	time.Sleep(10 * time.Millisecond)
	recoverBusyPoll(kernelNAPI, file, quiet())
	if n, err := rings.GetNAPI(before.ID); err != nil || n.DeferHardIRQs != before.DeferHardIRQs || n.GROFlushTimeout != before.GROFlushTimeout {
		t.Fatalf("NAPI %d after recovery: %+v %v, want %+v", before.ID, n, err, before)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file left: %v", err)
	}
}

// TestBusyPollMatchesSetupNIC: tools/setup-nic.sh --busy-poll sets what
// raild sets.
func TestBusyPollMatchesSetupNIC(t *testing.T) {
	b, err := os.ReadFile("../../tools/setup-nic.sh")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		re   string
		want uint64
	}{
		{`napi_defer=\$\{napi_defer:-([0-9]+)\}`, busyPollDeferHardIRQs},
		{`gro_flush=\$\{gro_flush:-([0-9]+)\}`, busyPollGROFlush},
	} {
		m := regexp.MustCompile(c.re).FindSubmatch(b)
		if m == nil {
			t.Fatalf("tools/setup-nic.sh: no %s", c.re)
		}
		if v, _ := strconv.ParseUint(string(m[1]), 10, 64); v != c.want {
			t.Errorf("tools/setup-nic.sh --busy-poll sets %s, raild %d", m[0], c.want)
		}
	}
}
