package hub

import (
	"time"

	"github.com/adred-codev/ws_poc/ws-single/internal/history"
	"github.com/adred-codev/ws_poc/ws-single/internal/protocol"
)

// Topic-wide lines: gaps (to every subscriber of a topic), marks (to its positioned
// subscribers, every MarkInterval when its positions moved) and a drain's last line. Each is
// encoded once per topic (a drain's once per client) and shared.

// joinTopic and leaveTopic keep the topic index (topic -> clients with a channel of it) as
// c subscribes and unsubscribes.
func (h *Hub) joinTopic(c *Client, ch string) {
	topic := protocol.ChannelTopic(ch)
	if c.topics == nil {
		c.topics = make(map[string]int)
	}
	c.topics[topic]++
	if c.topics[topic] > 1 {
		return
	}
	s := h.topics[topic]
	if s == nil {
		s = newClientSet()
		h.topics[topic] = s
	}
	s.add(c)
}

func (h *Hub) leaveTopic(c *Client, ch string) {
	topic := protocol.ChannelTopic(ch)
	if c.topics[topic]--; c.topics[topic] > 0 {
		return
	}
	delete(c.topics, topic)
	if s := h.topics[topic]; s != nil {
		s.remove(c)
		if s.len() == 0 {
			delete(h.topics, topic)
			delete(h.marked, topic)
		}
	}
}

// gap fans a gap line out to every subscriber of its topic and moves the partition's
// frontier past it: what the gap skipped is not coming.
func (h *Hub) gap(m *protocol.Message) {
	p := history.Part{Topic: m.Topic, Partition: m.Partition}
	h.seen[p] = m.Offset
	s := h.topics[m.Topic]
	if s == nil {
		return
	}
	for _, c := range s.list {
		if c.skip != nil {
			c.forget(p) // its position on p means nothing past a gap
		}
		h.enqueue(c, m)
	}
}

// positions returns a topic's positions on this loop: per partition, the last offset fanned
// out (or before the ring's start when none yet).
func (h *Hub) positions(topic string) map[int32]int64 {
	parts := h.hist.Partitions(topic)
	out := make(map[int32]int64, len(parts))
	for _, p := range parts {
		part := history.Part{Topic: topic, Partition: p}
		f := h.frontier(part)
		if f < 0 {
			f = h.hist.Ring(part).Start()
		}
		out[p] = f - 1
	}
	return out
}

// mark sends each topic's positions to its positioned subscribers, when they moved since
// its last mark: a quiet subscription keeps fresh positions without traffic of its own.
// Every record up to them was queued before the mark, so a client may take them as its own.
// The line is encoded (and counted) only when the topic has a positioned subscriber.
func (h *Hub) mark() {
	for topic, s := range h.topics {
		parts := h.hist.Partitions(topic)
		pos := h.positions(topic)
		last := h.marked[topic]
		if len(last) == len(parts) {
			same := true
			for i, p := range parts {
				same = same && last[i] == pos[p]
			}
			if same {
				continue
			}
		}
		last = last[:0]
		for _, p := range parts {
			last = append(last, pos[p])
		}
		h.marked[topic] = last
		var m *protocol.Message
		for _, c := range s.list {
			if !c.positioned || (c.conf != nil && c.conf.intervals[topic].n > 0) {
				continue // a mark could pass a record held at an interval for c
			}
			if m == nil {
				m = protocol.EncodeMark(topic, pos)
				h.metrics.MarksSent.Inc()
			}
			h.enqueue(c, m)
		}
	}
}

// drain queues c's last line before a drain's close: its positions on every topic it
// subscribes to and a reconnect delay, and ends its subscriptions. A resume still reading
// Kafka is dropped with what was queued behind it: the positions are then the resume's own,
// so the client asks again elsewhere.
func (h *Hub) drain(c *Client, after time.Duration) {
	if c.gone {
		return
	}
	epochs, positions := protocol.Epochs{}, protocol.Positions{}
	for topic := range c.topics {
		if epoch, ok := h.hist.Epoch(topic); ok {
			epochs[topic] = epoch
			positions[topic] = h.positions(topic)
		}
	}
	for p, off := range c.skip {
		if parts := positions[p.Topic]; parts != nil {
			parts[p.Partition] = max(parts[p.Partition], off)
		}
	}
	if rec := c.recovering; rec != nil {
		rec.cancel()
		c.recovering, c.deferred = nil, nil
		for _, r := range rec.plan.Ranges {
			if parts := positions[r.Topic]; parts != nil {
				if r.Since.IsZero() {
					parts[r.Partition] = r.After
				} else {
					delete(parts, r.Partition)
				}
			}
		}
		clear(c.pending[rec.at:])
		c.pending = c.pending[:rec.at]
		c.pendingBytes = wireBytes(c.pending)
	}
	if c.conf != nil && len(c.conf.intervals) > 0 {
		h.releaseTo(c) // the positions pass what the buckets hold for c
	}
	h.enqueue(c, protocol.EncodeDraining(after.Milliseconds(), epochs, positions))
	// The line's positions are the client's last: nothing may follow it, or a client
	// resuming from them elsewhere would get it twice.
	for ch := range c.subs {
		h.unsubscribe(c, ch)
	}
	c.subs = nil
}
