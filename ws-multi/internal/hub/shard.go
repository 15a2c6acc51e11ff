package hub

import (
	"context"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

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
	evSync
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
	synced chan struct{} // evSync: closed once the client's queue is empty (Client.Sync)
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
	case evSync:
		s.addSync(c, ev.synced)
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
				"subscribe would pass the limit of "+itoa(s.hub.cfg.MaxSubscriptions)+" channels per client")
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
