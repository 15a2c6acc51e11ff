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
)

// event is a control event for a shard: everything except Kafka records.
type event struct {
	kind   eventKind
	client *Client
	req    protocol.Request
	msg    *protocol.Message
	reason Reason
	done   chan struct{}
}

// subscribers is the list of clients of one channel in one shard. A slice, not a map, so
// fan-out is a linear scan; each client remembers its index (Client.subs) for O(1) removal.
type subscribers struct {
	clients []*Client
}

// shard owns a subset of the connections and their subscription index; one goroutine (run)
// reads and writes all of it, so none of it has a lock.
type shard struct {
	index int
	hub   *Hub
	ctrl  chan event
	pub   chan *protocol.Message
	done  chan struct{} // closed when run returns
	load  atomic.Int64  // registered connections, read by Hub.pick

	clients   map[*Client]struct{}
	channels  map[string]*subscribers // plain channel -> subscribers
	wildcards map[string]*subscribers // topic -> subscribers of "<topic>:*"
	draining  bool
	slow      []*Client // clients cut during the current fan-out, dropped after it
	pingSlot  uint64

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

func (s *shard) run(ctx context.Context) {
	defer close(s.done)
	var tick <-chan time.Time
	if iv := s.hub.cfg.PingInterval; iv > 0 {
		t := time.NewTicker(max(iv/pingSlots, time.Millisecond))
		defer t.Stop()
		tick = t.C
	}
	for {
		// Control events first: a flood of records must not delay connects, disconnects and
		// replies. Records are not starved either: the second select picks at random.
		select {
		case ev := <-s.ctrl:
			s.handle(ctx, ev)
			continue
		default:
		}
		select {
		case ev := <-s.ctrl:
			s.handle(ctx, ev)
		case m := <-s.pub:
			s.fanout(m)
		case <-tick:
			s.ping(ctx)
			s.depth.Set(float64(len(s.pub) + len(s.ctrl)))
		case <-ctx.Done():
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
		if !c.removed {
			s.drop(c)
		}
		s.load.Add(-1)
	case evRequest:
		if !c.removed {
			s.request(c, ev.req)
		}
	case evReply:
		if !c.removed {
			s.enqueue(c, ev.msg)
			s.dropSlow()
		}
	case evCloseAll:
		s.draining = true
		for c := range s.clients {
			s.drop(c)
			c.Kill(ev.reason)
		}
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

// drop takes a client out of the shard's index: no record reaches it any more.
func (s *shard) drop(c *Client) {
	if c.removed {
		return
	}
	c.removed = true
	n := len(c.subs)
	for name := range c.subs {
		s.unsubscribe(c, name)
	}
	s.hub.metrics.Subscriptions.Sub(float64(n))
	delete(s.clients, c)
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

// enqueue puts m on c's send queue; a client whose queue is full is cut as slow. The client
// is dropped from the index after the current fan-out, since dropping edits the lists being
// iterated.
func (s *shard) enqueue(c *Client, m *protocol.Message) {
	if c.enqueue(m, s.hub.cfg.SendQueueMessages, s.hub.cfg.SendQueueBytes) {
		return
	}
	s.hub.metrics.SendQueueOverflow.Inc()
	if ce := s.hub.log.Check(zap.DebugLevel, "send queue overflow: client cut as slow"); ce != nil {
		ce.Write(zap.Uint64("conn", c.id), zap.Int("shard", s.index))
	}
	c.Kill(ReasonSlow)
	s.slow = append(s.slow, c)
}

func (s *shard) dropSlow() {
	for i, c := range s.slow {
		s.drop(c)
		s.slow[i] = nil
	}
	s.slow = s.slow[:0]
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
