package rings

import (
	"encoding/binary"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// passFDs sends fds over a unix socketpair with SCM_RIGHTS and returns the
// received copies, as a process taking over gets them.
func passFDs(t *testing.T, fds ...int) []int {
	t.Helper()
	p, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	if err := unix.Sendmsg(p[0], []byte{1}, unix.UnixRights(fds...), nil, 0); err != nil {
		t.Fatal(err)
	}
	oob := make([]byte, unix.CmsgSpace(4*len(fds)))
	_, oobn, _, _, err := unix.Recvmsg(p[1], make([]byte, 1), oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		t.Fatalf("control messages %v: %v", msgs, err)
	}
	got, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(got) != len(fds) {
		t.Fatalf("rights %v: %v", got, err)
	}
	return got
}

// TestVethAdopt: a bound, registered socket receiving GRE is exported in
// the middle of a stream, its descriptors passed with SCM_RIGHTS, adopted,
// and the old Socket closed; the adopted one receives the rest of the
// stream. Every frame sent is received exactly once across the two, and
// the frames all come home.
func TestVethAdopt(t *testing.T) {
	l := newLab(t)
	l.enter(t, func() {
		o := DefaultOpts()
		o.FrameSize, o.FrameCount = 2048, 256
		o.FillSize, o.CompletionSize, o.RxSize, o.TxSize = 128, 64, 128, 64
		o.ZeroCopy = ZeroCopyOff
		s, err := Open(l.idxA, 0, o)
		if err != nil {
			t.Fatal(err)
		}
		p, err := LoadSteer()
		if err != nil {
			s.Close()
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
		if err := p.Register(0, s); err != nil {
			t.Fatal(err)
		}
		ps := newPacketSock(t, l.idxB)
		const N = 400
		seen := make([]int, N)
		descs := make([]Desc, 64)
		recv := func(s *Socket, want int) {
			for end := time.Now().Add(5 * time.Second); time.Now().Before(end); {
				done := 0
				for _, c := range seen[:want] {
					done += min(c, 1)
				}
				if done == want {
					return
				}
				s.Service()
				s.Wait(2 * time.Millisecond)
				n := s.Receive(descs)
				for _, d := range descs[:n] {
					buf, off := s.Frame(d.Addr)
					pkt := buf[off : off+int(d.Len)]
					// The source port of the inner TCP header is the sequence.
					if seq := int(binary.BigEndian.Uint16(pkt[14+24+20:])); seq < N {
						seen[seq]++
					}
					s.Recycle(d.Addr)
				}
			}
		}
		send := func(from, to int) {
			for i := from; i < to; i++ {
				ps.send(t, greIn(ip4(client, vipWeb, 6, l4(uint16(i), 80, 20), nil)))
			}
		}
		send(0, 100)
		recv(s, 100)
		// Frames sent now wait on the fill ring's frames and the rx ring
		// while nobody polls: the hand-over happens under them.
		send(100, 200)
		h, err := s.Handoff()
		if err != nil {
			t.Fatal(err)
		}
		fds := passFDs(t, s.FD(), s.UMEMFile())
		before := s.Frames()
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		n, err := Adopt(fds[0], fds[1], h)
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close()
		if c := n.Frames(); c.Sum() != o.FrameCount || c.Free != before.Free || c.Held != 0 {
			t.Fatalf("adopted %+v, the old socket had %+v", c, before)
		}
		recv(n, 200)
		for i := 200; i < N; i += 50 {
			send(i, i+50)
			recv(n, i+50)
		}
		for i, c := range seen {
			if c != 1 {
				st, _ := n.Stats()
				t.Fatalf("frame %d received %d times (stats %+v)", i, c, st)
			}
		}
		n.Service()
		if c := n.Frames(); c != (FrameCounts{Free: o.FrameCount - o.FillSize, Fill: o.FillSize}) {
			t.Errorf("after the stream: %+v", c)
		}
		st, err := n.Stats()
		if err != nil {
			t.Fatal(err)
		}
		if st.RingErrors != 0 || st.BadRecycles != 0 || st.RxDropped != 0 {
			t.Errorf("stats %+v", st)
		}
		t.Logf("adopted with %+v; stats after %+v", before, st)
	})
}
