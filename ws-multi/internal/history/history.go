// This file is duplicated from ws-single (internal/history/history.go) on purpose: the
// variants share the history.

package history

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Config bounds each partition's ring (WS_HISTORY_RECORDS, WS_HISTORY_BYTES,
// WS_HISTORY_MAX_AGE). Records 0 turns the history off: every resume then goes to Kafka.
type Config struct {
	Records int           // records per partition; 0: off
	Bytes   int           // wire bytes per partition; at least 1 when Records > 0
	MaxAge  time.Duration // records older than this go; 0: no age bound
}

// Validate reports bounds the history cannot run with.
func (c Config) Validate() error {
	if c.Records < 0 || c.Bytes < 0 || c.MaxAge < 0 || (c.Records > 0 && c.Bytes == 0) {
		return fmt.Errorf("history: config %+v: bounds must be positive", c)
	}
	return nil
}

// Part names a partition.
type Part struct {
	Topic     string
	Partition int32
}

// topic is one consumed topic: its epoch and its partitions' rings.
type topic struct {
	epoch string
	parts []int32 // ascending
	rings map[int32]*Ring
}

// History is every consumed partition's ring and every topic's epoch. The consumer sets
// them up (Attach) as it attaches; rings are created once per topic epoch and handed to
// their writer.
type History struct {
	cfg      Config
	consumed map[string]bool // the topics the server consumes, attached or not yet
	mu       sync.RWMutex
	topics   map[string]*topic
}

// New returns an empty history for the given topics.
func New(cfg Config, topics []string) (*History, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if len(topics) == 0 {
		return nil, errors.New("history: no topics")
	}
	consumed := make(map[string]bool, len(topics))
	for _, name := range topics {
		consumed[name] = true
	}
	return &History{cfg: cfg, consumed: consumed, topics: make(map[string]*topic, len(topics))}, nil
}

// Config returns the bounds.
func (h *History) Config() Config { return h.cfg }

// Attach sets a topic's epoch and partitions, each starting at its start offset (the
// offset its writer consumes first). A topic seen before under the same epoch keeps its
// rings (a new partition gets one); a new epoch (the topic was recreated) replaces them, and
// Attach reports it.
func (h *History) Attach(name, epoch string, starts map[int32]int64) (changed bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	t := h.topics[name]
	if t != nil && t.epoch != epoch {
		changed = true
		t = nil
	}
	if t == nil {
		t = &topic{epoch: epoch, rings: make(map[int32]*Ring, len(starts))}
		h.topics[name] = t
	}
	// parts is replaced, never changed in place: Partitions hands it out.
	parts := slices.Clone(t.parts)
	for p, start := range starts {
		if t.rings[p] == nil {
			t.rings[p] = newRing(h.cfg, start)
			parts = append(parts, p)
		}
	}
	slices.Sort(parts)
	t.parts = parts
	return changed
}

// Ring returns a partition's ring, nil if unknown.
func (h *History) Ring(p Part) *Ring {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if t := h.topics[p.Topic]; t != nil {
		return t.rings[p.Partition]
	}
	return nil
}

// Epoch returns a topic's epoch and whether the topic is consumed.
func (h *History) Epoch(name string) (string, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if t := h.topics[name]; t != nil {
		return t.epoch, true
	}
	return "", false
}

// Partitions returns a topic's partitions, ascending (nil if not consumed). Read-only.
func (h *History) Partitions(name string) []int32 {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if t := h.topics[name]; t != nil {
		return t.parts
	}
	return nil
}
