package rings

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"
)

// SteerVersion names the steering program this binary carries (a hash of
// its object file). A process can take over another's attached program
// and maps only if both carry the same one.
func SteerVersion() string {
	h := sha256.Sum256(_SteerBytes)
	return hex.EncodeToString(h[:8])
}

// steerFDs is the order of Export's descriptors.
const steerFDs = 9

// Export returns the descriptors of the attached program's link, its two
// programs and its six maps, for passing to the process that takes over
// (AdoptSteer). The Steer keeps its own: closing it afterwards leaves the
// program attached as long as the other process holds the link.
func (p *Steer) Export() ([]int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, ErrClosed
	}
	if p.link == nil {
		return nil, errors.New("rings: Export: the steering program is not attached")
	}
	raw, ok := p.link.(interface{ FD() int })
	if !ok {
		return nil, fmt.Errorf("rings: Export: the XDP link (%T) has no descriptor", p.link)
	}
	o := &p.objs
	return []int{raw.FD(), o.Steer.FD(), o.SteerProbe.FD(),
		o.Locals.FD(), o.Passes.FD(), o.Services.FD(), o.Vips.FD(), o.Work.FD(), o.Xsks.FD()}, nil
}

// AdoptSteer takes over an attached steering program from the descriptors
// another process Exported (in that order; the Steer owns them from here,
// on success and on error alike). Nothing is reloaded or re-attached: the
// same program keeps steering with the same maps, xsks included.
func AdoptSteer(fds []int) (_ *Steer, err error) {
	if len(fds) != steerFDs {
		return nil, fmt.Errorf("rings: AdoptSteer: %d descriptors, want %d", len(fds), steerFDs)
	}
	p := &Steer{}
	rest := fds
	defer func() {
		if err != nil {
			for _, fd := range rest {
				unix.Close(fd)
			}
			p.Close()
		}
	}()
	next := func() int { fd := rest[0]; rest = rest[1:]; return fd }
	if p.link, err = link.NewFromFD(next()); err != nil {
		return nil, fmt.Errorf("rings: AdoptSteer: link: %w", err)
	}
	o := &p.objs
	for _, pr := range []struct {
		name string
		dst  **ebpf.Program
	}{{"steer", &o.Steer}, {"steer_probe", &o.SteerProbe}} {
		if *pr.dst, err = ebpf.NewProgramFromFD(next()); err != nil {
			return nil, fmt.Errorf("rings: AdoptSteer: program %s: %w", pr.name, err)
		}
	}
	for _, m := range []struct {
		name string
		dst  **ebpf.Map
	}{{"locals", &o.Locals}, {"passes", &o.Passes}, {"services", &o.Services}, {"vips", &o.Vips}, {"work", &o.Work}, {"xsks", &o.Xsks}} {
		if *m.dst, err = ebpf.NewMapFromFD(next()); err != nil {
			return nil, fmt.Errorf("rings: AdoptSteer: map %s: %w", m.name, err)
		}
	}
	return p, nil
}
