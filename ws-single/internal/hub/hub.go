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
	// MaxSubscriptions is how many channels one client may subscribe to.
	MaxSubscriptions int
	// SendQueueMessages and SendQueueBytes bound one client's queue (pending
	// plus being written); past either the client is cut as slow.
	SendQueueMessages int
	SendQueueBytes    int

	// maxWriters and stallAfter override defaultMaxWriters and
	// defaultStallAfter (tests only).
	maxWriters int
	stallAfter time.Duration
}

// Writer admission. On one P the runtime's run queue is FIFO: every runnable
// writer goroutine runs before a goroutine readied after it, and the Kafka
// consumer's goroutines (sarama's fetch loop is several goroutine hops per
// fetch) would wait behind every client's writer at each hop. So at most
// defaultMaxWriters batches are out at once; clients with messages beyond that
// wait in a FIFO (their messages keep batching meanwhile). 128 writers keep the
// core busy (a batch is one write syscall, ~10-20 us) while bounding a hop's
// wait to a few milliseconds. A batch out for longer than defaultStallAfter is
// a socket that is not draining: it stops counting, so slow clients cannot
// hold every slot (their write timeout and queue limit deal with them).
const (
	defaultMaxWriters = 128
	defaultStallAfter = 20 * time.Millisecond
)

// Channel sizes. Control events come from reader goroutines (one per client,
// each rate-limited) and must never wait behind Kafka records, so they have
// their own channel which the loop drains first. 256 absorbs a reconnect storm's
// registrations between two loop turns; a reader that finds it full simply waits.
// Hand-off requests come from writer goroutines, at most one outstanding per
// client; 1024 lets a whole fan-out's writers report without parking. Records:
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

// handoff is a writer reporting its batch written (or failed) and asking for the next.
type handoff struct {
	c      *Client
	spare  []*Message
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

	// Writer admission (see defaultMaxWriters), owned by the loop.
	maxWriters int
	stallAfter time.Duration
	out        []*Client // clients whose batch is out and counts
	ready      []*Client // FIFO of clients waiting for a writer slot, from readyHead
	readyHead  int
	stall      *time.Timer // checks out for stalled batches while any is out
	stallArmed bool
	epoch      time.Time // Client.outAt counts from here
}

// New returns a hub; call Run to start it.
func New(cfg Config, m *metrics.Metrics) *Hub {
	if cfg.maxWriters <= 0 {
		cfg.maxWriters = defaultMaxWriters
	}
	if cfg.stallAfter <= 0 {
		cfg.stallAfter = defaultStallAfter
	}
	return &Hub{
		maxWriters: cfg.maxWriters,
		epoch:      time.Now(),
		stallAfter: cfg.stallAfter,
		cfg:        cfg,
		m:          m,
		ctrl:       make(chan event, ctrlQueue),
		next:       make(chan handoff, handoffQueue),
		pub:        make(chan *Message, publishQueue),
		done:       make(chan struct{}),
		clients:    make(map[*Client]struct{}),
		exact:      make(map[string]*clientSet),
		wild:       make(map[string]*clientSet),
	}
}

// Run is the hub loop; it returns nil when ctx ends. Clients still registered
// then are dropped without a word: the server drains them before stopping the hub.
func (h *Hub) Run(ctx context.Context) error {
	defer close(h.done)
	h.stall = time.NewTimer(time.Hour)
	h.stall.Stop()
	defer h.stall.Stop()
	for {
		// Control events first: they are few (readers are rate-limited) and
		// must never wait behind a record flood.
		select {
		case ev := <-h.ctrl:
			h.handle(ev)
			h.unindex()
			continue
		default:
		}
		// Then a fair choice. Hand-offs are taken in bulk, records one at a
		// time: under overload one record (a fan-out to every subscriber)
		// alternates with up to a queue's worth of hand-offs, so neither side
		// starves and batches grow with the load.
		select {
		case ev := <-h.ctrl:
			h.handle(ev)
		case r := <-h.next:
			h.handoff(r)
			h.moreHandoffs()
		case m := <-h.pub:
			h.broadcast(m)
		case <-h.stall.C:
			h.releaseStalled()
		case <-ctx.Done():
			return nil
		}
		h.unindex()
	}
}

// moreHandoffs answers the hand-offs already waiting, up to a queue's worth.
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
// so, after which no writer starts for c: then call c.Wait.
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
	if c.waiting {
		// Its writer is parked for a slot: end it (it leaves the FIFO lazily).
		c.waiting, c.writing = false, false
		c.batch <- nil
	}
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

// enqueue appends m to c's queue, cuts c when the queue passes a limit, and
// starts c's writer when none runs.
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
	if !c.writing && !c.queued {
		if len(h.out) < h.maxWriters {
			h.start(c)
		} else {
			h.enqueueReady(c)
		}
	}
}

