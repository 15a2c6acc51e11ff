package hub

import (
	"time"

	"github.com/adred-codev/ws_poc/ws-single/internal/protocol"
)

// slowAfter is how long a client's write in flight may wait for its socket,
// while its queue is past a limit, before the client counts as not draining.
const slowAfter = time.Second

// over reports whether c's queue (pending plus the write in flight) is past a
// limit.
func (h *Hub) over(c *Client) bool {
	n, b := len(c.pending)+c.inflight, c.pendingBytes+c.inflightB
	if cf := c.conf; cf != nil {
		n -= cf.holes + cf.held // what conflation bounds does not count (conflate.go)
		b -= cf.heldBytes
	}
	return n > h.cfg.SendQueueMessages || b > h.cfg.SendQueueBytes
}

// enqueue appends m to c's queue, to be written at the end of the round, and
// cuts c as slow when its queue is past a limit and it is not draining it.
func (h *Hub) enqueue(c *Client, m *protocol.Message) {
	if c.gone {
		return
	}
	c.pending = append(c.pending, m)
	c.pendingBytes += len(m.Wire)
	if c.recovering != nil && h.over(c) {
		h.abortResume(c, protocol.NotRecoveredOverflow) // its live records take the room: go live
	} else if h.over(c) && h.slow(c) {
		h.metrics.SendQueueOverflow.Inc()
		h.drop(c)
		c.conn.Overflow()
		return
	}
	if !c.dirty && !c.flushing {
		c.dirty = true
		h.dirty = append(h.dirty, c)
	}
}

// slow judges c, whose queue is past a limit, as a new message is queued for
// it: c is slow unless it is draining. It is not draining when its queue has
// stayed past a limit for longer than the write timeout (it does not catch
// up), or when its write in flight has waited for the socket for more than
// slowAfter. A write's wait is measured from when its flusher started (write
// records it), so a client whose socket has been stuck for longer than
// slowAfter is cut the first time it goes past a limit. The clock is read
// here only for a client past a limit; a client within its limits whose
// writes the socket takes at once never reads it.
func (h *Hub) slow(c *Client) bool {
	now := time.Now()
	if c.overSince.IsZero() {
		c.overSince = now
	}
	if h.cfg.WriteTimeout > 0 && now.Sub(c.overSince) > h.cfg.WriteTimeout {
		return true
	}
	if !c.flushing {
		return false // nothing waits for the socket: the round's write takes the queue
	}
	return now.Sub(c.flushSince) > slowAfter
}

// drop ends every delivery to c at once: its queue now, its subscriptions
// when the current event is done (fanout may be walking them). Sync callers
// waiting for c are released.
func (h *Hub) drop(c *Client) {
	if c.gone {
		return
	}
	c.gone = true
	if c.conf != nil {
		h.endEpisode(c)
	}
	if c.recovering != nil {
		c.recovering.cancel()
		c.recovering = nil
	}
	c.deferred = nil
	clear(c.pending)
	c.pending, c.pendingBytes, c.resliced = nil, 0, false
	h.dropped = append(h.dropped, c)
	h.release(c)
}

// writeDirty ends a round: each client that got messages has them written
// (Conn.Write: corked, then offered to its socket in one non-blocking syscall).
// A socket that does not take everything at once (its peer reads slowly) gets
// a flusher goroutine for the rest, and the client's next messages wait in its
// queue until the flusher reports.
func (h *Hub) writeDirty() {
	for i, c := range h.dirty {
		h.dirty[i] = nil
		c.dirty = false
		if !c.gone && !c.flushing && len(c.writable()) > 0 {
			h.write(c)
		}
	}
	h.dirty = h.dirty[:0]
	h.unindex() // clients whose socket failed
}

