package hub

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/adred-codev/ws_poc/ws-multi/internal/history"
	"github.com/adred-codev/ws_poc/ws-multi/internal/metrics"
	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// ErrStopped is returned by Publish once the hub stopped.
var ErrStopped = errors.New("hub: stopped")

// Config holds the hub's limits. Zero values are not defaults: the server fills every field
// from config.Config.
type Config struct {
	Shards            int           // number of shards, >= 1 (WS_SHARDS, default GOMAXPROCS)
	MaxSubscriptions  int           // channels per client (WS_MAX_SUBSCRIPTIONS)
	SendQueueMessages int           // queued messages per client past which it is cut as slow unless it drains
	SendQueueBytes    int           // queued bytes per client past which it is cut as slow unless it drains
	WriteTimeout      time.Duration // longest a queue may stay past a limit (WS_WRITE_TIMEOUT)

	// MarkInterval is how often positioned subscribers get their topics' marks
	// (WS_MARK_INTERVAL); 0 sends none.
	MarkInterval time.Duration
	// ResumeMaxAge is the oldest since_ts a time replay may ask for (WS_RESUME_MAX_AGE);
	// 0 means no bound.
	ResumeMaxAge time.Duration
	// ResumeTimeout bounds one Kafka catch-up (WS_RESUME_TIMEOUT); 0 means no bound.
	ResumeTimeout time.Duration
}

// Validate reports a configuration the hub cannot run with.
func (c Config) Validate() error {
	switch {
	case c.Shards < 1:
		return fmt.Errorf("hub: shards %d: want at least 1", c.Shards)
	case c.SendQueueMessages < 1 || c.SendQueueBytes < 1:
		return fmt.Errorf("hub: send queue limits %d messages, %d bytes: want positive", c.SendQueueMessages, c.SendQueueBytes)
	case c.WriteTimeout <= 0:
		return fmt.Errorf("hub: write timeout %s: want positive", c.WriteTimeout)
	case c.MarkInterval < 0 || c.ResumeMaxAge < 0 || c.ResumeTimeout < 0:
		return fmt.Errorf("hub: mark interval %s, resume max age %s, resume timeout %s: want 0 (off) or more",
			c.MarkInterval, c.ResumeMaxAge, c.ResumeTimeout)
	}
	return nil
}

// Hub fans Kafka messages out to WebSocket clients over a set of shards. See doc.go.
type Hub struct {
	cfg      Config
	hist     *history.History
	reader   Reader
	metrics  *metrics.Metrics
	log      *zap.Logger
	shards   []*shard
	channels channelCount
	nextPick atomic.Uint64
}

// New builds a hub counting in m, serving positions and resumes from hist and, for what
// hist no longer holds, from rd (nil: such resumes are answered "unavailable"); Run starts
// its shards.
func New(cfg Config, hist *history.History, rd Reader, m *metrics.Metrics, log *zap.Logger) (*Hub, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if m == nil || hist == nil {
		return nil, errors.New("hub: metrics and history are required")
	}
	if log == nil {
		log = zap.NewNop()
	}
	h := &Hub{cfg: cfg, hist: hist, reader: rd, metrics: m, log: log}
	h.channels = channelCount{counts: make(map[string]int), gauge: m.Channels}
	h.shards = make([]*shard, cfg.Shards)
	for i := range h.shards {
		label := strconv.Itoa(i)
		h.shards[i] = &shard{
			index:     i,
			hub:       h,
			ctrl:      make(chan event, ctrlQueue),
			pub:       make(chan *protocol.Message, publishQueue),
			next:      make(chan handoff, handoffQueue),
			done:      make(chan struct{}),
			clients:   make(map[*Client]struct{}),
			channels:  make(map[string]*subscribers),
			wildcards: make(map[string]*subscribers),
			seen:      make(map[history.Part]int64),
			topics:    make(map[string]*subscribers),
			marked:    make(map[string][]int64),
			ivSubs:    make(map[ivKey]*subscribers),
			ivTopics:  make(map[string]map[uint64]int),
			buckets:   make(map[bucketKey]*bucket),
			depth:     m.ShardQueueDepth.WithLabelValues(label),
			fanoutObs: m.ShardFanout.WithLabelValues(label),
		}
	}
	return h, nil
}

