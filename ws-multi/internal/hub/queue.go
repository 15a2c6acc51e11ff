package hub

import (
	"time"

	"go.uber.org/zap"

	"github.com/adred-codev/ws_poc/ws-multi/internal/metrics"
	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// A client's send queue, from enqueue to the socket: the slow rule, the writes of a round
// and the flusher reports. Everything here runs on the client's shard goroutine.

// slowAfter is how long a client's write in flight may wait for its socket before the
// client counts as not draining: past it, a client whose queue is past a limit is cut as
// slow. A socket that takes nothing for a second under continued traffic is not catching
// up; one that does take its writes is never cut by a burst it drains, however large.
const slowAfter = time.Second

// enqueue puts m on c's send queue, to be written at the end of the round. A queue past a
// limit is judged by the slow rule (stuck); a client cut as slow leaves the index after
// the current fan-out, since dropping edits the lists being iterated. A client whose resume
// reads Kafka is not judged: its live records, held behind the resume's place, take the
// room, so the resume ends "overflow" (resume.go) and the client goes live instead.
func (s *shard) enqueue(c *Client, m *protocol.Message) {
	if c.gone {
		return
	}
	if s.over(c, len(m.Wire)) {
		if c.recovering != nil {
			s.abortResume(c, protocol.NotRecoveredOverflow)
		} else if s.stuck(c) {
			s.hub.metrics.SendQueueOverflow.Inc()
			if ce := s.hub.log.Check(zap.DebugLevel, "send queue overflow: client cut as slow"); ce != nil {
				ce.Write(zap.Int("shard", s.index))
			}
			c.conn.Overflow()
			c.gone = true // nothing more is queued; drop, after the fan-out, clears the queue
			s.slow = append(s.slow, c)
			return
		}
	}
	c.pending = append(c.pending, m)
	c.pendingBytes += len(m.Wire)
	if !c.dirty && !c.flushing {
		c.dirty = true
		s.dirty = append(s.dirty, c)
	}
}

// over reports whether c's queue (pending plus the write in flight) with n more bytes is
// past WS_SEND_QUEUE_MESSAGES or WS_SEND_QUEUE_BYTES. A message alone in an empty queue
// never is, whatever its size.
func (s *shard) over(c *Client, n int) bool {
	cfg := &s.hub.cfg
	queued, bytes := len(c.pending)+c.inflight, c.pendingBytes+c.inflightB+n
	if cf := c.conf; cf != nil {
		queued -= cf.holes + cf.held // what conflation bounds does not count (conflate.go)
		bytes -= cf.heldBytes
	}
	return queued > 0 && (queued >= cfg.SendQueueMessages || bytes > cfg.SendQueueBytes)
}

// stuck is the slow rule, for a client whose queue is past a limit: it is not draining if
// its write in flight has waited for the socket for more than slowAfter, or if its queue
// has stayed past a limit for longer than WS_WRITE_TIMEOUT (it does not catch up). It
// reads the clock, so it runs only over a limit: the hot path stays clock-free.
func (s *shard) stuck(c *Client) bool {
	now := time.Now()
	if c.overSince.IsZero() {
		c.overSince = now
	}
	return (c.flushing && now.Sub(c.flushSince) > slowAfter) || now.Sub(c.overSince) > s.hub.cfg.WriteTimeout
}

// caughtUp forgets when c's queue went past a limit once it is back under them; called
// where the queue shrinks.
func (s *shard) caughtUp(c *Client) {
	if !c.overSince.IsZero() && !s.over(c, 0) {
		c.overSince = time.Time{}
	}
}

func (s *shard) dropSlow() {
	for i, c := range s.slow {
		s.drop(c)
		s.slow[i] = nil
	}
	s.slow = s.slow[:0]
}

// writeDirty ends a round: each client that got messages has them written, corked, and
// offered to its socket in one non-blocking syscall. A socket that does not take everything
// at once (its peer reads slowly) gets a flusher goroutine for the rest, and the client's
// next messages wait in its queue until the flusher reports. The round's figures, flusher
// reports included, are counted here.
func (s *shard) writeDirty() {
	if len(s.dirty) > 0 {
		now := time.Now()
		for i, c := range s.dirty {
			s.dirty[i] = nil
			c.dirty = false
			if !c.gone && !c.flushing && len(c.writable()) > 0 {
				s.write(c, now)
			}
		}
		s.dirty = s.dirty[:0]
	}
	s.stats.count(s.hub.metrics)
}

// write hands c's queue (what of it is writable) to its connection a chunk at a time: a
// Write takes messages until the connection holds more than about 64 KiB the socket did not
// take, and says how many it took; the rest stays queued as the shared messages it is. A
// chunk the socket took at once is followed by the next; one it did not gets a flusher, and
// the rest of the queue waits for its report.
func (s *shard) write(c *Client, now time.Time) {
	if c.conf != nil && c.conf.holes > 0 {
		c.compact()
	}
	for {
		w, done, err := c.conn.Write(c.chunk())
		if err != nil {
			// The socket failed (a background drain timed out, the peer reset) or the
			// connection closed (a close frame went out): the connection ends itself (the
			// server's Write saw to that); nothing more is queued for it.
			s.drop(c)
			return
		}
		c.take(w)
		if !done {
			c.flushing = true
			c.flushSince = now
			c.inflight, c.inflightB = w.Lines, w.size()
			c.owed = w
			c.flushers.Add(1)
			go s.flush(c)
			return
		}
		s.stats.add(w, now)
		if len(c.writable()) == 0 {
			s.caughtUp(c)
			if c.conf != nil && len(c.pending) == 0 {
				s.endEpisode(c)
			}
			if c.synced != nil {
				s.releaseSync(c)
			}
			return
		}
	}
}

// take removes the w.Lines messages a write took from the front of c's queue. The bytes are
// in the connection: the references go, so messages can be collected. A partial take
// reslices past them instead of moving the rest to the front: a client draining a long
// queue a chunk at a time costs O(chunk) per write, not O(queue). The resliced queue's
// backing array is then larger than its capacity shows, so once the queue is empty it goes
// to the garbage collector rather than stay on the client.
func (c *Client) take(w Written) {
	n := w.Lines
	if c.recovering != nil {
		c.recovering.at -= n
	}
	if c.conf != nil {
		c.conf.taken(c.pending[:n])
	}
	if n == len(c.pending) {
		clear(c.pending)
		if c.resliced {
			c.pending, c.resliced = nil, false
		} else {
			c.pending = reusable(c.pending)
		}
		c.pendingBytes = 0
		return
	}
	clear(c.pending[:n])
	c.pending = c.pending[n:]
	c.resliced = true
	c.pendingBytes -= w.size()
}

// flush is a client's flusher goroutine: it writes the rest of a write the socket did not
// take at once (Conn.Flush, within the write timeout) and reports to the shard. It exists
// only while a socket is full, so an idle or keeping-up connection costs no goroutine.
func (s *shard) flush(c *Client) {
	defer c.flushers.Done()
	err := c.conn.Flush()
	select {
	case s.next <- handoff{c: c, failed: err != nil}:
	case <-s.done:
	}
}

// handoff takes a flusher's report: the write is out (counted now) or failed.
func (s *shard) handoff(r handoff) {
	c := r.c
	c.flushing = false
	c.inflight, c.inflightB = 0, 0
	if r.failed {
		// The socket failed or timed out (the connection ends itself): nothing more is
		// queued for it.
		s.drop(c)
		return
	}
	s.stats.add(c.owed, time.Now())
	c.owed = Written{}
	s.caughtUp(c)
	if c.gone {
		return
	}
	if len(c.writable()) == 0 {
		if c.conf != nil && len(c.pending) == 0 {
			s.endEpisode(c)
		}
		s.releaseSync(c)
	} else if !c.dirty {
		c.dirty = true
		s.dirty = append(s.dirty, c)
	}
}

// addSync registers a Hub.Sync, which is released at once when c's queue is out already or
// c is gone.
func (s *shard) addSync(c *Client, synced chan struct{}) {
	if c.synced != nil {
		close(c.synced) // an earlier Sync that gave up: nobody waits on it
	}
	c.synced = synced
	s.releaseSync(c)
}

// releaseSync ends c's Sync once c has no pending message, no write in flight and no resume
// reading Kafka, or is gone. A resume's end always queues its recovered line, so a Sync it
// held is released by the write that takes it.
func (s *shard) releaseSync(c *Client) {
	if c.synced != nil && (c.gone || (len(c.pending) == 0 && !c.flushing && c.recovering == nil)) {
		close(c.synced)
		c.synced = nil
	}
}

// writable is the part of c's queue that may be written: all of it, or while a resume reads
// Kafka what is queued before the resume's place.
func (c *Client) writable() []*protocol.Message {
	if c.recovering != nil {
		return c.pending[:c.recovering.at]
	}
	return c.pending
}

func wireBytes(msgs []*protocol.Message) int {
	n := 0
	for _, m := range msgs {
		n += len(m.Wire)
	}
	return n
}

// writeStats are the metrics figures of written writes, summed by the shard and added to
// the shared counters once per round of writes: per write, the shards' atomic adds on the
// same counters cost cache-line traffic between cores.
type writeStats struct {
	frames, bytes, lines int
	latency              []float64 // one sample per write with a record: its oldest one's age
}

// add counts one write that is out in full.
func (st *writeStats) add(w Written, now time.Time) {
	st.frames += w.Frames
	st.bytes += w.Bytes
	st.lines += w.Lines
	if !w.First.IsZero() {
		st.latency = append(st.latency, now.Sub(w.First).Seconds())
	}
}

// count adds the figures to the metrics and resets st, keeping the latency slice's room.
func (st *writeStats) count(m *metrics.Metrics) {
	if st.frames > 0 {
		m.FramesWritten.Add(float64(st.frames))
		m.BytesWritten.Add(float64(st.bytes))
	}
	if st.lines > 0 {
		// Every line written counts, replies included, as in ws-single.
		m.MessagesDelivered.Add(float64(st.lines))
	}
	for _, v := range st.latency {
		// One latency sample per write (its oldest record): exact when the client keeps
		// up, sampled under load.
		m.DeliveryLatency.Observe(v)
	}
	st.frames, st.bytes, st.lines = 0, 0, 0
	st.latency = st.latency[:0]
}
