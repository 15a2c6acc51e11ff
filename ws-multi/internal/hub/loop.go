package hub

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/adred-codev/ws_poc/ws-multi/internal/history"
	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
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

// event is a control event for a shard: everything except Kafka records and hand-offs.
type event struct {
	kind   eventKind
	client *Client
	req    protocol.Request
	err    *protocol.Error // evReply
	done   chan struct{}   // closed once the shard handled the event (evSync: once c's queue is out), when set
	after  time.Duration   // evDrain: the reconnect delay
	rec    *recovery       // evResumed: a Kafka catch-up's result
	permit Permit          // evPermit
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
	slow      []*Client               // clients cut during the current fan-out, dropped after it

	dirty []*Client  // clients with pending messages to write at the end of the round
	stats writeStats // figures of the round's writes, counted once at its end

	// Positions and resume (resume.go, mark.go).
	seen       map[history.Part]int64  // per partition, the last offset this shard fanned out: its frontier
	topics     map[string]*subscribers // topic -> clients subscribed to any of its channels (gaps, marks)
	marked     map[string][]int64      // topic -> the positions of its last mark, in partition order
	undeferred []*Client               // clients whose resume was aborted in the current round, with requests deferred
	ctx        context.Context         // run's, for catch-ups
	catchups   sync.WaitGroup          // running Kafka catch-ups; run waits for them

	// Interval conflation (interval.go).
	ivSubs   map[ivKey]*subscribers    // (channel or wildcard, interval) -> subscribers
	ivTopics map[string]map[uint64]int // topic -> interval -> its subscriptions at it
	buckets  map[bucketKey]*bucket     // (topic partition, interval) -> its held records
	due      []*bucket                 // buckets holding records
	tick     uint64                    // ticks of the interval clock so far
	ticker   *time.Ticker              // the interval clock; nil while nobody needs it
	ticks    <-chan time.Time          // ticker's channel; nil (never ready) without it

	depth     prometheus.Gauge
	fanoutObs prometheus.Observer
}

// send queues a control event; it gives up when the shard stopped or ctx ends.
func (s *shard) send(ctx context.Context, ev event) error {
	if s.stopped() {
		return ErrStopped
	}
	select {
	case s.ctrl <- ev:
		return nil
	case <-s.done:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stopped reports whether the shard's loop has ended; checked first because a select with
// room in a buffered channel would otherwise pick at random.
func (s *shard) stopped() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// call sends ev and waits until the shard handled it (evSync: until the client's queue is
// out or the client is gone).
func (s *shard) call(ctx context.Context, ev event) error {
	ev.done = make(chan struct{})
	if err := s.send(ctx, ev); err != nil {
		return err
	}
	return s.wait(ctx, ev.done)
}

// wait waits until done is closed (the shard handled a queued event), the shard stopped or
// ctx ended.
func (s *shard) wait(ctx context.Context, done <-chan struct{}) error {
	select {
	case <-done:
		return nil
	case <-s.done:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *shard) run(ctx context.Context) {
	defer close(s.done)
	defer s.catchups.Wait() // they end with ctx; their reports find no reader
	s.ctx = ctx
	var marks <-chan time.Time
	if s.hub.cfg.MarkInterval > 0 {
		t := time.NewTicker(s.hub.cfg.MarkInterval)
		defer t.Stop()
		marks = t.C
	}
	defer func() {
		if s.ticker != nil {
			s.ticker.Stop()
		}
	}()
	for {
		// A round: the control events waiting (up to roundControl; they go first: a
		// flood of records must not delay connects, disconnects and replies), or the
		// flusher reports waiting, or the records already waiting (up to roundRecords),
		// or a mark, and then the requests deferred behind a resume the round aborted,
		// and one write per client that got something. Under load more records wait
		// per round, so each client's messages leave in fewer, bigger writes.
		var start time.Time // set in a record round: its fan-out and writes are observed
		select {
		case ev := <-s.ctrl:
			s.handle(ev)
			s.moreControl()
		default:
			select {
			case ev := <-s.ctrl:
				s.handle(ev)
				s.moreControl()
			case r := <-s.next:
				s.handoff(r)
				s.moreHandoffs()
			case m := <-s.pub:
				start = time.Now()
				s.fanout(m)
				s.moreRecords()
			case <-marks:
				s.mark()
			case <-s.ticks:
				s.tock()
			case <-ctx.Done():
				return
			}
		}
		if len(s.undeferred) > 0 {
			s.applyUndeferred()
		}
		s.writeDirty()
		if !start.IsZero() {
			s.fanoutObs.Observe(time.Since(start).Seconds())
			s.depth.Set(float64(len(s.pub) + len(s.ctrl)))
		}
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

// roundControl bounds the control events of one round. Replies to requests a
// client sent together (an auth and the subscribe right behind it) then leave in
// one write, and a connect storm's replies in fewer rounds; a reply waits for at
// most this many other events.
const roundControl = 32

// moreControl handles the control events already waiting, up to a round's worth.
// The requests a finished resume released are applied before the next event, as
// at a round's end, so a client's replies keep their order.
func (s *shard) moreControl() {
	for range roundControl - 1 {
		if len(s.undeferred) > 0 {
			s.applyUndeferred()
		}
		select {
		case ev := <-s.ctrl:
			s.handle(ev)
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

// apply applies a request, an error reply or a permit of c.
func (s *shard) apply(ev event) {
	c := ev.client
	switch ev.kind {
	case evRequest:
		if !c.gone {
			s.request(c, ev.req)
		}
		return
	case evPermit:
		s.permit(c, ev.permit)
		return
	}
	s.hub.metrics.ProtocolErrors.WithLabelValues(ev.err.Code).Inc()
	if !c.gone {
		s.enqueue(c, protocol.EncodeError(ev.err))
		s.dropSlow()
	}
}

func (s *shard) handle(ev event) {
	c := ev.client
	switch ev.kind {
	case evRegister:
		s.clients[c] = struct{}{}
	case evUnregister:
		s.drop(c)
		delete(s.clients, c)
		s.load.Add(-1)
	case evRequest, evReply, evPermit:
		if c.recovering != nil && !c.gone {
			s.deferEvent(c, ev) // its reply must follow the resume's
		} else {
			s.apply(ev)
		}
	case evDrain:
		s.drain(c, ev.after)
		s.dropSlow()
	case evResumed:
		s.resumed(ev.rec)
	case evSync:
		s.addSync(c, ev.done) // releaseSync closes done once c's queue is out (a resume reading Kafka included) or c is gone
		return
	}
	if ev.done != nil {
		close(ev.done)
	}
}
