package ringstest_test

import (
	"fmt"

	"github.com/rail-lb/rail/rings"
	"github.com/rail-lb/rail/rings/ringstest"
)

// A packet goes in through the rx ring, the socket's user moves it two
// bytes forward in its frame and transmits it, and the kernel sends it.
func Example() {
	o := rings.DefaultOpts()
	o.FrameSize, o.FrameCount = 2048, 8
	o.FillSize, o.CompletionSize, o.RxSize, o.TxSize = 4, 4, 4, 4
	s, k, err := ringstest.New(o, 0)
	if err != nil {
		panic(err)
	}
	defer s.Close()

	k.Take(1)
	k.DeliverFrame([]byte("hello"))
	descs := make([]rings.Desc, 4)
	n := s.Receive(descs)
	buf, off := s.Frame(descs[0].Addr)
	fmt.Println(n, "received at offset", off, string(buf[off:off+int(descs[0].Len)]))

	copy(buf[off+2:], buf[off:off+5])
	s.Transmit([]rings.Desc{{Addr: s.FrameBase(descs[0].Addr) + uint64(off+2), Len: 5}})
	k.SendFunc(1, func(pkt []byte) { fmt.Println("sent", string(pkt)) })
	k.Complete(1)
	s.Service()
	fmt.Printf("%+v\n", s.Frames())
	// Output:
	// 1 received at offset 256 hello
	// sent hello
	// {Free:4 Fill:4 Rx:0 Held:0 Tx:0 Completion:0}
}
