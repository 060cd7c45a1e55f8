package pipeline

import "github.com/rail-lb/rail/rings"

// captureBatch is Poll's loop over the n received frames while a capture
// runs: the same steps, with the tap given each frame before and after
// Process. Poll keeps the plain loop for the usual case, so that no
// capture costs it nothing per packet. It returns the number of frames
// staged for transmission.
func (l *Loop) captureBatch(c *CaptureTap, n int) int {
	s, w := l.Sock, l.W
	ntx := 0
	for i := range l.rx[:n] {
		d := &l.rx[i]
		buf, off := s.Frame(d.Addr)
		p := Packet{Buf: buf, Off: off, Len: int(d.Len)}
		c.Received(&p)
		r := w.Process(&p)
		c.Processed(&p, r)
		if r.Verdict == Tx {
			l.tx[ntx] = rings.Desc{Addr: s.FrameBase(d.Addr) + uint64(p.Off), Len: uint32(p.Len)}
			l.txr[ntx] = r
			ntx++
		} else {
			s.Recycle(d.Addr)
		}
	}
	return ntx
}
