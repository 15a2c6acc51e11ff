package hub

import (
	"cmp"
	"slices"
	"time"

	"github.com/adred-codev/ws_poc/ws-single/internal/history"
	"github.com/adred-codev/ws_poc/ws-single/internal/metrics"
	"github.com/adred-codev/ws_poc/ws-single/internal/protocol"
)

// Interval conflation (docs/PROTOCOL.md, Conflation): at most one record per key every N ms,
// the latest. It is computed once per topic partition and interval, in a bucket, for all its
// subscribers: a record whose bucket is free goes at once, as the shared message it is; the
// others of the interval are held, the latest per channel, and go when it ends, re-encoded
// once with their "conflated" count. One bucket per partition (not per channel) keeps the
// partition's offset order for a client, whose channels of a topic all share one interval
// (checkConflate). Intervals run on ticks of protocol.ConflateTick; the ticker runs only
// while a client subscribes at an interval or a bucket holds records.

// ivKey names the subscribers of one channel (or, wild, of a topic's wildcard) at an
// interval, in ticks.
type ivKey struct {
	name  string
	wild  bool
	every uint64
}

// bucketKey names the bucket of a topic partition at an interval.
type bucketKey struct {
	part  history.Part
	every uint64
}

// bucket holds a topic partition's records at one interval.
type bucket struct {
	key    bucketKey
	next   uint64               // the tick from which a record may go at once
	held   map[string]heldEntry // channel -> its latest record waiting for the interval's end
	queued bool                 // in Hub.due
}

// heldEntry is a channel's latest record in a bucket and how many it replaced.
type heldEntry struct {
	m *protocol.Message
	n int
}

// ticks is an interval subscription's interval in ticks; 0 for the other modes.
func ticks(c protocol.Conflate) uint64 {
	if c.Mode != protocol.ConflateInterval {
		return 0
	}
	return uint64(c.Interval / protocol.ConflateTick)
}

// ivKeyOf is the key of subscription name's set at mode's interval.
func ivKeyOf(name string, mode protocol.Conflate) ivKey {
	if topic, ok := protocol.WildcardTopic(name); ok {
		return ivKey{name: topic, wild: true, every: ticks(mode)}
	}
	return ivKey{name: name, every: ticks(mode)}
}

// subscribeInterval adds c's subscription ch at an interval.
func (h *Hub) subscribeInterval(c *Client, ch string, mode protocol.Conflate) {
	every, k, topic := ticks(mode), ivKeyOf(ch, mode), protocol.ChannelTopic(ch)
	s := h.ivSubs[k]
	if s == nil {
		s = newClientSet()
		h.ivSubs[k] = s
	}
	s.add(c)
	if h.ivTopics[topic] == nil {
		h.ivTopics[topic] = make(map[uint64]int)
	}
	h.ivTopics[topic][every]++
	cf := c.conflation()
	if cf.intervals == nil {
		cf.intervals = make(map[string]topicInterval)
	}
	ti := cf.intervals[topic]
	cf.intervals[topic] = topicInterval{every: every, n: ti.n + 1}
	if h.ticker == nil {
		for _, b := range h.buckets {
			b.next = 0 // the clock stood still since they last sent
		}
		h.ticker = time.NewTicker(protocol.ConflateTick)
		h.ticks = h.ticker.C
	}
}

// unsubscribeInterval removes c's subscription ch at an interval.
func (h *Hub) unsubscribeInterval(c *Client, ch string, mode protocol.Conflate) {
	every, k, topic := ticks(mode), ivKeyOf(ch, mode), protocol.ChannelTopic(ch)
	if s := h.ivSubs[k]; s != nil {
		s.remove(c)
		if s.len() == 0 {
			delete(h.ivSubs, k)
		}
	}
	if h.ivTopics[topic][every]--; h.ivTopics[topic][every] <= 0 {
		delete(h.ivTopics[topic], every)
		if len(h.ivTopics[topic]) == 0 {
			delete(h.ivTopics, topic)
		}
	}
	cf := c.conf
	if ti := cf.intervals[topic]; ti.n > 1 {
		cf.intervals[topic] = topicInterval{every: ti.every, n: ti.n - 1}
	} else {
		delete(cf.intervals, topic)
	}
}

