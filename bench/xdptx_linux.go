package bench

import (
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/netip"

	"github.com/cilium/ebpf/link"
)

// XDPTXProg selects one of xdptx.c's programs.
type XDPTXProg int

const (
	Retarget XDPTXProg = iota // GRE to local re-targeted to backend, XDP_TX
	Pass                      // XDP_PASS: the kernel forwards
	Bounce                    // every IPv4 frame straight back (the lab's ceiling)
)

// AttachXDPTX attaches one of xdptx.c's programs to ifname in native mode.
// Closing the result detaches it.
func AttachXDPTX(ifname string, local, backend netip.Addr, which XDPTXProg) (io.Closer, error) {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("bench: interface %s: %w", ifname, err)
	}
	spec, err := loadXdptx()
	if err != nil {
		return nil, err
	}
	wire := func(a netip.Addr) uint32 {
		if !a.Is4() {
			return 0
		}
		b := a.As4()
		return binary.NativeEndian.Uint32(b[:])
	}
	if err := spec.Variables["local_addr"].Set(wire(local)); err != nil {
		return nil, err
	}
	if err := spec.Variables["backend_addr"].Set(wire(backend)); err != nil {
		return nil, err
	}
	var objs xdptxObjects
	if err := spec.LoadAndAssign(&objs, nil); err != nil {
		return nil, fmt.Errorf("bench: load xdptx (needs root): %w", err)
	}
	prog := objs.Retarget
	switch which {
	case Pass:
		prog = objs.Pass
	case Bounce:
		prog = objs.Bounce
	}
	l, err := link.AttachXDP(link.XDPOptions{Program: prog, Interface: ifi.Index, Flags: link.XDPDriverMode})
	if err != nil {
		objs.Close()
		return nil, fmt.Errorf("bench: attach to %s: %w", ifname, err)
	}
	return closers{l, &objs}, nil
}

type closers []io.Closer

func (c closers) Close() error {
	var first error
	for _, x := range c {
		if err := x.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}
