package rings

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// busyPollRxPackets is LINUX_MIB_BUSYPOLLRXPACKETS of the calling
// thread's network namespace: frames the kernel received inside a busy
// poll (TcpExt BusyPollRxPackets in /proc/net/netstat).
func busyPollRxPackets(t *testing.T) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/thread-self/net/netstat")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(b), "\n")
	for i := 0; i+1 < len(lines); i++ {
		if !strings.HasPrefix(lines[i], "TcpExt:") || !strings.HasPrefix(lines[i+1], "TcpExt:") {
			continue
		}
		names, vals := strings.Fields(lines[i]), strings.Fields(lines[i+1])
		for j, n := range names {
			if n == "BusyPollRxPackets" && j < len(vals) {
				v, _ := strconv.ParseUint(vals[j], 10, 64)
				return v
			}
		}
	}
	t.Fatal("no TcpExt BusyPollRxPackets in /proc/net/netstat")
	return 0
}

// threadCPU is a task's run time so far (schedstat), in ns.
func threadCPU(t *testing.T, pid int) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/schedstat")
	if err != nil {
		t.Fatal(err)
	}
	v, _ := strconv.ParseUint(strings.Fields(string(b))[0], 10, 64)
	return v
}

// forceBusyPoll sets the busy-poll options and the busy discipline on a
// socket Open let fall back, to see what the kernel makes of them.
func (s *Socket) forceBusyPoll(t *testing.T, o Opts) {
	t.Helper()
	for _, v := range [][2]int{{unix.SO_PREFER_BUSY_POLL, 1}, {unix.SO_BUSY_POLL, o.BusyPollUsecs}, {unix.SO_BUSY_POLL_BUDGET, o.BusyPollBudget}} {
		if err := unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, v[0], v[1]); err != nil {
			t.Fatalf("setsockopt %d: %v", v[0], err)
		}
	}
	s.busy = true
}

// TestVethBusyPoll is the evidence for what preferred busy polling does on
// a veth (docs/DEPLOY.md, Busy polling): the veth has a NAPI instance once
// an XDP program is attached, and NAPI_SET configures it; but the kernel
// links no NAPI to the veth's rx queue (QUEUE_GET has no napi-id), so an
// AF_XDP socket bound to it gets NAPI id 0 (Linux ≥ 6.13 takes it only at
// bind, in xsk_bind, from that link), Open falls back and says so, and a
// socket forced to busy poll anyway makes its calls without the kernel
// busy polling anything (BusyPollRxPackets does not move) while the
// veth's NAPI thread keeps doing the receive work. On a kernel whose veth
// links its queues, the test checks the opposite instead.
func TestVethBusyPoll(t *testing.T) {
	l := newLab(t)
	l.enter(t, func() {
		p, err := LoadSteer()
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		if err := p.SetLocals(testLocals()); err != nil {
			t.Fatal(err)
		}
		if err := p.SetServices(testServices()); err != nil {
			t.Fatal(err)
		}
		if _, err := p.Attach(l.idxA, XDPAuto); err != nil {
			t.Fatal(err)
		}
		// The veth's receive work as a kernel thread of its own.
		run(t, "ip", "netns", "exec", l.ns, "sh", "-c", "echo 1 > /sys/class/net/rgtA/threaded")
		napis, err := NAPIs(l.idxA)
		if err != nil {
			t.Fatal(err)
		}
		if len(napis) != 1 || napis[0].PID == 0 {
			t.Fatalf("NAPI_GET rgtA: %+v, want one threaded instance", napis)
		}
		napi := napis[0]
		t.Logf("rgtA NAPI: %+v", napi)
		qn, err := QueueNAPI(l.idxA, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("QUEUE_GET rgtA rx 0: napi-id %d", qn)

		// NAPI_SET works on it (CAP_NET_ADMIN), and reads back.
		if err := SetNAPI(napi.ID, 2, 200000); err != nil {
			t.Fatal(err)
		}
		defer func() {
			if err := SetNAPI(napi.ID, napi.DeferHardIRQs, napi.GROFlushTimeout); err != nil {
				t.Error(err)
			}
		}()
		if got, err := GetNAPI(napi.ID); err != nil || got.DeferHardIRQs != 2 || got.GROFlushTimeout != 200000 {
			t.Fatalf("after NAPI_SET: %+v, %v", got, err)
		}

		o := DefaultOpts()
		o.BusyPoll = true
		s, err := Open(l.idxA, 0, o)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		st := s.BusyPoll()
		t.Logf("Open with BusyPoll: %+v", st)
		if qn == 0 {
			if st.Enabled || st.NAPIID != 0 || !errors.Is(st.Err, ErrNoNAPI) {
				t.Fatalf("a queue without a NAPI link: status %+v, want a fallback wrapping ErrNoNAPI", st)
			}
			s.forceBusyPoll(t, withDefaults(o))
		} else if !st.Enabled || st.NAPIID != qn {
			t.Fatalf("queue linked to NAPI %d: status %+v", qn, st)
		}
		if err := p.Register(0, s); err != nil {
			t.Fatal(err)
		}

		ps := newPacketSock(t, l.idxB)
		const N = 2000
		frames := make([][]byte, 64)
		for i := range frames {
			frames[i] = greIn(ip4(client, vipWeb, 6, l4(uint16(i), 80, 20), nil))
		}
		bp0, cpu0 := busyPollRxPackets(t), threadCPU(t, napi.PID)
		var sk0 Stats
		s.counters(&sk0)
		descs := make([]Desc, 64)
		got, next := 0, 0
		for deadline := time.Now().Add(10 * time.Second); got < N && time.Now().Before(deadline); {
			for next < N && next-got < 64 {
				ps.send(t, frames[next%64])
				next++
			}
			s.Service()
			n := s.Receive(descs)
			got += n
			if sent := s.Transmit(descs[:n]); sent < n {
				for _, d := range descs[sent:n] {
					s.Recycle(d.Addr)
				}
			}
		}
		for range 100 {
			s.Service()
		}
		bp1, cpu1 := busyPollRxPackets(t), threadCPU(t, napi.PID)
		var sk1 Stats
		s.counters(&sk1)
		calls := sk1.TxKicks + sk1.BusyPolls + sk1.FillKicks - sk0.TxKicks - sk0.BusyPolls - sk0.FillKicks
		t.Logf("%d frames: %d sendto/recvfrom made with busy-poll options set; BusyPollRxPackets +%d; rgtA's NAPI thread ran %v",
			got, calls, bp1-bp0, time.Duration(cpu1-cpu0))
		if got != N {
			t.Fatalf("received %d of %d frames", got, N)
		}
		if calls == 0 {
			t.Fatal("the busy-polling socket made no system calls")
		}
		if qn == 0 {
			if bp1 != bp0 {
				t.Errorf("BusyPollRxPackets moved by %d with no NAPI id", bp1-bp0)
			}
			if cpu1 == cpu0 {
				t.Error("the NAPI thread did not run: who received the frames?")
			}
		} else if bp1-bp0 < N/2 {
			t.Errorf("busy polling on: only %d of %d frames received in a busy poll", bp1-bp0, N)
		}
	})
}
