package hub

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

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
	WriteTimeout      time.Duration // longest socket write or ping round trip; longest a queue may stay past a limit
	PingInterval      time.Duration // server ping period per client; 0 disables pings
	Batch             bool          // join waiting messages into one frame, one per line
	BatchMaxBytes     int           // largest batched frame in bytes
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
	case c.BatchMaxBytes < 1:
		return fmt.Errorf("hub: batch max bytes %d: want positive", c.BatchMaxBytes)
	}
	return nil
}

// Hub fans Kafka messages out to WebSocket clients over a set of shards. See doc.go.
type Hub struct {
	cfg      Config
	metrics  *metrics.Metrics
	log      *zap.Logger
	shards   []*shard
	channels channelCount
	bufs     sync.Pool // *[]byte frame buffers of cap BatchMaxBytes, shared by all writers
	nextID   atomic.Uint64
	nextPick atomic.Uint64
}

// New builds a hub; Run starts its shards.
func New(cfg Config, m *metrics.Metrics, log *zap.Logger) (*Hub, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	h := &Hub{cfg: cfg, metrics: m, log: log}
	h.channels = channelCount{counts: make(map[string]int), gauge: m.Channels}
	h.bufs.New = func() any {
		b := make([]byte, 0, cfg.BatchMaxBytes)
		return &b
	}
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
			depth:     m.ShardQueueDepth.WithLabelValues(label),
			fanoutObs: m.ShardFanout.WithLabelValues(label),
		}
	}
	return h, nil
}

// Shards returns the number of shards.
func (h *Hub) Shards() int { return len(h.shards) }

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

// Register adds a connection to the least-loaded shard and returns its client.
func (h *Hub) Register(conn Conn) *Client {
	s := h.pick()
	s.load.Add(1)
	c := &Client{
		id:    h.nextID.Add(1),
		shard: s,
		conn:  conn,
		subs:  make(map[string]int),
	}
	s.send(event{kind: evRegister, client: c})
	return c
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

// Publish hands one encoded record to every shard, in shard order. Records published by one
// goroutine reach every shard, and so every client, in publish order: this is what keeps a
// partition's offsets in order. It blocks while a shard's record queue is full (back-pressure
// to Kafka) and returns early when ctx ends or the hub stopped.
func (h *Hub) Publish(ctx context.Context, m *protocol.Message) error {
	for _, s := range h.shards {
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

// CloseAll ends every client with reason (1001 "shutdown" on drain), in parallel: each close
// handshake runs on its client's own goroutine. Clients registering afterwards are ended at
// once. It returns when every shard has started its closes.
func (h *Hub) CloseAll(reason Reason) {
	dones := make([]chan struct{}, len(h.shards))
	for i, s := range h.shards {
		dones[i] = make(chan struct{})
		s.send(event{kind: evCloseAll, reason: reason, done: dones[i]})
	}
	for i, s := range h.shards {
		select {
		case <-dones[i]:
		case <-s.done:
		}
	}
}

// Len returns the number of registered connections.
func (h *Hub) Len() int {
	n := 0
	for _, s := range h.shards {
		n += int(s.load.Load())
	}
	return n
}

// channelCount tracks how many shards hold each channel so ws_channels counts a channel once
// however many shards subscribe to it. Its mutex is taken only when a shard's subscriber
// list of a channel becomes empty or non-empty, never on the broadcast path.
type channelCount struct {
	mu     sync.Mutex
	counts map[string]int
	gauge  prometheus.Gauge
}

func (cc *channelCount) add(name string, delta int) {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	n := cc.counts[name] + delta
	switch {
	case n == 0:
		delete(cc.counts, name)
		cc.gauge.Dec()
	case n == 1 && delta > 0:
		cc.counts[name] = n
		cc.gauge.Inc()
	default:
		cc.counts[name] = n
	}
}
