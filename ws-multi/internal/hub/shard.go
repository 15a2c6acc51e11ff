package hub

import (
	"context"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// pingSlots spreads pings over the ping interval: every PingInterval/pingSlots the shard
// pings the clients whose id falls in the current slot, so 10K clients never start 10K
// ping goroutines at the same instant.
const pingSlots = 16

type eventKind uint8

const (
	evRegister eventKind = iota + 1
	evUnregister
	evRequest
	evReply
	evCloseAll
	evCall
)

// event is a control event for a shard: everything except Kafka records and hand-offs.
type event struct {
	kind   eventKind
	client *Client
	req    protocol.Request
	msg    *protocol.Message
	reason Reason
	fn     func()        // evCall: run in the shard goroutine
	done   chan struct{} // closed once the shard handled the event, when set
}

// handoff is a writer reporting its batch written (or failed) and asking for the next.
type handoff struct {
	c      *Client
	spare  []*protocol.Message
	failed bool
}

// Writer slots, per shard. The Go run queue is first in, first out: with a writer per busy
// client runnable at once (thousands under load), the shard goroutines, sarama's fetch hops,
// readers and ping timers each waited behind all of them, and the shards' own fan-out came
// late. So at most defaultMaxWriters batches of a shard are out at once; clients with
// messages beyond that wait in the shard's FIFO while their queues grow into bigger batches.
// 128 per shard keeps each core busy (a batch is one write syscall, ~10-20 µs here) while
// bounding a hop's wait to a few milliseconds. A batch out for longer than
// defaultStallAfter is a socket that is not draining: it stops counting, so slow clients
// cannot hold every slot (their write timeout and queue limit deal with them). The same
// design as ws-single's hub, per shard.
const (
	defaultMaxWriters = 128
	defaultStallAfter = 20 * time.Millisecond
)

// Channel sizes. 256 control events absorb a burst of connects, requests and disconnects
// while the shard fans a record out; a full queue blocks only the sending client's reader,
// never Kafka. 1024 records absorb a Kafka fetch burst so partition goroutines rarely wait
// on a shard mid fan-out (entries are shared pointers). 1024 hand-offs: at most one per
// client with a batch out, and at most maxWriters of those count, so writers rarely park
// on a full channel.
const (
	ctrlQueue    = 256
	publishQueue = 1024
	handoffQueue = 1024
)

// subscribers is the list of clients of one channel in one shard. A slice, not a map, so
// fan-out is a linear scan; each client remembers its index (Client.subs) for O(1) removal.
type subscribers struct {
	clients []*Client
}

// shard owns a subset of the connections, their subscription index and their send queues;
// one goroutine (run) reads and writes all of it, so none of it has a lock.
type shard struct {
	index int
	hub   *Hub
	ctrl  chan event
	pub   chan *protocol.Message
	next  chan handoff
	done  chan struct{} // closed when run returns
	load  atomic.Int64  // registered connections, read by Hub.pick

	clients   map[*Client]struct{}
	channels  map[string]*subscribers // plain channel -> subscribers
	wildcards map[string]*subscribers // topic -> subscribers of "<topic>:*"
	draining  bool
	slow      []*Client // clients cut during the current fan-out, dropped after it
	pingSlot  uint64

	// Writer slots (see defaultMaxWriters).
	maxWriters int
	stallAfter time.Duration
	out        []*Client // clients whose batch is out and counts
	ready      []*Client // FIFO of clients waiting for a writer slot, from readyHead
	readyHead  int
	stall      *time.Timer // checks out for stalled batches while any is out
	stallArmed bool
	epoch      time.Time // Client.outAt counts from here

	depth     prometheus.Gauge
	fanoutObs prometheus.Observer
}

// send queues a control event; it gives up when the shard stopped.
func (s *shard) send(ev event) {
	select {
	case s.ctrl <- ev:
	case <-s.done:
	}
}

// call sends ev and waits until the shard handled it (or stopped).
func (s *shard) call(ev event) {
	ev.done = make(chan struct{})
	select {
	case s.ctrl <- ev:
	case <-s.done:
		return
	}
	select {
	case <-ev.done:
	case <-s.done:
	}
}

func (s *shard) run(ctx context.Context) {
	defer close(s.done)
	var tick <-chan time.Time
	if iv := s.hub.cfg.PingInterval; iv > 0 {
		t := time.NewTicker(max(iv/pingSlots, time.Millisecond))
		defer t.Stop()
		tick = t.C
	}
	s.stall = time.NewTimer(time.Hour)
	s.stall.Stop()
	defer s.stall.Stop()
	for {
		// Control events first: a flood of records must not delay connects, disconnects and
		// replies.
		select {
		case ev := <-s.ctrl:
			s.handle(ctx, ev)
			continue
		default:
		}
		// Then a fair choice. Hand-offs are taken in bulk, records one at a time: under
		// overload one record's fan-out alternates with up to a queue's worth of hand-offs,
		// so neither side starves and batches grow with the load.
		select {
		case ev := <-s.ctrl:
			s.handle(ctx, ev)
		case r := <-s.next:
			s.handoff(r)
			s.moreHandoffs()
		case m := <-s.pub:
			s.fanout(m)
		case <-s.stall.C:
			s.releaseStalled()
		case <-tick:
			s.ping(ctx)
			s.depth.Set(float64(len(s.pub) + len(s.ctrl)))
		case <-ctx.Done():
			return
		}
	}
}

// moreHandoffs answers the hand-offs already waiting, up to a queue's worth.
func (s *shard) moreHandoffs() {
	for range handoffQueue - 1 {
		select {
		case r := <-s.next:
			s.handoff(r)
		default:
			return
		}
	}
}

func (s *shard) handle(ctx context.Context, ev event) {
	c := ev.client
	switch ev.kind {
	case evRegister:
		s.clients[c] = struct{}{}
		if s.draining {
			s.drop(c)
			c.Kill(ReasonShutdown)
		}
	case evUnregister:
		s.drop(c)
		delete(s.clients, c)
		s.load.Add(-1)
	case evRequest:
		if !c.gone {
			s.request(c, ev.req)
		}
	case evReply:
		if !c.gone {
			s.enqueue(c, ev.msg)
			s.dropSlow()
		}
	case evCloseAll:
		s.draining = true
		for c := range s.clients {
			s.drop(c)
			c.Kill(ev.reason)
		}
	case evCall:
		ev.fn()
	}
	if ev.done != nil {
		close(ev.done)
	}
}

// request applies a subscribe, unsubscribe or ping and queues its reply.
func (s *shard) request(c *Client, req protocol.Request) {
	m := s.hub.metrics
	var reply *protocol.Message
	switch req.Op {
	case protocol.OpPing:
		reply = protocol.Pong(req.ID, req.HasID)
	case protocol.OpSubscribe:
		added := 0
		for _, ch := range req.Channels {
			if _, ok := c.subs[ch]; !ok {
				added++
			}
		}
		if len(c.subs)+added > s.hub.cfg.MaxSubscriptions {
			m.ProtocolErrors.WithLabelValues(protocol.CodeTooManySubscriptions).Inc()
			reply = protocol.ErrorReply(req.ID, req.HasID, protocol.CodeTooManySubscriptions,
				"subscribing would pass the limit of "+itoa(s.hub.cfg.MaxSubscriptions)+" channels")
			break
		}
		for _, ch := range req.Channels {
			if _, ok := c.subs[ch]; !ok {
				s.subscribe(c, ch)
			}
		}
		m.Subscriptions.Add(float64(added))
		reply = protocol.Reply(protocol.OpSubscribe, req.ID, req.HasID, req.Channels)
	case protocol.OpUnsubscribe:
		removed := 0
		for _, ch := range req.Channels {
			if _, ok := c.subs[ch]; ok {
				s.unsubscribe(c, ch)
				removed++
			}
		}
		m.Subscriptions.Sub(float64(removed))
		reply = protocol.Reply(protocol.OpUnsubscribe, req.ID, req.HasID, req.Channels)
	}
	s.enqueue(c, reply)
	s.dropSlow()
}

// list returns the subscriber list of a subscription name, creating it when create is set.
func (s *shard) list(name string, create bool) *subscribers {
	index, key := s.channels, name
	if topic, ok := protocol.WildcardTopic(name); ok {
		index, key = s.wildcards, topic
	}
	l := index[key]
	if l == nil && create {
		l = &subscribers{}
		index[key] = l
	}
	return l
}

func (s *shard) subscribe(c *Client, name string) {
	l := s.list(name, true)
	c.subs[name] = len(l.clients)
	l.clients = append(l.clients, c)
	if len(l.clients) == 1 {
		s.hub.channels.add(name, 1)
	}
}

func (s *shard) unsubscribe(c *Client, name string) {
	l := s.list(name, false)
	i := c.subs[name]
	last := len(l.clients) - 1
	moved := l.clients[last]
	l.clients[i] = moved
	moved.subs[name] = i
	l.clients[last] = nil
	l.clients = l.clients[:last]
	delete(c.subs, name)
	if last == 0 {
		if topic, ok := protocol.WildcardTopic(name); ok {
			delete(s.wildcards, topic)
		} else {
			delete(s.channels, name)
		}
		s.hub.channels.add(name, -1)
	}
}

// drop ends every delivery to c: its queue and its subscriptions, at once. A writer of c's
// parked for a slot is told to end; a batch out ends at its hand-off.
func (s *shard) drop(c *Client) {
	c.gone = true
	clear(c.pending)
	c.pending, c.spare, c.pendingBytes = nil, nil, 0
	if c.waiting {
		c.waiting, c.writing = false, false
		c.batch <- nil
	}
	if c.removed {
		return
	}
	c.removed = true
	n := len(c.subs)
	for name := range c.subs {
		s.unsubscribe(c, name)
	}
	s.hub.metrics.Subscriptions.Sub(float64(n))
}

// fanout queues one record for every subscriber in this shard: subscribers of its channel,
// then subscribers of its topic's wildcard that are not also subscribed to the channel (a
// client gets a record once). No allocation per recipient: the message is shared.
func (s *shard) fanout(m *protocol.Message) {
	start := time.Now()
	exact := s.channels[m.Channel]
	if exact != nil {
		for _, c := range exact.clients {
			s.enqueue(c, m)
		}
	}
	if wild := s.wildcards[m.Topic]; wild != nil && protocol.MatchesWildcard(m.Topic, m.Channel) {
		for _, c := range wild.clients {
			if exact != nil {
				if _, dup := c.subs[m.Channel]; dup {
					continue
				}
			}
			s.enqueue(c, m)
		}
	}
	s.dropSlow()
	s.fanoutObs.Observe(time.Since(start).Seconds())
	s.depth.Set(float64(len(s.pub) + len(s.ctrl)))
}

// enqueue puts m on c's send queue and starts c's writer (or queues c for a writer slot)
// when none runs. A client whose queue would pass a limit is cut as slow; it leaves the index
// after the current fan-out, since dropping edits the lists being iterated.
func (s *shard) enqueue(c *Client, m *protocol.Message) {
	if c.gone {
		return
	}
	cfg := &s.hub.cfg
	queued := len(c.pending) + c.inflight
	if queued > 0 && (queued >= cfg.SendQueueMessages || c.pendingBytes+c.inflightB+len(m.Data) > cfg.SendQueueBytes) {
		s.hub.metrics.SendQueueOverflow.Inc()
		if ce := s.hub.log.Check(zap.DebugLevel, "send queue overflow: client cut as slow"); ce != nil {
			ce.Write(zap.Uint64("conn", c.id), zap.Int("shard", s.index))
		}
		c.Kill(ReasonSlow)
		c.gone = true // nothing more is queued; drop, after the fan-out, clears the queue
		s.slow = append(s.slow, c)
		return
	}
	c.pending = append(c.pending, m)
	c.pendingBytes += len(m.Data)
	if !c.writing && !c.queued {
		if len(s.out) < s.maxWriters {
			s.start(c)
		} else {
			s.enqueueReady(c)
		}
	}
}

func (s *shard) dropSlow() {
	for i, c := range s.slow {
		s.drop(c)
		s.slow[i] = nil
	}
	s.slow = s.slow[:0]
}

// start hands c's pending queue out as a batch in a writer slot: to its parked writer, or
// to a new writer goroutine.
func (s *shard) start(c *Client) {
	batch := s.take(c)
	s.acquire(c)
	if c.waiting {
		c.waiting = false
		c.batch <- batch
		return
	}
	c.writing = true
	c.wg.Add(1)
	go s.hub.writeLoop(s, c, batch)
}

// take hands c's pending queue to its writer and keeps the spare slice for the next
// messages: one swap per batch, never per message.
func (s *shard) take(c *Client) []*protocol.Message {
	batch := c.pending
	c.inflight, c.inflightB = len(batch), c.pendingBytes
	c.pending, c.spare, c.pendingBytes = c.spare, nil, 0
	return batch
}

// handoff answers a writer that finished a batch: the next batch, or nil to end the writer
// when the queue is empty or the client is gone.
func (s *shard) handoff(r handoff) {
	c := r.c
	clear(r.spare)
	c.inflight, c.inflightB = 0, 0
	s.release(c)
	if r.failed {
		// The socket failed or timed out (the writer killed the client then): the reader
		// finishes the client; until then nothing more is queued for it.
		s.drop(c)
	}
	switch {
	case c.gone || len(c.pending) == 0:
		c.writing = false
		if !c.gone {
			c.spare = reusable(r.spare)
			c.pending = reusable(c.pending)
		}
		c.batch <- nil
	case len(s.out) < s.maxWriters && s.readyHead == len(s.ready):
		// A free slot and nobody waiting: the next batch at once.
		c.spare = r.spare[:0]
		s.acquire(c)
		c.batch <- s.take(c)
	default:
		// Others wait for a slot: c's writer parks at the end of the line, and its queue
		// keeps growing into a bigger batch meanwhile.
		c.spare = r.spare[:0]
		c.waiting = true
		s.enqueueReady(c)
	}
	s.fill()
}

// enqueueReady puts c at the tail of the FIFO of clients waiting for a slot.
func (s *shard) enqueueReady(c *Client) {
	c.queued = true
	s.ready = append(s.ready, c)
}

// fill gives free writer slots to the clients waiting longest. Clients that went away
// meanwhile are skipped (a parked writer of theirs was answered nil by drop).
func (s *shard) fill() {
	for len(s.out) < s.maxWriters && s.readyHead < len(s.ready) {
		c := s.ready[s.readyHead]
		s.ready[s.readyHead] = nil
		s.readyHead++
		c.queued = false
		if c.gone || len(c.pending) == 0 {
			continue
		}
		s.start(c)
	}
	// Keep the FIFO's slice from growing under sustained load: move the live part down
	// once the consumed head is at least half of it.
	if s.readyHead > 0 && 2*s.readyHead >= len(s.ready) {
		n := copy(s.ready, s.ready[s.readyHead:])
		clear(s.ready[n:])
		s.ready, s.readyHead = s.ready[:n], 0
	}
}

// acquire counts c's batch, just handed out, in a writer slot.
func (s *shard) acquire(c *Client) {
	c.slot = len(s.out)
	c.outAt = time.Since(s.epoch)
	s.out = append(s.out, c)
	if !s.stallArmed {
		s.stallArmed = true
		s.stall.Reset(s.stallAfter)
	}
}

// release frees c's writer slot, if its batch still counts.
func (s *shard) release(c *Client) {
	i := c.slot
	if i < 0 {
		return
	}
	last := len(s.out) - 1
	s.out[i] = s.out[last]
	s.out[i].slot = i
	s.out[last] = nil
	s.out = s.out[:last]
	c.slot = -1
}

// releaseStalled runs when the stall timer fires: batches out for longer than stallAfter
// stop counting, so clients that wait for a slot get one.
func (s *shard) releaseStalled() {
	s.stallArmed = false
	now := time.Since(s.epoch)
	for i := 0; i < len(s.out); {
		if c := s.out[i]; now-c.outAt >= s.stallAfter {
			s.release(c) // moves the last one to i
			continue
		}
		i++
	}
	s.fill()
	if len(s.out) > 0 {
		s.stallArmed = true
		s.stall.Reset(s.stallAfter / 2)
	}
}

// ping pings the clients of the current slot.
func (s *shard) ping(ctx context.Context) {
	slot := s.pingSlot % pingSlots
	s.pingSlot++
	for c := range s.clients {
		if c.id%pingSlots == slot {
			c.startPing(ctx, s.hub.cfg.WriteTimeout)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
