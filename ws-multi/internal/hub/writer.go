package hub

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/coder/websocket"

	"github.com/adred-codev/ws_poc/ws-multi/internal/metrics"
	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// written is what one hand-off put on the socket.
type written struct {
	frames, bytes, lines int       // lines: the messages handed, from the front of the queue
	size                 int       // the messages' own bytes (their Data), as the queue counts them
	first                time.Time // the hand-off's oldest record; zero if it had none
}

// writeStats are the metrics figures of written hand-offs, summed by the shard and added to
// the shared counters once per round of writes: per hand-off, the shards' atomic adds on the
// same counters cost cache-line traffic between cores.
type writeStats struct {
	frames, bytes, lines int
	latency              []float64 // one sample per hand-off with a record: its oldest one's age
}

// add counts one hand-off that is out in full.
func (st *writeStats) add(w written, now time.Time) {
	st.frames += w.frames
	st.bytes += w.bytes
	st.lines += w.lines
	if !w.first.IsZero() {
		st.latency = append(st.latency, now.Sub(w.first).Seconds())
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
		// One latency sample per hand-off (its oldest record): exact when the client keeps
		// up, sampled under load.
		m.DeliveryLatency.Observe(v)
	}
	st.frames, st.bytes, st.lines = 0, 0, 0
	st.latency = st.latency[:0]
}

// writeCorked writes batch, from its first message, into conn's cork, as frames of up to
// BatchMaxBytes when batching is on, and returns what it wrote. Corked, a frame only lands
// in memory (Conn), so this never waits for the socket and needs no per-frame deadline. It
// stops early once it has handed over chunkBytes and the cork holds more than chunkBytes
// the socket did not take: the rest stays in the queue (a write of a client that keeps up
// never asks).
func (h *Hub) writeCorked(conn Conn, batch []*protocol.Message) (w written, err error) {
	for i := 0; i < len(batch); {
		n := 1
		if h.cfg.Batch {
			n = frameLen(batch[i:], h.cfg.BatchMaxBytes)
		}
		var p []byte
		var buf *[]byte
		if n == 1 {
			p = batch[i].Wire
		} else {
			buf = h.bufs.Get().(*[]byte)
			p = joinLines((*buf)[:0], batch[i:i+n])
		}
		err = conn.Write(context.Background(), websocket.MessageText, p)
		if buf != nil {
			*buf = p[:0]
			h.bufs.Put(buf)
		}
		if err != nil {
			return w, err
		}
		if w.first.IsZero() {
			for _, m := range batch[i : i+n] {
				if m.Topic != "" {
					w.first = m.Time
					break
				}
			}
		}
		w.frames++
		w.bytes += len(p)
		w.lines += n
		w.size += len(p) - (n - 1) // without the joining newlines
		i += n
		if w.bytes >= chunkBytes && i < len(batch) && conn.Buffered() > chunkBytes {
			break
		}
	}
	return w, nil
}

// flush is a client's flusher goroutine: it writes the rest of a hand-off the socket did not
// take at once, waiting for the socket up to WS_WRITE_TIMEOUT, and reports to the shard. It
// exists only while a socket is full, so an idle or keeping-up connection costs no goroutine.
func (h *Hub) flush(s *shard, c *Client) {
	defer c.wg.Done()
	err := c.conn.Uncork(h.cfg.WriteTimeout)
	if timedOut(err) {
		c.Kill(ReasonWriteTimeout)
	}
	// Otherwise a failed socket is gone (peer closed, reset, or closed under us): the reader
	// sees the same and finishes the client with the right reason.
	select {
	case s.next <- handoff{c: c, failed: err != nil}:
	case <-s.done:
	}
}

func timedOut(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded)
}

// frameLen returns how many of msgs, from the first, go into the next frame: as many as fit in
// maxBytes joined by '\n', and always at least one (a larger message goes alone).
func frameLen(msgs []*protocol.Message, maxBytes int) int {
	size := len(msgs[0].Wire)
	n := 1
	for n < len(msgs) && size+1+len(msgs[n].Wire) <= maxBytes {
		size += 1 + len(msgs[n].Wire)
		n++
	}
	return n
}

// joinLines appends msgs to dst separated by '\n', without a trailing newline.
func joinLines(dst []byte, msgs []*protocol.Message) []byte {
	for i, m := range msgs {
		if i > 0 {
			dst = append(dst, '\n')
		}
		dst = append(dst, m.Wire...)
	}
	return dst
}
