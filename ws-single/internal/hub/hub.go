package hub

import (
	"context"
	"errors"
	"time"

	"github.com/adred-codev/ws_poc/ws-single/internal/metrics"
	"github.com/adred-codev/ws_poc/ws-single/internal/protocol"
)

// ErrStopped is returned by calls made after the hub loop has ended.
var ErrStopped = errors.New("hub: stopped")

// Config bounds what one client may hold.
type Config struct {
	// MaxSubscriptions is how many channels one client may subscribe to
	// (WS_MAX_SUBSCRIPTIONS).
	MaxSubscriptions int
	// SendQueueMessages and SendQueueBytes bound one client's queue (pending
	// plus the write in flight; WS_SEND_QUEUE_MESSAGES, WS_SEND_QUEUE_BYTES):
	// past either, a client that is not draining is cut as slow (see doc.go).
	SendQueueMessages int
	SendQueueBytes    int
	// WriteTimeout is how long a queue may stay past a limit before its client
	// is cut as slow even though its writes complete (WS_WRITE_TIMEOUT); 0
	// turns that rule off.
	WriteTimeout time.Duration
}

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
	evRegister eventKind = iota
	evUnregister
	evRequest
	evReply
	evEach
	evSync
)

type event struct {
	kind eventKind
	c    *Client
	req  protocol.Request
	err  *protocol.Error
	fn   func(Conn)
	done chan struct{}
}

// handoff is a flusher reporting its write out (or failed).
type handoff struct {
	c      *Client
	failed bool
}

// Hub owns every client and the subscription index in one goroutine (Run);
// see doc.go for the design and its invariants.
type Hub struct {
	cfg  Config
	m    *metrics.Metrics
	ctrl chan event
	next chan handoff
	pub  chan *Message
	done chan struct{}
	now  func() time.Time // the slow rule's clock; time.Now but in tests

	// Owned by the loop goroutine.
	clients       map[*Client]struct{}
	exact         map[string]*clientSet // channel -> subscribers
	wild          map[string]*clientSet // topic -> "<topic>:*" subscribers
	subscriptions int
	seq           uint64
	dropped       []*Client // dropped during the current event, to unindex
	dirty         []*Client // clients with pending messages, written at the end of the round
}

// New returns a hub; call Run to start it.
func New(cfg Config, m *metrics.Metrics) *Hub {
	return &Hub{
		cfg:     cfg,
		m:       m,
		ctrl:    make(chan event, ctrlQueue),
		next:    make(chan handoff, handoffQueue),
		pub:     make(chan *Message, publishQueue),
		done:    make(chan struct{}),
		now:     time.Now,
		clients: make(map[*Client]struct{}),
		exact:   make(map[string]*clientSet),
		wild:    make(map[string]*clientSet),
	}
}

// Run is the hub loop; it returns nil when ctx ends. Clients still registered
// then are dropped without a word: the server drains them before stopping the hub.
func (h *Hub) Run(ctx context.Context) error {
	defer close(h.done)
	for {
		// A round: one event (control events first: they are few, readers are
		// rate-limited, and must never wait behind a record flood), or the
		// records already waiting (up to roundRecords), and then one write (in
		// chunks of about 64 KiB while its socket takes them) per client that
		// got something. Under load more records wait per round, so each
		// client's messages leave in fewer, bigger writes.
		select {
		case ev := <-h.ctrl:
			h.handle(ev)
		default:
			select {
			case ev := <-h.ctrl:
				h.handle(ev)
			case r := <-h.next:
				h.handoff(r)
				h.moreHandoffs()
			case m := <-h.pub:
				h.broadcast(m)
				h.moreRecords()
			case <-ctx.Done():
				return nil
			}
		}
		h.unindex()
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
			h.broadcast(m)
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

func (h *Hub) send(ctx context.Context, ev event) error {
	if h.stopped() {
		return ErrStopped
	}
	select {
	case h.ctrl <- ev:
		return nil
	case <-h.done:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stopped reports whether the loop has ended; checked first because a select
// with room in a buffered channel would otherwise pick at random.
func (h *Hub) stopped() bool {
	select {
	case <-h.done:
		return true
	default:
		return false
	}
}

// call sends ev and waits until the loop has handled it.
func (h *Hub) call(ctx context.Context, ev event) error {
	ev.done = make(chan struct{})
	if err := h.send(ctx, ev); err != nil {
		return err
	}
	select {
	case <-ev.done:
		return nil
	case <-h.done:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Register adds c; it returns once the loop has done so.
func (h *Hub) Register(ctx context.Context, c *Client) error {
	return h.call(ctx, event{kind: evRegister, c: c})
}

// Unregister removes c and its subscriptions; it returns once the loop has done
// so, after which no flusher starts for c: then call c.Wait.
func (h *Hub) Unregister(ctx context.Context, c *Client) error {
	return h.call(ctx, event{kind: evUnregister, c: c})
}

// Handle queues a valid request of c; its reply goes through c's queue, after
// every message queued before it.
func (h *Hub) Handle(ctx context.Context, c *Client, req protocol.Request) error {
	return h.send(ctx, event{kind: evRequest, c: c, req: req})
}

// Reject queues the error reply for a request that failed to parse, in order
// with c's other replies.
func (h *Hub) Reject(ctx context.Context, c *Client, e *protocol.Error) error {
	return h.send(ctx, event{kind: evReply, c: c, err: e})
}

// Each calls fn for the connection of every registered client, in the loop
// goroutine; fn must not block. It returns once every call is done.
func (h *Hub) Each(ctx context.Context, fn func(Conn)) error {
	return h.call(ctx, event{kind: evEach, fn: fn})
}

// Sync is the barrier before a close that owes replies: it returns once every
// message queued for c before the call has been handed to c's connection, that
// is once c has no pending message and no write in flight, or c is gone (or ctx
// ends, or the hub stops). Replies to requests sent with Handle or Reject
// before Sync are queued before it.
func (h *Hub) Sync(ctx context.Context, c *Client) error {
	return h.call(ctx, event{kind: evSync, c: c})
}

// Publish hands a record's message to the loop for fan-out. It blocks while
// the loop is behind (bounded queue), which holds the backlog in Kafka.
func (h *Hub) Publish(ctx context.Context, m *Message) error {
	if h.stopped() {
		return ErrStopped
	}
	select {
	case h.pub <- m:
		return nil
	case <-h.done:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Hub) handle(ev event) {
	switch ev.kind {
	case evRegister:
		h.clients[ev.c] = struct{}{}
	case evUnregister:
		h.drop(ev.c)
		h.unindex()
		delete(h.clients, ev.c)
	case evRequest:
		h.request(ev.c, ev.req)
	case evReply:
		h.m.ProtocolErrors.WithLabelValues(ev.err.Code).Inc()
		h.enqueue(ev.c, &Message{Wire: protocol.EncodeError(ev.err)})
	case evEach:
		for c := range h.clients {
			ev.fn(c.conn)
		}
	case evSync:
		if !ev.c.gone && (len(ev.c.pending) > 0 || ev.c.flushing) {
			// Released by settle or drop, when the queue is out or c is gone.
			ev.c.syncs = append(ev.c.syncs, ev.done)
			return
		}
	}
	if ev.done != nil {
		close(ev.done)
	}
}
