package hub

import (
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/adred-codev/ws_poc/ws-multi/internal/history"
	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// The subscription index of a shard (channel -> subscribers, topic -> wildcard
// subscribers; the topic index of gaps and marks is in mark.go), how a client leaves it
// (drop) and the fan-out over it; read and written by the shard goroutine only (doc.go,
// invariant 1).

// subscribers is the list of clients of one channel in one shard. A slice, not a map, so
// fan-out is a linear scan; each client remembers its index (Client.subs) for O(1) removal.
type subscribers struct {
	clients []*Client
}

// list returns the subscriber list of a subscription name in mode, creating it when create is
// set: subscriptions at an interval are listed per interval (interval.go).
func (s *shard) list(name string, mode protocol.Conflate, create bool) *subscribers {
	if mode.Mode == protocol.ConflateInterval {
		k := ivKeyOf(name, mode)
		l := s.ivSubs[k]
		if l == nil && create {
			l = &subscribers{}
			s.ivSubs[k] = l
		}
		return l
	}
	index, key := s.channels, name
	if topic, ok := protocol.WildcardTopic(name); ok {
		index, key = s.wildcards, topic
	}
	l := index[key]
	if l == nil && create {
		l = &subscribers{}
		index[key] = l
	}
	return l
}

func (s *shard) subscribe(c *Client, name string, mode protocol.Conflate) {
	c.setMode(name, mode)
	l := s.list(name, mode, true)
	c.subs[name] = len(l.clients)
	l.clients = append(l.clients, c)
	if mode.Mode == protocol.ConflateInterval {
		s.joinInterval(c, name, mode)
	} else if len(l.clients) == 1 {
		s.hub.channels.add(name, 1)
	}
	s.joinTopic(c, name)
}

func (s *shard) unsubscribe(c *Client, name string) {
	mode := c.mode(name)
	l := s.list(name, mode, false)
	i := c.subs[name]
	last := len(l.clients) - 1
	moved := l.clients[last]
	l.clients[i] = moved
	moved.subs[name] = i
	l.clients[last] = nil
	l.clients = l.clients[:last]
	delete(c.subs, name)
	switch {
	case mode.Mode == protocol.ConflateInterval:
		if last == 0 {
			delete(s.ivSubs, ivKeyOf(name, mode))
		}
		s.leaveInterval(c, name, mode)
	case last == 0:
		if topic, ok := protocol.WildcardTopic(name); ok {
			delete(s.wildcards, topic)
		} else {
			delete(s.channels, name)
		}
		s.hub.channels.add(name, -1)
	}
	c.setMode(name, protocol.Conflate{})
	s.leaveTopic(c, name)
}

// drop ends every delivery to c: its queue, its resume and its subscriptions, at once. A
// hand-off being flushed ends with its flusher. A Sync waiting on c returns.
func (s *shard) drop(c *Client) {
	c.gone = true
	if c.conf != nil {
		s.endEpisode(c)
	}
	if c.recovering != nil {
		c.recovering.cancel()
		c.recovering = nil
	}
	c.deferred = nil
	clear(c.pending)
	c.pending, c.pendingBytes, c.resliced = nil, 0, false
	s.releaseSync(c)
	if c.removed {
		return
	}
	c.removed = true
	n := len(c.subs)
	for name := range c.subs {
		s.unsubscribe(c, name)
	}
	s.hub.metrics.Subscriptions.Sub(float64(n))
}

// fanout queues one record for every subscriber in this shard: subscribers of its channel,
// then subscribers of its topic's wildcard that are not also subscribed to the channel (a
// client gets a record once), and moves the shard's frontier of its partition. A gap goes
// to the topic's subscribers instead (mark.go). No allocation per recipient: the message is
// shared.
func (s *shard) fanout(m *protocol.Message) {
	if m.Kind == protocol.KindGap {
		s.gap(m)
		s.dropSlow()
		return
	}
	s.seen[history.Part{Topic: m.Topic, Partition: m.Partition}] = m.Offset
	exact := s.channels[m.Channel]
	if exact != nil {
		for _, c := range exact.clients {
			if c.skip != nil && c.skips(m) {
				continue // delivered by the instance c resumed from
			}
			if c.conf != nil && c.conf.exact[m.Channel].Mode == protocol.ConflateBehind {
				s.conflate(c, m)
				continue
			}
			s.enqueue(c, m)
		}
	}
	if wild := s.wildcards[m.Topic]; wild != nil && protocol.InTopic(m.Channel, m.Topic) {
		for _, c := range wild.clients {
			if exact != nil {
				if _, dup := c.subs[m.Channel]; dup {
					continue
				}
			}
			if c.skip != nil && c.skips(m) {
				continue
			}
			if c.conf != nil && c.conf.wild[m.Topic].Mode == protocol.ConflateBehind {
				s.conflate(c, m)
				continue
			}
			s.enqueue(c, m)
		}
	}
	if len(s.ivTopics) > 0 {
		s.offerInterval(m)
	}
	s.dropSlow()
}

// request applies a subscribe, unsubscribe or ping and queues its reply.
func (s *shard) request(c *Client, req protocol.Request) {
	m := s.hub.metrics
	switch req.Op {
	case protocol.OpSubscribe:
		added := 0
		for _, ch := range req.Channels {
			if _, ok := c.subs[ch]; !ok {
				added++
			}
		}
		if limit := s.subscriptionLimit(c); len(c.subs)+added > limit {
			m.ProtocolErrors.WithLabelValues(protocol.CodeTooManySubscriptions).Inc()
			s.enqueue(c, protocol.EncodeError(protocol.TooManySubscriptions(limit, req.ID, req.HasID)))
			s.dropSlow()
			return
		}
		e := s.checkResume(c, req)
		if e == nil {
			e = s.checkConflate(c, req)
		}
		if e != nil {
			m.ProtocolErrors.WithLabelValues(e.Code).Inc()
			s.enqueue(c, protocol.EncodeError(e))
			s.dropSlow()
			return
		}
		for _, ch := range req.Channels {
			if _, ok := c.subs[ch]; !ok {
				s.subscribe(c, ch, req.Conflate)
			} else if c.mode(ch) != req.Conflate {
				s.unsubscribe(c, ch) // the mode changes from now on
				s.subscribe(c, ch, req.Conflate)
			}
		}
		m.Subscriptions.Add(float64(added))
		if req.Positioned {
			s.positionedReply(c, req)
			s.dropSlow()
			return
		}
	case protocol.OpUnsubscribe:
		removed := 0
		for _, ch := range req.Channels {
			if _, ok := c.subs[ch]; ok {
				s.unsubscribe(c, ch)
				removed++
			}
		}
		m.Subscriptions.Sub(float64(removed))
	}
	s.enqueue(c, protocol.EncodeReply(req))
	s.dropSlow()
}

// checkResume refuses a resume that names a channel c holds already (its records are live:
// a replay would deliver them twice) or a time replay older than ResumeMaxAge.
func (s *shard) checkResume(c *Client, req protocol.Request) *protocol.Error {
	if req.Resume == nil {
		return nil
	}
	for _, ch := range req.Channels {
		if _, ok := c.subs[ch]; ok {
			return protocol.AlreadySubscribed(ch, req.ID, req.HasID)
		}
	}
	maxAge := s.hub.cfg.ResumeMaxAge
	if since := req.Resume.SinceTS; !since.IsZero() && maxAge > 0 && time.Since(since) > maxAge {
		return protocol.SinceTooOld(maxAge, req.ID, req.HasID)
	}
	return nil
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