// Run runs every shard on its own goroutine until ctx ends, then waits for them. Clients'
// handlers should have finished before ctx ends; later calls on them return at once.
func (h *Hub) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, s := range h.shards {
		wg.Go(func() { s.run(ctx) })
	}
	wg.Wait()
	return nil
}

// pick is the sharding function: the shard holding the fewest connections, scanning from a
// rotating start so ties spread round-robin. Fan-out work per shard grows with its
// connections, and unlike id modulo shards this stays balanced when connections come and go
// unevenly (a reconnect wave lands on the emptied shards). O(shards) per connect.
func (h *Hub) pick() *shard {
	n := len(h.shards)
	start := int(h.nextPick.Add(1) % uint64(n))
	best := h.shards[start]
	bestLoad := best.load.Load()
	for i := 1; i < n; i++ {
		s := h.shards[(start+i)%n]
		if l := s.load.Load(); l < bestLoad {
			best, bestLoad = s, l
		}
	}
	return best
}

// Register adds c to the shard holding the fewest connections; it returns once the shard
// has done so.
func (h *Hub) Register(ctx context.Context, c *Client) error {
	s := h.pick()
	s.load.Add(1)
	c.shard = s
	ev := event{kind: evRegister, client: c, done: make(chan struct{})}
	if err := s.send(ctx, ev); err != nil {
		s.load.Add(-1) // the event did not reach the shard
		return err
	}
	// The event is queued: the shard counts c as registered unless it stops first.
	return s.wait(ctx, ev.done)
}

// Unregister removes c and its subscriptions; it returns once c's shard has done so, after
// which no flusher starts for c: then call c.Wait.
func (h *Hub) Unregister(ctx context.Context, c *Client) error {
	return c.shard.call(ctx, event{kind: evUnregister, client: c})
}

// Handle hands a valid request of c to its shard, which answers it through c's send queue,
// after every message already queued. It blocks while the shard's control queue is full
// (back-pressure on a client, never on Kafka).
func (h *Hub) Handle(ctx context.Context, c *Client, req protocol.Request) error {
	return c.shard.send(ctx, event{kind: evRequest, client: c, req: req})
}

// Reject queues the error reply for a request that failed to parse, in order with c's other
// replies, and counts it (ws_protocol_errors_total).
func (h *Hub) Reject(ctx context.Context, c *Client, e *protocol.Error) error {
	return c.shard.send(ctx, event{kind: evReply, client: c, err: e})
}

// Sync is the barrier before a close that owes replies: it returns once every message queued
// for c before the call (records, and the replies to the requests handed over before it) has
// been handed to c's connection, that is once c has no pending message, no write in flight
// and no resume reading Kafka (its replay, its recovered line and the replies deferred
// behind it are owed too), or c is gone (or ctx ends, or the hub stops). The server calls it
// before a rate-limit close, so the replies owed go out ahead of the close frame.
func (h *Hub) Sync(ctx context.Context, c *Client) error {
	return c.shard.call(ctx, event{kind: evSync, client: c})
}

// Drain queues c's last line before a drain's close: its positions and a reconnect delay
// (protocol.EncodeDraining); it returns once queued. Call Sync after it to wait until it is
// in the connection.
func (h *Hub) Drain(ctx context.Context, c *Client, reconnectAfter time.Duration) error {
	return c.shard.call(ctx, event{kind: evDrain, client: c, after: reconnectAfter})
}

// Publish hands one encoded record to every shard, in shard order. Records published by one
// goroutine reach every shard, and so every client, in publish order: this is what keeps a
// partition's offsets in order. It blocks while a shard's record queue is full (back-pressure
// to Kafka) and returns early when ctx ends or the hub stopped.
func (h *Hub) Publish(ctx context.Context, m *protocol.Message) error {
	for _, s := range h.shards {
		if s.stopped() {
			return ErrStopped
		}
		select {
		case s.pub <- m:
		case <-ctx.Done():
			return ctx.Err()
		case <-s.done:
			return ErrStopped
		}
	}
	return nil
}
