package hub

import (
	"time"

	"github.com/adred-codev/ws_poc/ws-single/internal/history"
	"github.com/adred-codev/ws_poc/ws-single/internal/protocol"
)

// clientSet is the subscribers of one channel: a slice to iterate fast on the
// fan-out path and an index for O(1) removal (swap with the last element).
type clientSet struct {
	list  []*Client
	index map[*Client]int
}

func newClientSet() *clientSet {
	return &clientSet{index: make(map[*Client]int)}
}

func (s *clientSet) add(c *Client) {
	if _, ok := s.index[c]; ok {
		return
	}
	s.index[c] = len(s.list)
	s.list = append(s.list, c)
}

func (s *clientSet) remove(c *Client) {
	i, ok := s.index[c]
	if !ok {
		return
	}
	last := len(s.list) - 1
	s.list[i] = s.list[last]
	s.index[s.list[i]] = i
	s.list[last] = nil
	s.list = s.list[:last]
	delete(s.index, c)
}

func (s *clientSet) len() int { return len(s.list) }

// request applies a valid request of c and queues its reply.
func (h *Hub) request(c *Client, req protocol.Request) {
	if c.gone {
		return
	}
	switch req.Op {
	case protocol.OpSubscribe:
		added := 0
		for _, ch := range req.Channels {
			if _, ok := c.subs[ch]; !ok {
				added++
			}
		}
		if limit := h.subscriptionLimit(c); len(c.subs)+added > limit {
			h.metrics.ProtocolErrors.WithLabelValues(protocol.CodeTooManySubscriptions).Inc()
			e := protocol.TooManySubscriptions(limit, req.ID, req.HasID)
			h.enqueue(c, protocol.EncodeError(e))
			return
		}
		e := h.checkResume(c, req)
		if e == nil {
			e = h.checkConflate(c, req)
		}
		if e != nil {
			h.metrics.ProtocolErrors.WithLabelValues(e.Code).Inc()
			h.enqueue(c, protocol.EncodeError(e))
			return
		}
		if c.subs == nil && added > 0 {
			c.subs = make(map[string]struct{}, added)
		}
		for _, ch := range req.Channels {
			if _, ok := c.subs[ch]; !ok {
				c.subs[ch] = struct{}{}
				h.subscribe(c, ch, req.Conflate)
			} else if c.mode(ch) != req.Conflate {
				h.unsubscribe(c, ch) // the mode changes from now on
				h.subscribe(c, ch, req.Conflate)
			}
		}
		if req.Positioned {
			h.positionedReply(c, req)
			return
		}
	case protocol.OpUnsubscribe:
		for _, ch := range req.Channels {
			if _, ok := c.subs[ch]; ok {
				delete(c.subs, ch)
				h.unsubscribe(c, ch)
			}
		}
	}
	h.enqueue(c, protocol.EncodeReply(req))
}

func (h *Hub) sets(ch string) (map[string]*clientSet, string) {
	if topic, ok := protocol.WildcardTopic(ch); ok {
		return h.wild, topic
	}
	return h.exact, ch
}

func (h *Hub) subscribe(c *Client, ch string, mode protocol.Conflate) {
	c.setMode(ch, mode)
	if mode.Mode == protocol.ConflateInterval {
		h.subscribeInterval(c, ch, mode)
	} else {
		sets, key := h.sets(ch)
		s := sets[key]
		if s == nil {
			s = newClientSet()
			sets[key] = s
			h.metrics.Channels.Set(float64(len(h.exact) + len(h.wild)))
		}
		s.add(c)
	}
	h.joinTopic(c, ch)
	h.subscriptions++
	h.metrics.Subscriptions.Set(float64(h.subscriptions))
}

func (h *Hub) unsubscribe(c *Client, ch string) {
	if mode := c.mode(ch); mode.Mode == protocol.ConflateInterval {
		h.unsubscribeInterval(c, ch, mode)
	} else if sets, key := h.sets(ch); sets[key] != nil {
		s := sets[key]
		s.remove(c)
		if s.len() == 0 {
			delete(sets, key)
			h.metrics.Channels.Set(float64(len(h.exact) + len(h.wild)))
		}
	}
	c.setMode(ch, protocol.Conflate{})
	h.leaveTopic(c, ch)
	h.subscriptions--
	h.metrics.Subscriptions.Set(float64(h.subscriptions))
}

// unindex removes the subscriptions of the clients dropped during an event.
func (h *Hub) unindex() {
	for i, c := range h.dropped {
		for ch := range c.subs {
			h.unsubscribe(c, ch)
		}
		c.subs = nil
		h.dropped[i] = nil
	}
	h.dropped = h.dropped[:0]
}

// fanout fans m out to the subscribers of its channel and of its topic
// wildcard. It allocates nothing: each recipient gets the same *protocol.Message.
func (h *Hub) fanout(m *protocol.Message) {
	if m.Kind == protocol.KindGap {
		h.gap(m)
		return
	}
	h.seen[history.Part{Topic: m.Topic, Partition: m.Partition}] = m.Offset
	h.seq++
	if s := h.exact[m.Channel]; s != nil {
		for _, c := range s.list {
			c.mark = h.seq
			if c.skip != nil && c.skips(m) {
				continue // delivered by the instance c resumed from
			}
			if c.conf != nil && c.conf.exact[m.Channel].Mode == protocol.ConflateBehind {
				h.conflate(c, m)
				continue
			}
			h.enqueue(c, m)
		}
	}
	if protocol.InTopic(m.Channel, m.Topic) {
		if s := h.wild[m.Topic]; s != nil {
			for _, c := range s.list {
				if c.mark == h.seq {
					continue // subscribed to the channel too: once is enough
				}
				if c.skip != nil && c.skips(m) {
					continue
				}
				if c.conf != nil && c.conf.wild[m.Topic].Mode == protocol.ConflateBehind {
					h.conflate(c, m)
					continue
				}
				h.enqueue(c, m)
			}
		}
	}
	if len(h.ivTopics) > 0 {
		h.offerInterval(m)
	}
}

// checkResume refuses a resume that names a channel c holds already (its records are live:
// a replay would deliver them twice) or a time replay older than ResumeMaxAge.
func (h *Hub) checkResume(c *Client, req protocol.Request) *protocol.Error {
	if req.Resume == nil {
		return nil
	}
	for _, ch := range req.Channels {
		if _, ok := c.subs[ch]; ok {
			return protocol.AlreadySubscribed(ch, req.ID, req.HasID)
		}
	}
	if since := req.Resume.SinceTS; !since.IsZero() && h.cfg.ResumeMaxAge > 0 && time.Since(since) > h.cfg.ResumeMaxAge {
		return protocol.SinceTooOld(h.cfg.ResumeMaxAge, req.ID, req.HasID)
	}
	return nil
}
