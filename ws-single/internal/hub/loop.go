package hub

import (
	"context"
	"time"

	"github.com/adred-codev/ws_poc/ws-single/internal/protocol"
)

// Channel sizes. Control events come from reader goroutines (one per client,
// each rate-limited) and must never wait behind Kafka records, so they have
// their own channel which the loop drains first. 256 absorbs a reconnect storm's
// registrations between two loop turns; a reader that finds it full simply waits.
// Flusher reports come from flusher goroutines, at most one per client whose
// socket was full; 1024 lets many report without parking. Records:
// 1024 lets the Kafka goroutines run ahead of one fan-out by about a second of
// peak feed; when full, the consumer waits and Kafka holds the backlog.
const (
	ctrlQueue    = 256
	handoffQueue = 1024
	publishQueue = 1024
)

type eventKind uint8

const (
	evRegister eventKind = iota + 1
	evUnregister
	evRequest
	evReply
	evSync
	evDrain
	evResumed
	evPermit
)

type event struct {
	kind   eventKind
	client *Client
	req    protocol.Request
	err    *protocol.Error
	done   chan struct{}
	after  time.Duration // evDrain: the reconnect delay
	rec    *recovery     // evResumed: a Kafka catch-up's result
	permit Permit        // evPermit
}

// handoff is a flusher reporting its write out (or failed).
type handoff struct {
	c      *Client
	failed bool
}

// loop runs rounds until ctx ends.
func (h *Hub) loop(ctx context.Context) {
	var marks <-chan time.Time
	if h.cfg.MarkInterval > 0 {
		t := time.NewTicker(h.cfg.MarkInterval)
		defer t.Stop()
		marks = t.C
	}
	defer func() {
		if h.ticker != nil {
			h.ticker.Stop()
		}
	}()
	for {
		// A round: the control events waiting (up to roundControl; they go first:
		// they are few, readers are rate-limited, and must never wait behind a
		// record flood), or the records already waiting (up to roundRecords), and
		// then one write (in chunks of about 64 KiB while its socket takes them)
		// per client that got something. Under load more records wait per round,
		// so each client's messages leave in fewer, bigger writes.
		select {
		case ev := <-h.ctrl:
			h.handle(ev)
			h.moreControl()
		default:
			select {
			case ev := <-h.ctrl:
				h.handle(ev)
				h.moreControl()
			case r := <-h.next:
				h.handoff(r)
				h.moreHandoffs()
			case m := <-h.pub:
				h.fanout(m)
				h.moreRecords()
			case <-marks:
				h.mark()
			case <-h.ticks:
				h.tock()
			case <-ctx.Done():
				return
			}
		}
		h.unindex()
		h.applyUndeferred()
		h.writeDirty()
	}
}

// roundRecords bounds the records of one round: every record waiting, up to a
// queue's worth. A server that keeps up takes one record per round, so every
// message leaves at once; one that is behind takes many, and each client's
// share leaves in one write: the writes per round stay about the same while
// the messages per write grow with the backlog, which is how it catches up.
// (A queue grown past the kept slice is left to the garbage collector after the
// round: allocation only under overload.)
const roundRecords = publishQueue

// moreRecords fans out the records already waiting, up to a round's worth.
func (h *Hub) moreRecords() {
	for range roundRecords - 1 {
		select {
		case m := <-h.pub:
			h.fanout(m)
		default:
			return
		}
	}
}

// roundControl bounds the control events of one round. Replies to requests a
// client sent together (an auth and the subscribe right behind it) then leave
// in one write, and a connect storm's replies in fewer rounds; a reply waits
// for at most this many other events.
const roundControl = 32

// moreControl handles the control events already waiting, up to a round's
// worth. Before each, the requests a finished resume released are applied, so a
// client's replies keep their order, and dropped clients are unindexed (one
// dropped by those requests stays indexed, gone, until the next: harmless, as
// no control event walks the index).
func (h *Hub) moreControl() {
	for range roundControl - 1 {
		h.unindex()
		h.applyUndeferred()
		select {
		case ev := <-h.ctrl:
			h.handle(ev)
		default:
			return
		}
	}
}

// moreHandoffs takes the flusher reports already waiting, up to a queue's worth.
func (h *Hub) moreHandoffs() {
	for range handoffQueue - 1 {
		select {
		case r := <-h.next:
			h.handoff(r)
		default:
			return
		}
	}
}

// apply applies a request, an error reply or a permit.
func (h *Hub) apply(ev event) {
	switch ev.kind {
	case evRequest:
		h.request(ev.client, ev.req)
		return
	case evPermit:
		h.permit(ev.client, ev.permit)
		return
	}
	h.metrics.ProtocolErrors.WithLabelValues(ev.err.Code).Inc()
	h.enqueue(ev.client, protocol.EncodeError(ev.err))
}

// handle applies one control event; a call's done is closed once it is handled
// (a Sync's later: settle or drop).
func (h *Hub) handle(ev event) {
	switch ev.kind {
	case evRegister:
		h.clients[ev.client] = struct{}{}
	case evUnregister:
		h.drop(ev.client)
		h.unindex()
		delete(h.clients, ev.client)
	case evRequest, evReply, evPermit:
		if c := ev.client; c.recovering != nil && !c.gone {
			h.deferEvent(c, ev) // its reply must follow the resume's
			return
		}
		h.apply(ev)
	case evDrain:
		h.drain(ev.client, ev.after)
	case evResumed:
		h.resumed(ev.rec)
	case evSync:
		if c := ev.client; !c.gone && (len(c.pending) > 0 || c.flushing || c.recovering != nil) {
			// Released by settle or drop, when the queue is out or c is gone.
			ev.client.syncs = append(ev.client.syncs, ev.done)
			return
		}
	}
	if ev.done != nil {
		close(ev.done)
	}
}
