package hub

import (
	"github.com/adred-codev/ws_poc/ws-multi/internal/metrics"
	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// Conflation (docs/PROTOCOL.md, Conflation). A subscription may conflate while its client is
// behind (this file: in the client's own queue) or at an interval (interval.go: once per
// topic partition and interval in each shard, for all its subscribers there). A client that
// never asked has a nil conf and pays one nil check where a record is queued or judged.
//
// While behind, a record of a key (channel, partition) whose newer record arrives before it
// was written is replaced: its slot in the queue becomes a hole (nil) and the newer record
// goes to the end of the queue, right after its "conflated" line, so a partition's records
// keep their offset order. Holes are squeezed out before the next write (compact). Positions
// of the queue are absolute (base counts what writes took off its front), so a slot stays
// valid across writes without being touched by them.

// conflation is a client's conflation state.
type conflation struct {
	// Subscription modes, of channels (exact) and of wildcards (by topic); plain
	// subscriptions are absent.
	exact map[string]protocol.Conflate
	wild  map[string]protocol.Conflate
	// intervals: per topic, the interval (in ticks) of the client's channels of it, and how
	// many of them there are: one interval per topic (protocol.ConflateMismatch).
	intervals map[string]topicInterval
	behind    int // subscriptions in behind mode

	// An episode of behind mode: from the first record queued for a behind subscription
	// while c is behind until c's queue is out. keys is nil between episodes.
	keys      map[key]*slot
	base      uint64 // messages taken off the front of the queue so far
	holes     int    // nil entries of the queue: replaced records and their old lines
	held      int    // queued records a newer one may still replace, and their lines
	heldBytes int
	active    bool // replaced a record in this episode: counted in ws_conflation_clients
}

// topicInterval is a topic's interval on one client and how many of its channels use it.
type topicInterval struct {
	every uint64
	n     int
}

// key is what conflation keeps one latest record of: a channel on one partition.
type key struct {
	channel   string
	partition int32
}

// slot is a key's newest record in its client's queue, at absolute position at (below
// base once written). n records were replaced before it since the key's last record the
// client got, the last at offset to; then note, its conflated line, is queued at noteAt.
type slot struct {
	at     uint64
	n      int
	to     int64
	note   *protocol.Message
	noteAt uint64
	noted  bool
}

// conflation returns c's conflation state, made on first use.
func (c *Client) conflation() *conflation {
	if c.conf == nil {
		c.conf = &conflation{}
	}
	return c.conf
}

// mode returns how c's subscription ch conflates.
func (c *Client) mode(ch string) protocol.Conflate {
	if c.conf == nil {
		return protocol.Conflate{}
	}
	if topic, ok := protocol.WildcardTopic(ch); ok {
		return c.conf.wild[topic]
	}
	return c.conf.exact[ch]
}

// setMode records subscription ch's mode; a plain one is forgotten.
func (c *Client) setMode(ch string, mode protocol.Conflate) {
	if mode.Mode == protocol.ConflateNone && c.conf == nil {
		return
	}
	cf := c.conflation()
	set, name := &cf.exact, ch
	if topic, ok := protocol.WildcardTopic(ch); ok {
		set, name = &cf.wild, topic
	}
	if (*set)[name].Mode == protocol.ConflateBehind {
		cf.behind--
	}
	if mode.Mode == protocol.ConflateBehind {
		cf.behind++
	}
	if mode.Mode == protocol.ConflateNone {
		delete(*set, name)
		return
	}
	if *set == nil {
		*set = make(map[string]protocol.Conflate)
	}
	(*set)[name] = mode
}

// checkConflate refuses a subscribe at an interval that differs from the one of c's other
// channels of the same topic (plain and behind count as none): one partition's records keep
// their order for a client only through one interval.
func (s *shard) checkConflate(c *Client, req protocol.Request) *protocol.Error {
	want := ticks(req.Conflate)
	for i, ch := range req.Channels {
		topic := protocol.ChannelTopic(ch)
		others := c.topics[topic].channels
		for j, o := range req.Channels {
			if protocol.ChannelTopic(o) != topic {
				continue
			}
			if j < i {
				others = 0 // topic checked already
				break
			}
			if _, ok := c.subs[o]; ok {
				others-- // resubscribed: its mode changes with the request
			}
		}
		if others <= 0 {
			continue
		}
		var have uint64
		if c.conf != nil {
			have = c.conf.intervals[topic].every
		}
		if have != want {
			return protocol.ConflateMismatch(topic, req.ID, req.HasID)
		}
	}
	return nil
}

// behind reports whether c is behind: its socket has not taken the last write, or its queue
// holds more than half of a limit.
func (s *shard) behind(c *Client) bool {
	n, b := len(c.pending), c.pendingBytes
	if c.conf != nil {
		n -= c.conf.holes
	}
	return c.flushing || 2*n > s.hub.cfg.SendQueueMessages || 2*b > s.hub.cfg.SendQueueBytes
}

// conflate queues record m for c, whose subscription to m's channel conflates while behind.
func (s *shard) conflate(c *Client, m *protocol.Message) {
	cf := c.conf
	if c.gone || c.recovering != nil || (cf.keys == nil && !s.behind(c)) {
		// Keeping up, or resuming (the resume's place in the queue is fixed): nothing to replace.
		s.enqueue(c, m)
		return
	}
	k := key{channel: m.Channel, partition: m.Partition}
	sl := cf.keys[k]
	switch {
	case sl == nil:
		sl = s.newSlot(c, k)
	case sl.at >= cf.base && (!sl.noted || sl.noteAt >= cf.base) && s.behind(c):
		s.replace(c, sl)
		if cf.holes > 64 && 2*cf.holes > len(c.pending) {
			c.compact() // a socket that takes nothing for long must not grow the queue with holes
		}
	default:
		// The key's last record stays: it was written, its line went without it (a write
		// ends between them), or c caught up. It can no longer be replaced.
		if sl.at >= cf.base {
			cf.held--
			cf.heldBytes -= len(c.pending[sl.at-cf.base].Wire)
		}
		if sl.noted && sl.noteAt >= cf.base {
			cf.held--
			cf.heldBytes -= len(sl.note.Wire)
			sl.note = nil // still queued: not to be reused
		}
		sl.n, sl.noted = 0, false
	}
	if sl.n > 0 {
		if sl.note == nil {
			sl.note = &protocol.Message{Channel: m.Channel, Partition: m.Partition}
		}
		sl.note.Wire = protocol.AppendConflated(sl.note.Wire[:0], m, sl.n, sl.to)
		sl.noteAt, sl.noted = cf.base+uint64(len(c.pending)), true
		c.pending = append(c.pending, sl.note)
		c.pendingBytes += len(sl.note.Wire)
		cf.held++
		cf.heldBytes += len(sl.note.Wire)
	}
	sl.at = cf.base + uint64(len(c.pending))
	cf.held++
	cf.heldBytes += len(m.Wire)
	s.enqueue(c, m)
}

// newSlot starts tracking key k for c; keys of records written long ago are pruned when they
// outnumber the queue, so the index stays in proportion to it.
func (s *shard) newSlot(c *Client, k key) *slot {
	cf := c.conf
	if cf.keys == nil {
		cf.keys = make(map[key]*slot)
	} else if len(cf.keys) > 2*len(c.pending)+64 {
		before := len(cf.keys)
		for k, sl := range cf.keys {
			if sl.at < cf.base {
				delete(cf.keys, k)
			}
		}
		s.hub.metrics.ConflationPendingKeys.Sub(float64(before - len(cf.keys)))
	}
	sl := &slot{}
	cf.keys[k] = sl
	s.hub.metrics.ConflationPendingKeys.Inc()
	return sl
}

// replace drops s's queued record (and its line) for the newer one about to be queued.
func (s *shard) replace(c *Client, sl *slot) {
	cf := c.conf
	i := sl.at - cf.base
	old := c.pending[i]
	c.pending[i] = nil
	c.pendingBytes -= len(old.Wire)
	cf.holes++
	cf.held--
	cf.heldBytes -= len(old.Wire)
	if sl.noted {
		c.pending[sl.noteAt-cf.base] = nil
		c.pendingBytes -= len(sl.note.Wire)
		cf.holes++
		cf.held--
		cf.heldBytes -= len(sl.note.Wire)
		sl.noted = false
	}
	sl.n++
	sl.to = old.Offset
	s.hub.metrics.ConflatedRecords.WithLabelValues(metrics.ConflateBehind).Inc()
	if !cf.active {
		cf.active = true
		s.hub.metrics.ConflationClients.Inc()
	}
}

// compact squeezes the holes out of c's queue before a write; slots follow their records.
func (c *Client) compact() {
	cf := c.conf
	j := 0
	for i, m := range c.pending {
		if m == nil {
			continue
		}
		if i != j {
			if sl := cf.keys[key{channel: m.Channel, partition: m.Partition}]; sl != nil {
				at, to := cf.base+uint64(i), cf.base+uint64(j)
				if sl.at == at {
					sl.at = to
				} else if sl.noted && sl.noteAt == at {
					sl.noteAt = to
				}
			}
			c.pending[j] = m
		}
		j++
	}
	clear(c.pending[j:])
	c.pending = c.pending[:j]
	cf.holes = 0
}

// taken accounts for the n messages a write takes off the front of c's queue.
func (cf *conflation) taken(pending []*protocol.Message) {
	if cf.held > 0 {
		for i, m := range pending {
			sl := cf.keys[key{channel: m.Channel, partition: m.Partition}]
			if sl == nil {
				continue
			}
			if at := cf.base + uint64(i); sl.at == at || (sl.noted && sl.noteAt == at) {
				cf.held--
				cf.heldBytes -= len(m.Wire)
			}
		}
	}
	cf.base += uint64(len(pending))
}

// endEpisode forgets c's behind-mode keys once its queue is out (or c is gone).
func (s *shard) endEpisode(c *Client) {
	cf := c.conf
	if cf.keys == nil {
		return
	}
	s.hub.metrics.ConflationPendingKeys.Sub(float64(len(cf.keys)))
	cf.keys = nil
	cf.holes, cf.held, cf.heldBytes = 0, 0, 0
	if cf.active {
		cf.active = false
		s.hub.metrics.ConflationClients.Dec()
	}
}

// behindChunk bounds a write to a client with a behind-mode subscription: a small write
// leaves its records in the queue, where newer ones still replace them, rather than in the
// connection's buffer (about 64 KiB otherwise), and a slow link takes it within the write
// timeout; the write that finds the socket full, before any record was replaced, too.
const behindChunk = 8 << 10

// chunk is what of c's queue its next write may take: what is writable, cut to behindChunk
// bytes (at least one message) while c has a behind-mode subscription or an episode lasts.
func (c *Client) chunk() []*protocol.Message {
	msgs := c.writable()
	if c.conf == nil || (c.conf.keys == nil && c.conf.behind == 0) {
		return msgs
	}
	n, b := 0, 0
	for n < len(msgs) && (n == 0 || b+len(msgs[n].Wire) <= behindChunk) {
		b += len(msgs[n].Wire)
		n++
	}
	return msgs[:n]
}

// conflateReplay keeps the latest record per key of a resume's replay, each after a
// conflated line when it replaced older ones, in the replay's order; it returns them and
// how many records they hold.
func conflateReplay(replay []*protocol.Message) ([]*protocol.Message, int) {
	type last struct {
		i    int   // index of the key's latest record
		n    int   // records of the key
		prev int64 // offset of the one before the latest
	}
	keys := make(map[key]last)
	for i, m := range replay {
		k := key{channel: m.Channel, partition: m.Partition}
		l := keys[k]
		if l.n > 0 {
			l.prev = replay[l.i].Offset
		}
		l.i, l.n = i, l.n+1
		keys[k] = l
	}
	out := make([]*protocol.Message, 0, 2*len(keys))
	for i, m := range replay {
		l := keys[key{channel: m.Channel, partition: m.Partition}]
		if l.i != i {
			continue
		}
		if l.n > 1 {
			out = append(out, protocol.EncodeConflated(m, l.n-1, l.prev))
		}
		out = append(out, m)
	}
	return out, len(keys)
}
