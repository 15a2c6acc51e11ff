package hub

import (
	"time"

	"github.com/adred-codev/ws_poc/ws-multi/internal/history"
	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// Topic-wide lines: gaps (to every subscriber of a topic), marks (to its positioned
// subscribers, every MarkInterval when its positions moved) and a drain's last line. Each
// shard keeps its own topic index and sends its own: a gap is encoded once by the consumer
// and shared by every shard; a mark is encoded once per topic by each shard that has a
// positioned subscriber of it, with that shard's positions; a drain's once per client.

// topicHold is how a client holds a topic in its shard's topic index: how many of its
// subscriptions are in the topic, and its place in the topic's list (O(1) removal, as
// Client.subs for the channel lists).
type topicHold struct {
	channels int
	at       int
}

// joinTopic and leaveTopic keep the topic index (topic -> clients with a channel of it) as
// c subscribes to and unsubscribes from the subscription name.
func (s *shard) joinTopic(c *Client, name string) {
	topic := protocol.ChannelTopic(name)
	if c.topics == nil {
		c.topics = make(map[string]topicHold)
	}
	if th, ok := c.topics[topic]; ok {
		th.channels++
		c.topics[topic] = th
		return
	}
	l := s.topics[topic]
	if l == nil {
		l = &subscribers{}
		s.topics[topic] = l
	}
	c.topics[topic] = topicHold{channels: 1, at: len(l.clients)}
	l.clients = append(l.clients, c)
}

func (s *shard) leaveTopic(c *Client, name string) {
	topic := protocol.ChannelTopic(name)
	th := c.topics[topic]
	if th.channels > 1 {
		th.channels--
		c.topics[topic] = th
		return
	}
	l := s.topics[topic]
	last := len(l.clients) - 1
	moved := l.clients[last]
	l.clients[th.at] = moved
	mh := moved.topics[topic]
	mh.at = th.at
	moved.topics[topic] = mh
	l.clients[last] = nil
	l.clients = l.clients[:last]
	delete(c.topics, topic) // after the move: moved may be c
	if last == 0 {
		delete(s.topics, topic)
		delete(s.marked, topic)
	}
}

// gap fans a gap line out to every subscriber of its topic in the shard and moves the
// shard's frontier of the partition past it: what the gap skipped is not coming.
func (s *shard) gap(m *protocol.Message) {
	p := history.Part{Topic: m.Topic, Partition: m.Partition}
	s.seen[p] = m.Offset
	l := s.topics[m.Topic]
	if l == nil {
		return
	}
	for _, c := range l.clients {
		if c.skip != nil {
			c.forget(p) // its position on p means nothing past a gap
		}
		s.enqueue(c, m)
	}
}

// positions returns a topic's positions on this shard: per partition, the last offset the
// shard fanned out (or before the ring's start when none yet).
func (s *shard) positions(topic string) map[int32]int64 {
	hist := s.hub.hist
	parts := hist.Partitions(topic)
	out := make(map[int32]int64, len(parts))
	for _, p := range parts {
		part := history.Part{Topic: topic, Partition: p}
		f := s.frontier(part)
		if f < 0 {
			f = hist.Ring(part).Start()
		}
		out[p] = f - 1
	}
	return out
}

// mark sends each topic's positions to the shard's positioned subscribers of it, when they
// moved since its last mark: a quiet subscription keeps fresh positions without traffic of
// its own. Every record up to them was queued by this shard before the mark, so a client
// may take them as its own. The line is encoded (and counted) only when the shard has a
// positioned subscriber of the topic.
func (s *shard) mark() {
	hist := s.hub.hist
	for topic, l := range s.topics {
		parts := hist.Partitions(topic)
		pos := s.positions(topic)
		last := s.marked[topic]
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
		s.marked[topic] = last
		var m *protocol.Message
		for _, c := range l.clients {
			if !c.positioned || (c.conf != nil && c.conf.intervals[topic].n > 0) {
				continue // a mark could pass a record held at an interval for c
			}
			if m == nil {
				m = protocol.EncodeMark(topic, pos)
				s.hub.metrics.MarksSent.Inc()
			}
			s.enqueue(c, m)
		}
	}
	s.dropSlow()
}

// drain queues c's last line before a drain's close: its positions on every topic it
// subscribes to (its shard's, or its own where it is ahead) and a reconnect delay, and ends
// its subscriptions. A resume still reading Kafka is dropped with what was queued behind it:
// the positions are then the resume's own, so the client asks again elsewhere.
func (s *shard) drain(c *Client, after time.Duration) {
	if c.gone {
		return
	}
	hist := s.hub.hist
	epochs, positions := protocol.Epochs{}, protocol.Positions{}
	for topic := range c.topics {
		if epoch, ok := hist.Epoch(topic); ok {
			epochs[topic] = epoch
			positions[topic] = s.positions(topic)
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
		s.releaseTo(c) // the positions pass what the buckets hold for c
	}
	s.enqueue(c, protocol.EncodeDraining(after.Milliseconds(), epochs, positions))
	// The line's positions are the client's last: nothing may follow it, or a client
	// resuming from them elsewhere would get it twice.
	n := len(c.subs)
	for name := range c.subs {
		s.unsubscribe(c, name)
	}
	s.hub.metrics.Subscriptions.Sub(float64(n))
}
