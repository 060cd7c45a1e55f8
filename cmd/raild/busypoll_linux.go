package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/rail-lb/rail/control"
	"github.com/rail-lb/rail/rings"
)

// Preferred busy polling, the NAPI side (docs/DEPLOY.md, Busy polling).
// The sockets ask for it themselves (rings.Opts.BusyPoll); what the kernel
// also needs is the NAPI instances of the busy-polled queues deferring
// their own runs: napi_defer_hard_irqs and gro_flush_timeout. raild sets
// them while it runs, per NAPI instance over netdev netlink (NAPI_SET,
// Linux ≥ 6.13, CAP_NET_ADMIN only) or, where the kernel has no NAPI_SET,
// device-wide in sysfs (root's files), and puts the previous values back
// when it stops. What it changed is written to a state file first, so that
// the next start puts back what a raild killed by SIGKILL could not.

// The values tools/setup-nic.sh --busy-poll sets: two deferred rounds
// before the kernel takes the NAPI back, and a 200 µs watchdog that runs
// it if the worker stops calling (much longer than a worker iteration).
const (
	busyPollDeferHardIRQs = 2
	busyPollGROFlush      = 200000 // ns
)

// napiChange is one setting raild changed, with the value it had before.
type napiChange struct {
	// Via is "netlink" (one NAPI instance, NAPI) or "sysfs" (the
	// device's file Name).
	Via   string `json:"via"`
	NAPI  uint32 `json:"napi_id,omitempty"`
	Name  string `json:"name,omitempty"`
	Defer uint32 `json:"napi_defer_hard_irqs"`
	Flush uint64 `json:"gro_flush_timeout"`
}

// busyPollState is the state file: what to put back on Interface.
type busyPollState struct {
	PID       int          `json:"pid"`
	Interface string       `json:"interface"`
	Changes   []napiChange `json:"changes"`
}

// napiOps is how NAPI settings are read and written: the kernel's
// (netdev netlink, sysfs in the current network namespace), or a test's.
type napiOps struct {
	get      func(id uint32) (rings.NAPI, error)
	set      func(id uint32, deferHardIRQs uint32, groFlush uint64) error
	readSys  func(ifname, name string) (uint64, error)
	writeSys func(ifname, name string, v uint64) error
}

var kernelNAPI = napiOps{
	get: rings.GetNAPI,
	set: rings.SetNAPI,
	readSys: func(ifname, name string) (uint64, error) {
		b, err := os.ReadFile(filepath.Join("/sys/class/net", ifname, name))
		if err != nil {
			return 0, err
		}
		return strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	},
	writeSys: func(ifname, name string, v uint64) error {
		return os.WriteFile(filepath.Join("/sys/class/net", ifname, name), []byte(strconv.FormatUint(v, 10)), 0)
	},
}

// busyPollStateFile is next to the admin socket (/run/rail by default,
// the unit's RuntimeDirectory).
func busyPollStateFile(cfg *control.Config) string {
	dir := control.DefaultAPISocket
	if cfg.API.Socket != "" {
		dir = cfg.API.Socket
	}
	return filepath.Join(filepath.Dir(dir), "busypoll-"+cfg.Interface+".state")
}

// startBusyPoll is called once the queues are open: it puts back what a
// killed raild left changed, logs each queue's busy-poll state, and sets
// the NAPI instances of the queues that busy poll. The returned function
// restores them (call it when raild stops).
func startBusyPoll(cfg *control.Config, queues []queue, log *slog.Logger) (restore func()) {
	file := busyPollStateFile(cfg)
	recoverBusyPoll(kernelNAPI, file, log)
	if !cfg.BusyPoll {
		log.Info("busy poll off (busy_poll: false): need_wakeup kicks, the kernel runs the NAPI")
		return func() {}
	}
	var ids []uint32
	for _, q := range queues {
		st := q.sock.BusyPoll()
		if !st.Enabled {
			log.Warn("busy poll unavailable: the queue uses need_wakeup kicks", "queue", q.queue, "reason", st.Err)
			continue
		}
		log.Info("busy poll", "queue", q.queue, "napi_id", st.NAPIID, "budget", st.Budget, "usecs", st.Usecs, "tx_budget", st.TxBudget)
		if st.TxBudgetErr != nil {
			log.Info("busy poll: copy-mode tx budget left at the kernel's", "queue", q.queue, "reason", st.TxBudgetErr)
		}
		if !slices.Contains(ids, st.NAPIID) {
			ids = append(ids, st.NAPIID)
		}
	}
	if len(ids) == 0 {
		return func() {}
	}
	return applyBusyPoll(kernelNAPI, file, cfg.Interface, ids, log)
}

