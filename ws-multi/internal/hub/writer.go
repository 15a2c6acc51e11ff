package hub

import (
	"context"
	"errors"
	"os"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// writeLoop is a client's writer goroutine. It exists only while the client has something to
// send: its shard starts it with a first batch, answers each hand-off with the next batch
// (possibly after a wait for a writer slot) and with nil when the queue is empty, and then
// the writer ends, so an idle connection costs no goroutine here.
func (h *Hub) writeLoop(s *shard, c *Client, batch []*protocol.Message) {
	defer c.wg.Done()
	ck, _ := c.conn.(Corker)
	var w *frameWriter // per-frame deadlines, only needed without a corker
	if ck == nil {
		w = h.getFrameWriter(c.conn)
		defer h.putFrameWriter(w)
	}
	for {
		failed := c.isClosed() // killed: write nothing more, the close frame is on its way
		if !failed {
			if err := h.writeBatch(c.conn, w, ck, batch); err != nil {
				failed = true
				if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded) {
					c.Kill(ReasonWriteTimeout)
				}
				// Otherwise the socket is gone (peer closed, reset, or closed under us): the
				// reader sees the same and finishes the client with the right reason.
			}
		}
		clear(batch) // drop references so delivered messages can be collected
		select {
		case s.next <- handoff{c: c, spare: batch, failed: failed}:
		case <-s.done:
			return
		}
		select {
		case batch = <-c.batch:
		case <-s.done:
			return
		}
		if batch == nil {
			return
		}
	}
}

// writeBatch writes one hand-off of messages to conn and counts it once in the metrics. With
// a corker (nil in some tests; then w bounds each frame) the socket is corked meanwhile, so the hand-off's frames leave
// in one syscall; nothing counts as written until the uncork succeeded.
func (h *Hub) writeBatch(conn Conn, w *frameWriter, ck Corker, batch []*protocol.Message) error {
	var frames, bytes, lines int
	var err error
	var first time.Time // timestamp of the hand-off's oldest record
	var haveFirst bool
	if ck != nil {
		ck.Cork()
	}
	for i := 0; i < len(batch); {
		n := 1
		if h.cfg.Batch {
			n = frameLen(batch[i:], h.cfg.BatchMaxBytes)
		}
		var p []byte
		var buf *[]byte
		if n == 1 {
			p = batch[i].Data
		} else {
			buf = h.bufs.Get().(*[]byte)
			p = joinLines((*buf)[:0], batch[i:i+n])
		}
		if ck != nil {
			// Corked, a frame only lands in the cork buffer (Corker): no per-frame deadline
			// (a timer and coder/websocket's context.AfterFunc per frame); Uncork's socket
			// deadline bounds the whole hand-off.
			err = conn.Write(context.Background(), websocket.MessageText, p)
		} else {
			err = w.write(p)
		}
		if buf != nil {
			*buf = p[:0]
			h.bufs.Put(buf)
		}
		if err != nil {
			break
		}
		for j := i; j < i+n && !haveFirst; j++ {
			if batch[j].Topic != "" {
				first, haveFirst = batch[j].Timestamp, true
			}
		}
		lines += n
		frames++
		bytes += len(p)
		i += n
	}
	if ck != nil {
		if uerr := ck.Uncork(h.cfg.WriteTimeout); uerr != nil {
			if err == nil {
				err = uerr
			}
			frames, lines = 0, 0
		}
	}
	m := h.metrics
	if frames > 0 {
		m.FramesWritten.Add(float64(frames))
		m.BytesWritten.Add(float64(bytes))
	}
	if lines > 0 {
		// Every line written counts, replies included, as in ws-single.
		m.MessagesDelivered.Add(float64(lines))
	}
	if haveFirst && frames > 0 {
		// One latency sample per hand-off (its oldest record): exact when the client keeps
		// up, sampled under load, and never a shared-histogram update per message per client.
		m.DeliveryLatency.Observe(time.Since(first).Seconds())
	}
	return err
}

// frameWriter writes frames with a per-frame deadline. Rather than a context.WithTimeout per
// frame (three allocations per message when batching is off), one cancelable context and one
// timer live for a whole writer run; the timer is re-armed around each frame. When it fires,
// the context is cancelled, and coder/websocket closes the connection under the stalled Write.
type frameWriter struct {
	conn     Conn
	timeout  time.Duration
	ctx      context.Context
	cancel   context.CancelFunc
	timer    *time.Timer
	armed    atomic.Bool // a frame is being written and may still time out
	timedOut atomic.Bool // the timer fired: the context is cancelled for good
}

func newFrameWriter(timeout time.Duration) *frameWriter {
	w := &frameWriter{timeout: timeout}
	w.ctx, w.cancel = context.WithCancel(context.Background())
	w.timer = time.AfterFunc(timeout, func() {
		// Only a frame still armed times out: a callback that lost the race with the end of
		// the write does nothing, so a reused writer never sees a late cancel.
		if w.armed.CompareAndSwap(true, false) {
			w.timedOut.Store(true)
			w.cancel()
		}
	})
	w.timer.Stop()
	return w
}

// write writes one text frame; it returns context.DeadlineExceeded when the frame did not
// complete within the timeout.
func (w *frameWriter) write(p []byte) error {
	w.armed.Store(true)
	w.timer.Reset(w.timeout)
	err := w.conn.Write(w.ctx, websocket.MessageText, p)
	w.timer.Stop()
	if !w.armed.CompareAndSwap(true, false) {
		// The timer claimed this frame: the context is (being) cancelled, which closes the
		// connection, and this writer must not be reused.
		w.timedOut.Store(true)
		return context.DeadlineExceeded
	}
	return err
}

// getFrameWriter takes a frame writer from the pool: writers start and stop with every burst
// of a client, and a pooled one saves its context and timer allocations each time.
func (h *Hub) getFrameWriter(conn Conn) *frameWriter {
	w := h.writers.Get().(*frameWriter)
	w.conn = conn
	return w
}

// putFrameWriter returns w to the pool unless its timer fired (its context is cancelled for
// good). The armed handshake in write guarantees a late timer callback does nothing.
func (h *Hub) putFrameWriter(w *frameWriter) {
	w.timer.Stop()
	w.conn = nil
	if w.timedOut.Load() {
		w.cancel()
		return
	}
	h.writers.Put(w)
}

// frameLen returns how many of msgs, from the first, go into the next frame: as many as fit in
// maxBytes joined by '\n', and always at least one (a larger message goes alone).
func frameLen(msgs []*protocol.Message, maxBytes int) int {
	size := len(msgs[0].Data)
	n := 1
	for n < len(msgs) && size+1+len(msgs[n].Data) <= maxBytes {
		size += 1 + len(msgs[n].Data)
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
		dst = append(dst, m.Data...)
	}
	return dst
}
