package pipeline

import (
	"fmt"
	"time"
)

// File is the memfd holding the table's entries (-1 off Linux), for
// passing to the process that takes over this one. It stays the table's:
// the receiver gets its own descriptor.
func (c *Conntrack) File() int { return c.fd }

// AdoptConntrack maps the tables of another process's connection table
// from the memfd it passed (see File): the same entries, which this
// process then owns. entries and the timeouts are this process's
// configuration; entries must give tables of the passed size. st is what
// the table's worker recorded besides its entries (Worker.Handoff); the
// worker that uses the table resumes it with Worker.Resume. The table owns
// fd from here, on success and on error alike.
func AdoptConntrack(fd int, entries uint32, tcpTimeout, udpTimeout time.Duration, st CtState) (*Conntrack, error) {
	if want := ConntrackBytes(entries); st.Bytes != 0 && st.Bytes != want {
		closeTableFile(fd)
		return nil, fmt.Errorf("conntrack: the passed tables take %d bytes, these take %d (conntrack.entries_per_core differs)", st.Bytes, want)
	}
	c, err := newConntrack(entries, tcpTimeout, udpTimeout, fd)
	if err != nil {
		return nil, err
	}
	c.live, c.evicted, c.refused = st.Live, st.Evicted, st.Refused
	return c, nil
}

// Handoff is what the worker's connection table needs besides its entries
// to be resumed by another process: the clock (its entries' deadlines are
// seconds since Epoch) and the counters. Call it with the worker stopped.
func (w *Worker) Handoff() CtState {
	c := w.ct
	return CtState{Epoch: w.epoch, Now: w.now, Live: c.live, Evicted: c.evicted, Refused: c.refused, Bytes: int64(tablesBytes(uint32(len(c.buckets)), uint32(len(c.buckets6))))}
}

// Resume continues the clock of a worker whose table was adopted, so that
// the entries' deadlines keep their meaning.
func (w *Worker) Resume(st CtState) {
	w.epoch = st.Epoch
	if st.Now > w.now {
		w.now = st.Now
	}
	w.stats.ConntrackLive.Store(w.ct.live)
}