// applyBusyPoll sets napi_defer_hard_irqs and gro_flush_timeout on the
// NAPI instances ids of ifname, netlink first, sysfs where the kernel has
// no NAPI_SET, recording each change in file before making it. It returns
// the restore function.
func applyBusyPoll(ops napiOps, file, ifname string, ids []uint32, log *slog.Logger) (restore func()) {
	st := &busyPollState{PID: os.Getpid(), Interface: ifname}
	save := func() error { return writeBusyPollState(file, st) }
	restore = func() {
		if len(st.Changes) == 0 {
			return
		}
		if undoChanges(ops, st, log) {
			os.Remove(file)
		} else if err := save(); err != nil {
			log.Error("busy poll: state file", "file", file, "err", err)
		}
	}
	viaSysfs := false
	for _, id := range ids {
		old, err := ops.get(id)
		if err == nil {
			st.Changes = append(st.Changes, napiChange{Via: "netlink", NAPI: id, Defer: old.DeferHardIRQs, Flush: old.GROFlushTimeout})
			if err = save(); err != nil {
				log.Error("busy poll: cannot record the NAPI settings to restore: leaving them alone", "file", file, "err", err)
				st.Changes = st.Changes[:len(st.Changes)-1]
				return restore
			}
			err = ops.set(id, busyPollDeferHardIRQs, busyPollGROFlush)
		}
		if err == nil {
			log.Info("busy poll: NAPI set (netlink NAPI_SET)", "interface", ifname, "napi_id", id,
				"napi_defer_hard_irqs", busyPollDeferHardIRQs, "gro_flush_timeout", busyPollGROFlush,
				"was_defer", old.DeferHardIRQs, "was_gro_flush_timeout", old.GROFlushTimeout)
			continue
		}
		if len(st.Changes) > 0 && st.Changes[len(st.Changes)-1].NAPI == id {
			st.Changes = st.Changes[:len(st.Changes)-1] // not changed after all
			save()
		}
		if !errors.Is(err, rings.ErrNoNetdevFamily) {
			log.Warn("busy poll: NAPI_SET refused; the kernel keeps running this NAPI itself as well", "napi_id", id, "err", err)
			continue
		}
		viaSysfs = true
	}
	if viaSysfs {
		setSysfs(ops, st, save, ifname, log)
	}
	return restore
}

// setSysfs is the fallback for kernels without NAPI_SET: the device-wide
// files, which apply to every NAPI instance of the device (root only).
func setSysfs(ops napiOps, st *busyPollState, save func() error, ifname string, log *slog.Logger) {
	for _, f := range []struct {
		name string
		v    uint64
	}{{"napi_defer_hard_irqs", busyPollDeferHardIRQs}, {"gro_flush_timeout", busyPollGROFlush}} {
		old, err := ops.readSys(ifname, f.name)
		if err != nil {
			log.Warn("busy poll: no NAPI_SET and no sysfs file: the kernel keeps running the NAPI itself as well", "file", f.name, "err", err)
			return
		}
		c := napiChange{Via: "sysfs", Name: f.name}
		if f.name == "napi_defer_hard_irqs" {
			c.Defer = uint32(old)
		} else {
			c.Flush = old
		}
		st.Changes = append(st.Changes, c)
		if err := save(); err != nil {
			st.Changes = st.Changes[:len(st.Changes)-1]
			log.Error("busy poll: cannot record the setting to restore: leaving it alone", "err", err)
			return
		}
		if err := ops.writeSys(ifname, f.name, f.v); err != nil {
			st.Changes = st.Changes[:len(st.Changes)-1]
			save()
			log.Warn("busy poll: sysfs write refused (needs root: the files are root's 0644, and the unit's ProtectKernelTunables=yes makes /sys read-only)", "file", f.name, "err", err)
			return
		}
		log.Info("busy poll: NAPI set (sysfs)", "interface", ifname, f.name, f.v, "was", old)
	}
}

// undoChanges puts back every change of st, newest first, and keeps in st
// only those it could not. It reports whether all went back. A NAPI
// instance that no longer exists has nothing to put back (a veth's goes
// away with its XDP program).
func undoChanges(ops napiOps, st *busyPollState, log *slog.Logger) bool {
	var left []napiChange
	for i := len(st.Changes) - 1; i >= 0; i-- {
		c := st.Changes[i]
		var err error
		switch c.Via {
		case "netlink":
			if _, gerr := ops.get(c.NAPI); gerr != nil {
				log.Info("busy poll: NAPI gone, nothing to restore", "napi_id", c.NAPI)
				continue
			}
			err = ops.set(c.NAPI, c.Defer, c.Flush)
		case "sysfs":
			v := c.Flush
			if c.Name == "napi_defer_hard_irqs" {
				v = uint64(c.Defer)
			}
			err = ops.writeSys(st.Interface, c.Name, v)
		default:
			err = fmt.Errorf("unknown change %q", c.Via)
		}
		if err != nil {
			log.Error("busy poll: restore", "interface", st.Interface, "change", c, "err", err)
			left = append([]napiChange{c}, left...)
			continue
		}
		log.Info("busy poll: NAPI restored", "interface", st.Interface, "via", c.Via, "napi_id", c.NAPI, "name", c.Name,
			"napi_defer_hard_irqs", c.Defer, "gro_flush_timeout", c.Flush)
	}
	st.Changes = left
	return len(left) == 0
}

// recoverBusyPoll puts back what the state file records, left by a raild
// that could not restore (SIGKILL, a crash), unless that raild still runs.
func recoverBusyPoll(ops napiOps, file string, log *slog.Logger) {
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	var st busyPollState
	if err == nil {
		err = json.Unmarshal(b, &st)
	}
	if err != nil {
		log.Error("busy poll: unreadable state file: remove it after checking napi_defer_hard_irqs and gro_flush_timeout", "file", file, "err", err)
		return
	}
	if st.PID != os.Getpid() && processAlive(st.PID) {
		log.Warn("busy poll: the raild that wrote the state file still runs: leaving its settings alone", "file", file, "pid", st.PID)
		return
	}
	log.Warn("busy poll: a previous raild did not restore its NAPI settings: restoring them", "file", file, "pid", st.PID, "changes", len(st.Changes))
	if undoChanges(ops, &st, log) {
		os.Remove(file)
	} else if err := writeBusyPollState(file, &st); err != nil {
		log.Error("busy poll: state file", "file", file, "err", err)
	}
}

// processAlive: a process pid exists and is a raild.
func processAlive(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	return err == nil && strings.TrimSpace(string(b)) == "raild"
}

// writeBusyPollState replaces file atomically (mode 0600).
func writeBusyPollState(file string, st *busyPollState) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(file), 0o750); err != nil {
		return err
	}
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, file)
}
