package hub

import "github.com/adred-codev/ws_poc/ws-multi/internal/protocol"

// The subscription index of a shard (channel -> subscribers, topic -> wildcard
// subscribers), how a client leaves it (drop) and the fan-out over it; read and written by
// the shard goroutine only (doc.go, invariant 1).

// subscribers is the list of clients of one channel in one shard. A slice, not a map, so
// fan-out is a linear scan; each client remembers its index (Client.subs) for O(1) removal.
type subscribers struct {
	clients []*Client
}

// list returns the subscriber list of a subscription name, creating it when create is set.
func (s *shard) list(name string, create bool) *subscribers {
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

func (s *shard) subscribe(c *Client, name string) {
	l := s.list(name, true)
	c.subs[name] = len(l.clients)
	l.clients = append(l.clients, c)
	if len(l.clients) == 1 {
		s.hub.channels.add(name, 1)
	}
}

func (s *shard) unsubscribe(c *Client, name string) {
	l := s.list(name, false)
	i := c.subs[name]
	last := len(l.clients) - 1
	moved := l.clients[last]
	l.clients[i] = moved
	moved.subs[name] = i
	l.clients[last] = nil
	l.clients = l.clients[:last]
	delete(c.subs, name)
	if last == 0 {
		if topic, ok := protocol.WildcardTopic(name); ok {
			delete(s.wildcards, topic)
		} else {
			delete(s.channels, name)
		}
		s.hub.channels.add(name, -1)
	}
}

// drop ends every delivery to c: its queue and its subscriptions, at once. A hand-off being
// flushed ends with its flusher. A Sync waiting on c returns.
func (s *shard) drop(c *Client) {
	c.gone = true
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
// client gets a record once). No allocation per recipient: the message is shared.
func (s *shard) fanout(m *protocol.Message) {
	exact := s.channels[m.Channel]
	if exact != nil {
		for _, c := range exact.clients {
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
			s.enqueue(c, m)
		}
	}
	s.dropSlow()
}