// offerInterval gives record m to the buckets of its partition at the intervals its channel
// is subscribed at.
func (h *Hub) offerInterval(m *protocol.Message) {
	inTopic := protocol.InTopic(m.Channel, m.Topic)
	for every := range h.ivTopics[m.Topic] {
		if h.ivSubs[ivKey{name: m.Channel, every: every}] == nil &&
			(!inTopic || h.ivSubs[ivKey{name: m.Topic, wild: true, every: every}] == nil) {
			continue
		}
		k := bucketKey{part: history.Part{Topic: m.Topic, Partition: m.Partition}, every: every}
		b := h.buckets[k]
		if b == nil {
			b = &bucket{key: k, held: make(map[string]heldEntry)}
			h.buckets[k] = b
		}
		h.hold(b, m)
	}
}

// hold sends m at once when b is free, or keeps it as its channel's latest until b's
// interval ends.
func (h *Hub) hold(b *bucket, m *protocol.Message) {
	if len(b.held) == 0 && h.tick >= b.next {
		h.emit(b.key.every, m, 0)
		b.next = h.tick + b.key.every
		return
	}
	e, ok := b.held[m.Channel]
	if ok {
		e.n++
		h.metrics.ConflatedRecords.WithLabelValues(metrics.ConflateInterval).Inc()
	} else {
		h.metrics.ConflationPendingKeys.Inc()
	}
	e.m = m
	b.held[m.Channel] = e
	if !b.queued {
		b.queued = true
		h.due = append(h.due, b)
	}
}

// emit queues m, which replaced n records, for the subscribers of its channel and of its
// topic's wildcard at interval every; the message is encoded once for all of them.
func (h *Hub) emit(every uint64, m *protocol.Message, n int) {
	if n > 0 {
		m = protocol.WithConflated(m, n)
	}
	h.seq++
	if s := h.ivSubs[ivKey{name: m.Channel, every: every}]; s != nil {
		for _, c := range s.list {
			c.mark = h.seq
			if c.skip != nil && c.skips(m) {
				continue // replayed to c by its resume
			}
			h.enqueue(c, m)
		}
	}
	if !protocol.InTopic(m.Channel, m.Topic) {
		return
	}
	if s := h.ivSubs[ivKey{name: m.Topic, wild: true, every: every}]; s != nil {
		for _, c := range s.list {
			if c.mark == h.seq || (c.skip != nil && c.skips(m)) {
				continue
			}
			h.enqueue(c, m)
		}
	}
}

// tock is a tick of the interval clock: the buckets whose interval ended send what they
// hold. The ticker stops when no client subscribes at an interval and nothing is held.
func (h *Hub) tock() {
	h.tick++
	due := h.due[:0]
	for _, b := range h.due {
		if b.next > h.tick {
			due = append(due, b)
			continue
		}
		b.queued = false
		h.releaseBucket(b)
	}
	clear(h.due[len(due):])
	h.due = due
	if len(h.ivSubs) == 0 && len(h.due) == 0 {
		h.ticker.Stop()
		h.ticker, h.ticks = nil, nil
	}
}

// releaseBucket sends b's held records, in offset order, and starts its next interval.
func (h *Hub) releaseBucket(b *bucket) {
	held := b.sorted(func(string) bool { return true })
	clear(b.held)
	h.metrics.ConflationPendingKeys.Sub(float64(len(held)))
	for _, e := range held {
		h.emit(b.key.every, e.m, e.n)
	}
	b.next = h.tick + b.key.every
}

// releaseTo queues for c, before its drain line, the records held for it: what the buckets
// of its interval topics hold of its channels. A record c resumed past is not sent again.
func (h *Hub) releaseTo(c *Client) {
	for topic, ti := range c.conf.intervals {
		for k, b := range h.buckets {
			if k.part.Topic != topic || k.every != ti.every || len(b.held) == 0 {
				continue
			}
			held := b.sorted(func(ch string) bool {
				_, ok := c.subs[ch]
				return ok || (protocol.InTopic(ch, topic) && c.conf.wild[topic].Mode == protocol.ConflateInterval)
			})
			for _, e := range held {
				m := e.m
				if c.skip != nil && c.skips(m) {
					continue
				}
				if e.n > 0 {
					m = protocol.WithConflated(m, e.n)
				}
				h.enqueue(c, m)
			}
		}
	}
}

// sorted returns b's held records of the channels keep accepts, in offset order.
func (b *bucket) sorted(keep func(channel string) bool) []heldEntry {
	held := make([]heldEntry, 0, len(b.held))
	for ch, e := range b.held {
		if keep(ch) {
			held = append(held, e)
		}
	}
	slices.SortFunc(held, func(x, y heldEntry) int { return cmp.Compare(x.m.Offset, y.m.Offset) })
	return held
}
