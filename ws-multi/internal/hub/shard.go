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
// pings the clients of the current slot, so 10K clients never start 10K ping goroutines at
// the same instant. A client joins the slot whose tick came last when it registered, so its
// first ping comes one interval after it connected (to within a slot), as in ws-single,
// never moments after.
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

// handoff is a flusher reporting its hand-off out (or failed).
type handoff struct {
	c      *Client
	failed bool
}

// Channel sizes. 256 control events absorb a burst of connects, requests and disconnects
// while the shard fans a record out; a full queue blocks only the sending client's reader,
// never Kafka. 1024 records absorb a Kafka fetch burst so partition goroutines rarely wait
// on a shard mid fan-out (entries are shared pointers). 1024 flusher reports: one per client
// whose socket was full, which is rare while clients keep up.
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
	pingTicks uint64    // ping ticks so far; the next one pings slot pingTicks % pingSlots

	dirty []*Client  // clients with pending messages to write at the end of the round
	stats writeStats // figures of the round's writes, counted once at its end

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
	for {
		// A round: one event (control events first: a flood of records must not delay
		// connects, disconnects and replies), or the records already waiting (up to
		// roundRecords), and then one write per client that got something. Under load more
		// records wait per round, so each client's messages leave in fewer, bigger writes.
		select {
		case ev := <-s.ctrl:
			s.handle(ctx, ev)
		default:
			select {
			case ev := <-s.ctrl:
				s.handle(ctx, ev)
			case r := <-s.next:
				s.handoff(r)
				s.moreHandoffs()
			case m := <-s.pub:
				start := time.Now()
				s.fanout(m)
				s.moreRecords()
				s.writeDirty()
				s.fanoutObs.Observe(time.Since(start).Seconds())
				s.depth.Set(float64(len(s.pub) + len(s.ctrl)))
				continue
			case <-tick:
				s.ping(ctx)
				s.depth.Set(float64(len(s.pub) + len(s.ctrl)))
			case <-ctx.Done():
				return
			}
		}
		s.writeDirty()
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
func (s *shard) moreRecords() {
	for range roundRecords - 1 {
		select {
		case m := <-s.pub:
			s.fanout(m)
		default:
			return
		}
	}
}

// moreHandoffs takes the flusher reports already waiting, up to a queue's worth.
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
		c.pingSlot = uint8((s.pingTicks + pingSlots - 1) % pingSlots)
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

// drop ends every delivery to c: its queue and its subscriptions, at once. A hand-off being
// flushed ends with its flusher.
func (s *shard) drop(c *Client) {
	c.gone = true
	clear(c.pending)
	c.pending, c.pendingBytes = nil, 0
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
}

// enqueue puts m on c's send queue, to be written at the end of the round. A client whose
// queue would pass a limit is cut as slow; it leaves the index after the current fan-out,
// since dropping edits the lists being iterated.
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
	if !c.dirty && !c.flushing {
		c.dirty = true
		s.dirty = append(s.dirty, c)
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
// next messages wait in its queue until the flusher reports.
func (s *shard) writeDirty() {
	if len(s.dirty) == 0 {
		return
	}
	now := time.Now()
	for i, c := range s.dirty {
		s.dirty[i] = nil
		c.dirty = false
		if !c.gone && !c.flushing && len(c.pending) > 0 {
			s.write(c, now)
		}
	}
	s.dirty = s.dirty[:0]
	s.stats.count(s.hub.metrics)
}

// write writes c's queue.
func (s *shard) write(c *Client, now time.Time) {
	batch, bytes := c.pending, c.pendingBytes
	c.conn.Cork()
	w, err := s.hub.writeCorked(c.conn, batch)
	done, uerr := c.conn.TryUncork()
	if err == nil {
		err = uerr
	}
	clear(batch) // the bytes are in the cork: drop references so messages can be collected
	c.pending, c.pendingBytes = reusable(batch), 0
	switch {
	case err != nil:
		// The socket failed (a background drain timed out, the peer reset) or the connection
		// closed (a close frame went out): the reader finishes the client; until then nothing
		// more is queued for it.
		if timedOut(err) {
			c.Kill(ReasonWriteTimeout)
		}
		s.drop(c)
	case done:
		s.stats.add(w, now)
	default:
		c.flushing = true
		c.inflight, c.inflightB = len(batch), bytes
		c.owed = w
		c.wg.Add(1)
		go s.hub.flush(s, c)
	}
}

// handoff takes a flusher's report: the hand-off is out (counted now) or failed.
func (s *shard) handoff(r handoff) {
	c := r.c
	c.flushing = false
	c.inflight, c.inflightB = 0, 0
	if r.failed {
		// The socket failed or timed out (the flusher killed the client then): the reader
		// finishes the client; until then nothing more is queued for it.
		s.drop(c)
		return
	}
	s.stats.add(c.owed, time.Now())
	c.owed = written{}
	if !c.gone && len(c.pending) > 0 && !c.dirty {
		c.dirty = true
		s.dirty = append(s.dirty, c)
	}
}

// ping pings the clients of the current slot.
func (s *shard) ping(ctx context.Context) {
	slot := s.pingTicks % pingSlots
	s.pingTicks++
	for c := range s.clients {
		if uint64(c.pingSlot) == slot {
			c.startPing(ctx, s.hub.cfg.WriteTimeout)
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
