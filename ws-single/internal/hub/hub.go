package hub

import (
	"context"
	"errors"

	"github.com/adred-codev/ws_poc/ws-single/internal/metrics"
	"github.com/adred-codev/ws_poc/ws-single/internal/protocol"
)

// ErrStopped is returned by calls made after the hub loop has ended.
var ErrStopped = errors.New("hub: stopped")

// Config bounds what one client may hold.
type Config struct {
	// MaxSubscriptions is how many channels one client may subscribe to.
	MaxSubscriptions int
	// SendQueueMessages and SendQueueBytes bound one client's queue (pending
	// plus being written); past either the client is cut as slow.
	SendQueueMessages int
	SendQueueBytes    int
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
		// records already waiting (up to roundRecords), and then one write per
		// client that got something. Under load more records wait per round, so
		// each client's messages leave in fewer, bigger writes.
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
	}
	if ev.done != nil {
		close(ev.done)
	}
}

func (h *Hub) request(c *Client, req protocol.Request) {
	if c.gone {
		return
	}
	switch req.Op {
	case protocol.OpSubscribe:
		added := 0
		for _, ch := range req.Channels {
			if _, ok := c.subs[ch]; !ok {
				added++
			}
		}
		if len(c.subs)+added > h.cfg.MaxSubscriptions {
			h.m.ProtocolErrors.WithLabelValues(protocol.CodeTooManySubscriptions).Inc()
			h.enqueue(c, &Message{Wire: protocol.EncodeError(&protocol.Error{
				Code:    protocol.CodeTooManySubscriptions,
				Message: "subscribe would pass the limit of subscriptions per client",
				ID:      req.ID, HasID: req.HasID,
			})})
			return
		}
		if c.subs == nil && added > 0 {
			c.subs = make(map[string]struct{}, added)
		}
		for _, ch := range req.Channels {
			if _, ok := c.subs[ch]; !ok {
				c.subs[ch] = struct{}{}
				h.subscribe(c, ch)
			}
		}
	case protocol.OpUnsubscribe:
		for _, ch := range req.Channels {
			if _, ok := c.subs[ch]; ok {
				delete(c.subs, ch)
				h.unsubscribe(c, ch)
			}
		}
	}
	h.enqueue(c, &Message{Wire: protocol.EncodeReply(req)})
}

func (h *Hub) sets(ch string) (map[string]*clientSet, string) {
	if topic, ok := protocol.WildcardTopic(ch); ok {
		return h.wild, topic
	}
	return h.exact, ch
}

func (h *Hub) subscribe(c *Client, ch string) {
	sets, key := h.sets(ch)
	s := sets[key]
	if s == nil {
		s = newClientSet()
		sets[key] = s
		h.m.Channels.Set(float64(len(h.exact) + len(h.wild)))
	}
	s.add(c)
	h.subscriptions++
	h.m.Subscriptions.Set(float64(h.subscriptions))
}

func (h *Hub) unsubscribe(c *Client, ch string) {
	sets, key := h.sets(ch)
	if s := sets[key]; s != nil {
		s.remove(c)
		if s.len() == 0 {
			delete(sets, key)
			h.m.Channels.Set(float64(len(h.exact) + len(h.wild)))
		}
	}
	h.subscriptions--
	h.m.Subscriptions.Set(float64(h.subscriptions))
}

// drop ends every delivery to c at once: its queue now, its subscriptions
// when the current event is done (broadcast may be walking them).
func (h *Hub) drop(c *Client) {
	if c.gone {
		return
	}
	c.gone = true
	clear(c.pending)
	c.pending, c.pendingBytes = nil, 0
	h.dropped = append(h.dropped, c)
}

// unindex removes the subscriptions of the clients dropped during an event.
func (h *Hub) unindex() {
	for i, c := range h.dropped {
		for ch := range c.subs {
			h.unsubscribe(c, ch)
		}
		c.subs = nil
		h.dropped[i] = nil
	}
	h.dropped = h.dropped[:0]
}

// broadcast fans m out to the subscribers of its channel and of its topic
// wildcard. It allocates nothing: each recipient gets the same *Message.
func (h *Hub) broadcast(m *Message) {
	h.seq++
	if s := h.exact[m.Channel]; s != nil {
		for _, c := range s.list {
			c.mark = h.seq
			h.enqueue(c, m)
		}
	}
	if !protocol.InTopic(m.Channel, m.Topic) {
		return
	}
	if s := h.wild[m.Topic]; s != nil {
		for _, c := range s.list {
			if c.mark == h.seq {
				continue // subscribed to the channel too: once is enough
			}
			h.enqueue(c, m)
		}
	}
}

// enqueue appends m to c's queue, to be written at the end of the round, and
// cuts c when the queue passes a limit.
func (h *Hub) enqueue(c *Client, m *Message) {
	if c.gone {
		return
	}
	c.pending = append(c.pending, m)
	c.pendingBytes += len(m.Wire)
	if len(c.pending)+c.inflightMsgs > h.cfg.SendQueueMessages ||
		c.pendingBytes+c.inflightBytes > h.cfg.SendQueueBytes {
		h.m.SendQueueOverflow.Inc()
		h.drop(c)
		c.conn.Overflow()
		return
	}
	if !c.dirty && !c.flushing {
		c.dirty = true
		h.dirty = append(h.dirty, c)
	}
}

// writeDirty ends a round: each client that got messages has them written,
// corked, and offered to its socket in one non-blocking syscall (Conn.Write).
// A socket that does not take everything at once (its peer reads slowly) gets
// a flusher goroutine for the rest, and the client's next messages wait in its
// queue until the flusher reports.
func (h *Hub) writeDirty() {
	for i, c := range h.dirty {
		h.dirty[i] = nil
		c.dirty = false
		if !c.gone && !c.flushing && len(c.pending) > 0 {
			h.write(c)
		}
	}
	h.dirty = h.dirty[:0]
	h.unindex() // clients whose socket failed
}

// write writes c's queue.
func (h *Hub) write(c *Client) {
	batch, bytes := c.pending, c.pendingBytes
	done, err := c.conn.Write(batch)
	clear(batch) // the bytes are in the cork: drop references so messages can be collected
	c.pending, c.pendingBytes = reusable(batch), 0
	switch {
	case err != nil:
		h.drop(c) // the connection ends itself (see Conn)
	case !done:
		c.flushing = true
		c.inflightMsgs, c.inflightBytes = len(batch), bytes
		c.flushers.Add(1)
		go h.flush(c)
	}
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
	c.inflightMsgs, c.inflightBytes = 0, 0
	if r.failed {
		h.drop(c)
		return
	}
	if !c.gone && len(c.pending) > 0 && !c.dirty {
		c.dirty = true
		h.dirty = append(h.dirty, c)
	}
}
