package hub

import (
	"cmp"
	"slices"
	"time"

	"github.com/adred-codev/ws_poc/ws-multi/internal/history"
	"github.com/adred-codev/ws_poc/ws-multi/internal/metrics"
	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// Interval conflation (docs/PROTOCOL.md, Conflation): at most one record per key every N ms,
// the latest. Each shard computes it once per topic partition and interval, in a bucket, for
// all its subscribers: a record whose bucket is free goes at once, as the shared message it
// is; the others of the interval are held, the latest per channel, and go when it ends,
// re-encoded once with their "conflated" count. One bucket per partition (not per channel)
// keeps the partition's offset order for a client, whose channels of a topic all share one
// interval (checkConflate). Intervals run on ticks of protocol.ConflateTick; a shard's ticker
// runs only while one of its clients subscribes at an interval or a bucket holds records.

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
	queued bool                 // in shard.due
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

// ivKeyOf is the key of subscription name's list at mode's interval.
func ivKeyOf(name string, mode protocol.Conflate) ivKey {
	if topic, ok := protocol.WildcardTopic(name); ok {
		return ivKey{name: topic, wild: true, every: ticks(mode)}
	}
	return ivKey{name: name, every: ticks(mode)}
}

// joinInterval counts c's new subscription name at an interval, and starts the clock.
func (s *shard) joinInterval(c *Client, name string, mode protocol.Conflate) {
	every := ticks(mode)
	topic := protocol.ChannelTopic(name)
	if s.ivTopics[topic] == nil {
		s.ivTopics[topic] = make(map[uint64]int)
	}
	s.ivTopics[topic][every]++
	cf := c.conflation()
	if cf.intervals == nil {
		cf.intervals = make(map[string]topicInterval)
	}
	ti := cf.intervals[topic]
	cf.intervals[topic] = topicInterval{every: every, n: ti.n + 1}
	if s.ticker == nil {
		for _, b := range s.buckets {
			b.next = 0 // the clock stood still since they last sent
		}
		s.ticker = time.NewTicker(protocol.ConflateTick)
		s.ticks = s.ticker.C
	}
}

// leaveInterval uncounts c's subscription name at an interval.
func (s *shard) leaveInterval(c *Client, name string, mode protocol.Conflate) {
	every := ticks(mode)
	topic := protocol.ChannelTopic(name)
	if s.ivTopics[topic][every]--; s.ivTopics[topic][every] <= 0 {
		delete(s.ivTopics[topic], every)
		if len(s.ivTopics[topic]) == 0 {
			delete(s.ivTopics, topic)
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
// is subscribed at in the shard.
func (s *shard) offerInterval(m *protocol.Message) {
	inTopic := protocol.InTopic(m.Channel, m.Topic)
	for every := range s.ivTopics[m.Topic] {
		if s.ivSubs[ivKey{name: m.Channel, every: every}] == nil &&
			(!inTopic || s.ivSubs[ivKey{name: m.Topic, wild: true, every: every}] == nil) {
			continue
		}
		k := bucketKey{part: history.Part{Topic: m.Topic, Partition: m.Partition}, every: every}
		b := s.buckets[k]
		if b == nil {
			b = &bucket{key: k, held: make(map[string]heldEntry)}
			s.buckets[k] = b
		}
		s.hold(b, m)
	}
}

// hold sends m at once when b is free, or keeps it as its channel's latest until b's
// interval ends.
func (s *shard) hold(b *bucket, m *protocol.Message) {
	if len(b.held) == 0 && s.tick >= b.next {
		s.emit(b.key.every, m, 0)
		b.next = s.tick + b.key.every
		return
	}
	e, ok := b.held[m.Channel]
	if ok {
		e.n++
		s.hub.metrics.ConflatedRecords.WithLabelValues(metrics.ConflateInterval).Inc()
	} else {
		s.hub.metrics.ConflationPendingKeys.Inc()
	}
	e.m = m
	b.held[m.Channel] = e
	if !b.queued {
		b.queued = true
		s.due = append(s.due, b)
	}
}

// emit queues m, which replaced n records, for the shard's subscribers of its channel and of
// its topic's wildcard at interval every; the message is encoded once for all of them.
func (s *shard) emit(every uint64, m *protocol.Message, n int) {
	if n > 0 {
		m = protocol.WithConflated(m, n)
	}
	exact := s.ivSubs[ivKey{name: m.Channel, every: every}]
	if exact != nil {
		for _, c := range exact.clients {
			if c.skip != nil && c.skips(m) {
				continue // replayed to c by its resume
			}
			s.enqueue(c, m)
		}
	}
	if !protocol.InTopic(m.Channel, m.Topic) {
		return
	}
	if wild := s.ivSubs[ivKey{name: m.Topic, wild: true, every: every}]; wild != nil {
		for _, c := range wild.clients {
			if exact != nil {
				if _, dup := c.subs[m.Channel]; dup {
					continue
				}
			}
			if c.skip != nil && c.skips(m) {
				continue
			}
			s.enqueue(c, m)
		}
	}
}

// tock is a tick of the shard's interval clock: the buckets whose interval ended send what
// they hold. The ticker stops when no client of the shard subscribes at an interval and
// nothing is held.
func (s *shard) tock() {
	s.tick++
	due := s.due[:0]
	for _, b := range s.due {
		if b.next > s.tick {
			due = append(due, b)
			continue
		}
		b.queued = false
		s.releaseBucket(b)
	}
	clear(s.due[len(due):])
	s.due = due
	if len(s.ivSubs) == 0 && len(s.due) == 0 {
		s.ticker.Stop()
		s.ticker, s.ticks = nil, nil
	}
	s.dropSlow()
}

// releaseBucket sends b's held records, in offset order, and starts its next interval.
func (s *shard) releaseBucket(b *bucket) {
	held := b.sorted(func(string) bool { return true })
	clear(b.held)
	s.hub.metrics.ConflationPendingKeys.Sub(float64(len(held)))
	for _, e := range held {
		s.emit(b.key.every, e.m, e.n)
	}
	b.next = s.tick + b.key.every
}

// releaseTo queues for c, before its drain line, the records held for it: what the buckets
// of its interval topics hold of its channels. A record c resumed past is not sent again.
func (s *shard) releaseTo(c *Client) {
	for topic, ti := range c.conf.intervals {
		for k, b := range s.buckets {
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
				s.enqueue(c, m)
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