// write hands c's queue to its connection in chunks: a Write takes messages
// only until the socket has left more than about 64 KiB in the connection's
// buffer, and the rest stays queued as the shared messages it is (a burst is
// never copied per client). While the socket takes everything at once the next
// chunk follows; when it does not, a flusher goroutine finishes the chunk and
// the next one waits for its report.
func (h *Hub) write(c *Client) {
	if c.conf != nil && c.conf.holes > 0 {
		c.compact()
	}
	for len(c.writable()) > 0 {
		w, done, err := c.conn.Write(c.chunk())
		if err != nil {
			h.drop(c) // the connection ends itself (see Conn)
			return
		}
		n, bytes := w.Lines, c.take(w)
		if !done {
			c.flushing = true
			c.flushSince = time.Now() // the write starts waiting for the socket (slow rule (i))
			c.inflight, c.inflightB = n, bytes
			c.owed = w
			c.flushers.Add(1)
			go h.flush(c)
			return
		}
		h.count(w)
	}
	h.settle(c)
}

// take removes the w.Lines messages a write took from the front of c's queue
// and returns their bytes. The bytes are in the connection: the references go,
// so messages can be collected. A partial take reslices past them instead of
// moving the rest to the front: a client draining a long queue a chunk at a
// time costs O(chunk) per write, not O(queue). The resliced queue's backing
// array is then larger than its capacity shows, so once the queue is empty it
// goes to the garbage collector rather than stay on the client.
func (c *Client) take(w Written) int {
	n := w.Lines
	if c.recovering != nil {
		c.recovering.at -= n
	}
	if c.conf != nil {
		c.conf.taken(c.pending[:n])
	}
	if n == len(c.pending) {
		bytes := c.pendingBytes
		clear(c.pending)
		if c.resliced {
			c.pending, c.resliced = nil, false
		} else {
			c.pending = reusable(c.pending)
		}
		c.pendingBytes = 0
		return bytes
	}
	bytes := wireBytes(c.pending[:n])
	clear(c.pending[:n])
	c.pending = c.pending[n:]
	c.resliced = true
	c.pendingBytes -= bytes
	return bytes
}

// count adds a write that is out in full to the metrics; nothing of a write
// counts before the socket took all of it. The clock is read once per write
// that carries a record (the delivery latency of its oldest), not per message.
func (h *Hub) count(w Written) {
	h.metrics.MessagesDelivered.Add(float64(w.Lines))
	h.metrics.FramesWritten.Add(float64(w.Frames))
	h.metrics.BytesWritten.Add(float64(w.Bytes))
	if !w.First.IsZero() {
		h.metrics.DeliveryLatency.Observe(time.Since(w.First).Seconds())
	}
}

func wireBytes(msgs []*protocol.Message) int {
	n := 0
	for _, m := range msgs {
		n += len(m.Wire)
	}
	return n
}

// flush is c's flusher goroutine: it exists only while c's socket is full.
func (h *Hub) flush(c *Client) {
	defer c.flushers.Done()
	err := c.conn.Flush()
	select {
	case h.next <- handoff{c: c, failed: err != nil}:
	case <-h.done:
	}
}

// handoff takes a flusher's report: c may be written to again.
func (h *Hub) handoff(r handoff) {
	c := r.c
	c.flushing = false
	c.inflight, c.inflightB = 0, 0
	owed := c.owed
	c.owed = Written{}
	if r.failed {
		h.drop(c)
		return
	}
	h.count(owed)
	if !c.gone && len(c.pending) > 0 && !c.dirty {
		c.dirty = true
		h.dirty = append(h.dirty, c)
	}
	h.settle(c)
}

// settle runs when c's queue has shrunk: a queue back within the limits
// restarts the slow rule's clock, and an empty one with no write in flight
// releases the Sync callers waiting for c.
func (h *Hub) settle(c *Client) {
	if !c.overSince.IsZero() && !h.over(c) {
		c.overSince = time.Time{}
	}
	if len(c.pending) == 0 && !c.flushing {
		if c.conf != nil {
			h.endEpisode(c)
		}
		if c.syncs != nil && c.recovering == nil {
			h.release(c)
		}
	}
}

// release wakes the Sync callers waiting for c.
func (h *Hub) release(c *Client) {
	for _, done := range c.syncs {
		close(done)
	}
	c.syncs = nil
}

// writable is the part of c's queue that may be written: all of it, or while a resume reads
// Kafka what is queued before the resume's place.
func (c *Client) writable() []*protocol.Message {
	if c.recovering != nil {
		return c.pending[:c.recovering.at]
	}
	return c.pending
}
