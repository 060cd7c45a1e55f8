package bench

import (
	"fmt"
	"sort"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
)

// SyscallCounter counts the system calls of one process (every thread),
// by number: a BPF program on the raw tracepoint sys_enter adds one to a
// per-CPU counter when the calling thread belongs to the process. No perf
// events: the program is attached with BPF_RAW_TRACEPOINT_OPEN. Every
// system call of the machine runs the program (a compare of the tgid for
// the others) while the counter exists.
type SyscallCounter struct {
	counts *ebpf.Map
	prog   *ebpf.Program
	link   link.Link
	ncpu   int
}

// maxSyscall bounds the syscall numbers counted one by one (x86-64 has
// fewer than 512; higher ones share slots).
const maxSyscall = 512

// CountSyscalls starts counting the system calls of process pid.
func CountSyscalls(pid int) (*SyscallCounter, error) {
	ncpu, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, err
	}
	m, err := ebpf.NewMap(&ebpf.MapSpec{Name: "rb_syscalls", Type: ebpf.PerCPUArray, KeySize: 4, ValueSize: 8, MaxEntries: maxSyscall})
	if err != nil {
		return nil, fmt.Errorf("bench: syscall counter map: %w", err)
	}
	insns := asm.Instructions{
		asm.Mov.Reg(asm.R6, asm.R1), // ctx: u64 args[]: (struct pt_regs *, long id)
		asm.FnGetCurrentPidTgid.Call(),
		asm.RSh.Imm(asm.R0, 32),
		asm.JNE.Imm(asm.R0, int32(pid), "out"),
		asm.LoadMem(asm.R1, asm.R6, 8, asm.DWord),
		asm.And.Imm(asm.R1, maxSyscall-1),
		asm.StoreMem(asm.RFP, -4, asm.R1, asm.Word),
		asm.Mov.Reg(asm.R2, asm.RFP),
		asm.Add.Imm(asm.R2, -4),
		asm.LoadMapPtr(asm.R1, m.FD()),
		asm.FnMapLookupElem.Call(),
		asm.JEq.Imm(asm.R0, 0, "out"),
		asm.LoadMem(asm.R1, asm.R0, 0, asm.DWord),
		asm.Add.Imm(asm.R1, 1),
		asm.StoreMem(asm.R0, 0, asm.R1, asm.DWord),
		asm.Mov.Imm(asm.R0, 0).WithSymbol("out"),
		asm.Return(),
	}
	prog, err := ebpf.NewProgram(&ebpf.ProgramSpec{Name: "rb_syscalls", Type: ebpf.RawTracepoint, Instructions: insns, License: "GPL"})
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("bench: syscall counter program: %w", err)
	}
	l, err := link.AttachRawTracepoint(link.RawTracepointOptions{Name: "sys_enter", Program: prog})
	if err != nil {
		prog.Close()
		m.Close()
		return nil, fmt.Errorf("bench: attach the syscall counter to sys_enter: %w", err)
	}
	return &SyscallCounter{counts: m, prog: prog, link: l, ncpu: ncpu}, nil
}

// Syscalls is a count of system calls by number.
type Syscalls map[int]uint64

// Read returns the counts so far.
func (c *SyscallCounter) Read() (Syscalls, error) {
	out := Syscalls{}
	vals := make([]uint64, c.ncpu)
	for nr := uint32(0); nr < maxSyscall; nr++ {
		if err := c.counts.Lookup(nr, &vals); err != nil {
			return nil, fmt.Errorf("bench: syscall counter: %w", err)
		}
		var n uint64
		for _, v := range vals {
			n += v
		}
		if n > 0 {
			out[int(nr)] = n
		}
	}
	return out, nil
}

// Close detaches the counter.
func (c *SyscallCounter) Close() {
	if c == nil {
		return
	}
	c.link.Close()
	c.prog.Close()
	c.counts.Close()
}

// Sub is s − o by number.
func (s Syscalls) Sub(o Syscalls) Syscalls {
	out := Syscalls{}
	for nr, n := range s {
		if n > o[nr] {
			out[nr] = n - o[nr]
		}
	}
	return out
}

// Add adds o to s.
func (s Syscalls) Add(o Syscalls) {
	for nr, n := range o {
		s[nr] += n
	}
}

// Total is the number of calls.
func (s Syscalls) Total() uint64 {
	var t uint64
	for _, n := range s {
		t += n
	}
	return t
}

// x86-64 names of the calls a forwarder makes.
var syscallNames = map[int]string{
	0: "read", 1: "write", 7: "poll", 13: "rt_sigaction", 14: "rt_sigprocmask", 15: "rt_sigreturn",
	23: "select", 24: "sched_yield", 35: "nanosleep", 39: "getpid", 44: "sendto", 45: "recvfrom",
	46: "sendmsg", 47: "recvmsg", 54: "setsockopt", 55: "getsockopt", 110: "getppid", 186: "gettid",
	200: "tkill", 202: "futex", 228: "clock_gettime", 230: "clock_nanosleep", 232: "epoll_wait",
	234: "tgkill", 257: "openat", 270: "pselect6", 271: "ppoll", 281: "epoll_pwait", 321: "bpf", 441: "epoll_pwait2",
}

// Mix describes the calls per forwarded frame, the largest first:
// "sendto 0.031, recvfrom 0.020, …" (at most max entries, the rest summed
// as "other").
func (s Syscalls) Mix(frames float64, max int) string {
	type e struct {
		name string
		n    uint64
	}
	var es []e
	for nr, n := range s {
		name, ok := syscallNames[nr]
		if !ok {
			name = fmt.Sprintf("#%d", nr)
		}
		es = append(es, e{name, n})
	}
	sort.Slice(es, func(i, j int) bool { return es[i].n > es[j].n || es[i].n == es[j].n && es[i].name < es[j].name })
	var parts []string
	var other uint64
	for i, x := range es {
		if i < max {
			parts = append(parts, fmt.Sprintf("%s %.3f", x.name, float64(x.n)/frames))
		} else {
			other += x.n
		}
	}
	if other > 0 {
		parts = append(parts, fmt.Sprintf("other %.3f", float64(other)/frames))
	}
	return strings.Join(parts, ", ")
}