// start hands c's pending queue out as a batch in a writer slot: to its
// parked writer, or to a new writer goroutine.
func (h *Hub) start(c *Client) {
	batch := h.take(c)
	h.acquire(c)
	if c.waiting {
		c.waiting = false
		c.batch <- batch
		return
	}
	c.writing = true
	c.writers.Add(1)
	go h.writeLoop(c, batch)
}

// enqueueReady puts c at the tail of the FIFO of clients waiting for a slot.
func (h *Hub) enqueueReady(c *Client) {
	c.queued = true
	h.ready = append(h.ready, c)
}

// fill gives free writer slots to the clients waiting longest. Clients that
// went away meanwhile are skipped (a parked writer of theirs was answered nil
// by drop).
func (h *Hub) fill() {
	for len(h.out) < h.maxWriters && h.readyHead < len(h.ready) {
		c := h.ready[h.readyHead]
		h.ready[h.readyHead] = nil
		h.readyHead++
		c.queued = false
		if c.gone || len(c.pending) == 0 {
			continue
		}
		h.start(c)
	}
	// Keep the FIFO's slice from growing under sustained load: move the
	// live part down once the consumed head is at least half of it.
	if h.readyHead > 0 && 2*h.readyHead >= len(h.ready) {
		n := copy(h.ready, h.ready[h.readyHead:])
		clear(h.ready[n:])
		h.ready, h.readyHead = h.ready[:n], 0
	}
}

// acquire counts c's batch, just handed out, in a writer slot.
func (h *Hub) acquire(c *Client) {
	c.slot = len(h.out)
	c.outAt = time.Since(h.epoch)
	h.out = append(h.out, c)
	if !h.stallArmed {
		h.stallArmed = true
		h.stall.Reset(h.stallAfter)
	}
}

// release frees c's writer slot, if its batch still counts.
func (h *Hub) release(c *Client) {
	i := c.slot
	if i < 0 {
		return
	}
	last := len(h.out) - 1
	h.out[i] = h.out[last]
	h.out[i].slot = i
	h.out[last] = nil
	h.out = h.out[:last]
	c.slot = -1
}

// releaseStalled runs when the stall timer fires: batches out for longer than
// stallAfter stop counting, so clients that wait for a slot get one.
func (h *Hub) releaseStalled() {
	h.stallArmed = false
	now := time.Since(h.epoch)
	for i := 0; i < len(h.out); {
		if c := h.out[i]; now-c.outAt >= h.stallAfter {
			h.release(c) // moves the last one to i
			continue
		}
		i++
	}
	h.fill()
	if len(h.out) > 0 {
		h.stallArmed = true
		h.stall.Reset(h.stallAfter / 2)
	}
}

// take hands c's pending queue to its writer and keeps the spare slice for
// the next messages: one swap per batch, never per message.
func (h *Hub) take(c *Client) []*Message {
	batch := c.pending
	c.inflightMsgs, c.inflightBytes = len(batch), c.pendingBytes
	c.pending, c.spare, c.pendingBytes = c.spare, nil, 0
	return batch
}

// handoff answers a writer that finished a batch: the next batch, or nil to
// end the writer when the queue is empty or the client is gone.
func (h *Hub) handoff(r handoff) {
	c := r.c
	clear(r.spare)
	c.inflightMsgs, c.inflightBytes = 0, 0
	h.release(c)
	if r.failed {
		h.drop(c)
	}
	switch {
	case c.gone || len(c.pending) == 0:
		c.writing = false
		c.spare = nil
		if !c.gone {
			c.spare = reusable(r.spare)
			c.pending = reusable(c.pending)
		}
		c.batch <- nil
	case len(h.out) < h.maxWriters && h.readyHead == len(h.ready):
		// A free slot and nobody waiting: the next batch at once.
		c.spare = r.spare[:0]
		h.acquire(c)
		c.batch <- h.take(c)
	default:
		// Others wait for a slot: c's writer parks at the end of the line,
		// and its queue keeps growing into a bigger batch meanwhile.
		c.spare = r.spare[:0]
		c.waiting = true
		h.enqueueReady(c)
	}
	h.fill()
}

// writeLoop is c's writer goroutine: it writes batch after batch and ends
// when the hub has nothing more for c.
func (h *Hub) writeLoop(c *Client, batch []*Message) {
	defer c.writers.Done()
	for {
		err := c.conn.Write(batch)
		select {
		case h.next <- handoff{c: c, spare: batch, failed: err != nil}:
		case <-h.done:
			return
		}
		select {
		case batch = <-c.batch:
		case <-h.done:
			return
		}
		if batch == nil {
			return
		}
	}
}
