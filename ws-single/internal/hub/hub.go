package hub

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/adred-codev/ws_poc/ws-single/internal/history"
	"github.com/adred-codev/ws_poc/ws-single/internal/metrics"
	"github.com/adred-codev/ws_poc/ws-single/internal/protocol"
)

// ErrStopped is returned by calls made after the hub loop has ended.
var ErrStopped = errors.New("hub: stopped")

// Config bounds what one client may hold.
type Config struct {
	// MaxSubscriptions is how many channels one client may subscribe to
	// (WS_MAX_SUBSCRIPTIONS); at least 1.
	MaxSubscriptions int
	// SendQueueMessages and SendQueueBytes bound one client's queue (pending
	// plus the write in flight; WS_SEND_QUEUE_MESSAGES, WS_SEND_QUEUE_BYTES):
	// past either, a client that is not draining is cut as slow (see doc.go).
	// Both at least 1.
	SendQueueMessages int
	SendQueueBytes    int
	// WriteTimeout is how long a queue may stay past a limit before its client
	// is cut as slow even though its writes complete (WS_WRITE_TIMEOUT); 0
	// turns that rule off.
	WriteTimeout time.Duration
	// MarkInterval is how often positioned subscribers get their topics' marks
	// (WS_MARK_INTERVAL); 0 sends none.
	MarkInterval time.Duration
	// ResumeMaxAge is the oldest since_ts a time replay may ask for (WS_RESUME_MAX_AGE);
	// 0 means no bound.
	ResumeMaxAge time.Duration
	// ResumeTimeout bounds one Kafka catch-up (WS_RESUME_TIMEOUT); 0 means no bound.
	ResumeTimeout time.Duration
}

// Hub owns every client and the subscription index in one goroutine (Run);
// see doc.go for the design and its invariants.
type Hub struct {
	cfg     Config
	hist    *history.History
	reader  Reader
	metrics *metrics.Metrics
	log     *zap.Logger
	ctrl    chan event
	next    chan handoff
	pub     chan *protocol.Message
	done    chan struct{}

	// Owned by the loop goroutine.
	clients       map[*Client]struct{}
	exact         map[string]*clientSet // channel -> subscribers
	wild          map[string]*clientSet // topic -> "<topic>:*" subscribers
	subscriptions int
	seq           uint64
	dropped       []*Client              // dropped during the current event, to unindex
	dirty         []*Client              // clients with pending messages, written at the end of the round
	seen          map[history.Part]int64 // per partition, the last offset fanned out
	topics        map[string]*clientSet  // topic -> clients subscribed to any of its channels
	marked        map[string][]int64     // topic -> the positions of its last mark
	undeferred    []*Client              // clients whose resume ended in the current event, with requests deferred

	// Interval conflation (interval.go).
	ivSubs   map[ivKey]*clientSet      // (channel or wildcard, interval) -> subscribers
	ivTopics map[string]map[uint64]int // topic -> interval -> its subscriptions at it
	buckets  map[bucketKey]*bucket     // (topic partition, interval) -> its held records
	due      []*bucket                 // buckets holding records
	tick     uint64                    // ticks of the interval clock so far
	ticker   *time.Ticker              // the interval clock; nil while nobody needs it
	ticks    <-chan time.Time          // ticker's channel; nil (never ready) without it

	ctx      context.Context // Run's, for catch-ups
	catchups sync.WaitGroup  // running Kafka catch-ups; Run waits for them
}

// New returns a hub counting in m, serving positions and resumes from hist and, for what
// hist no longer holds, from rd (nil: such resumes are answered "unavailable"); call Run to
// start it.
func New(cfg Config, hist *history.History, rd Reader, m *metrics.Metrics, log *zap.Logger) (*Hub, error) {
	if cfg.MaxSubscriptions < 1 || cfg.SendQueueMessages < 1 || cfg.SendQueueBytes < 1 || cfg.WriteTimeout < 0 ||
		cfg.MarkInterval < 0 || cfg.ResumeMaxAge < 0 || cfg.ResumeTimeout < 0 {
		return nil, fmt.Errorf("hub: config %+v: limits must be positive", cfg)
	}
	if m == nil || hist == nil {
		return nil, errors.New("hub: metrics and history are required")
	}
	if log == nil {
		log = zap.NewNop()
	}
	return &Hub{
		cfg:      cfg,
		hist:     hist,
		reader:   rd,
		metrics:  m,
		log:      log,
		ctrl:     make(chan event, ctrlQueue),
		next:     make(chan handoff, handoffQueue),
		pub:      make(chan *protocol.Message, publishQueue),
		done:     make(chan struct{}),
		clients:  make(map[*Client]struct{}),
		exact:    make(map[string]*clientSet),
		wild:     make(map[string]*clientSet),
		seen:     make(map[history.Part]int64),
		topics:   make(map[string]*clientSet),
		marked:   make(map[string][]int64),
		ivSubs:   make(map[ivKey]*clientSet),
		ivTopics: make(map[string]map[uint64]int),
		buckets:  make(map[bucketKey]*bucket),
	}, nil
}

// Run is the hub loop (loop.go); it returns nil when ctx ends. Clients still
// registered then are dropped without a word: the server drains them before
// stopping the hub.
func (h *Hub) Run(ctx context.Context) error {
	defer close(h.done)
	defer h.catchups.Wait() // they end with ctx; their reports find done closed
	h.ctx = ctx
	h.loop(ctx)
	h.log.Debug("hub stopped", zap.Int("clients", len(h.clients)))
	return nil
}

// Register adds c; it returns once the loop has done so.
func (h *Hub) Register(ctx context.Context, c *Client) error {
	return h.call(ctx, event{kind: evRegister, client: c})
}

// Unregister removes c and its subscriptions; it returns once the loop has done
// so, after which no flusher starts for c: then call c.Wait.
func (h *Hub) Unregister(ctx context.Context, c *Client) error {
	return h.call(ctx, event{kind: evUnregister, client: c})
}

// Handle queues a valid request of c; its reply goes through c's queue, after
// every message queued before it.
func (h *Hub) Handle(ctx context.Context, c *Client, req protocol.Request) error {
	return h.send(ctx, event{kind: evRequest, client: c, req: req})
}

// Reject queues the error reply for a request that failed to parse, in order
// with c's other replies.
func (h *Hub) Reject(ctx context.Context, c *Client, e *protocol.Error) error {
	return h.send(ctx, event{kind: evReply, client: c, err: e})
}

// Sync is the barrier before a close that owes replies: it returns once every
// message queued for c before the call has been handed to c's connection, that
// is once c has no pending message, no write in flight and no resume reading Kafka
// (its replay and the replies deferred behind it are owed too), or c is gone (or
// ctx ends, or the hub stops). Replies to requests sent with Handle or Reject
// before Sync are queued before it.
func (h *Hub) Sync(ctx context.Context, c *Client) error {
	return h.call(ctx, event{kind: evSync, client: c})
}

// Drain queues c's last line before a drain's close: its positions and a reconnect delay
// (protocol.EncodeDraining); it returns once queued. Call Sync after it to wait until it is
// in the connection.
func (h *Hub) Drain(ctx context.Context, c *Client, reconnectAfter time.Duration) error {
	return h.call(ctx, event{kind: evDrain, client: c, after: reconnectAfter})
}

// Publish hands a record's message to the loop for fan-out. It blocks while
// the loop is behind (bounded queue), which holds the backlog in Kafka.
func (h *Hub) Publish(ctx context.Context, m *protocol.Message) error {
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
