// This file is duplicated from ws-single (internal/history/plan.go) on purpose: the variants
// share the history.

package history

import (
	"slices"
	"time"

	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// Range is one partition's records to replay: offsets in (After, Before). When Since is
// set the range is by time: After is not known yet, and the Kafka reader resolves it to the
// offset before the first record stamped at or after Since.
type Range struct {
	Part
	After, Before int64
	Since         time.Time
}

// Plan is how a subscribe is served: the epochs and live positions of its topics, and for a
// resume the ranges to replay, the partitions where the client is ahead of this instance,
// or why it cannot be recovered.
type Plan struct {
	Epochs protocol.Epochs
	// Live are, per partition of the request's consumed topics, the offset after which the
	// subscription is live: the hub's frontier less one, or the client's position where it
	// is ahead.
	Live protocol.Positions
	// Ranges are the replay: served from memory when a ring covers them, else from Kafka.
	Ranges []Range
	// Skip are partitions where the client is ahead of this instance: live records up to
	// the offset were delivered already (by another instance) and are dropped.
	Skip map[Part]int64
	// Reason is set (a protocol.NotRecovered* reason) when the resume cannot be recovered;
	// Topic, Partition (-1 if none) and Earliest (-1 if none) say where.
	Reason    string
	Topic     string
	Partition int32
	Earliest  int64
}

// Frontier returns the next offset of a partition the hub will fan out, or -1 when it has
// fanned out none yet (the ring's Start is then the frontier).
type Frontier func(Part) int64

// Plan plans a subscribe to channels; r is its resume (nil for a positioned subscribe).
// Topics the server does not consume have no epoch, no positions and nothing to replay. A
// resume of a topic the server consumes but has not attached yet (it is starting, or Kafka
// is down) is not recovered ("unavailable"): live would start wherever the consumer does,
// and what the client missed meanwhile would be lost without a word.
// A partition missing from the client's positions is live from the frontier, unreplayed.
func (h *History) Plan(channels []string, r *protocol.Resume, frontier Frontier) Plan {
	plan := Plan{Epochs: protocol.Epochs{}, Live: protocol.Positions{}, Partition: -1, Earliest: -1}
	var frontiers map[Part]int64 // of skipped partitions, to undo a skip if the plan fails
	for _, name := range Topics(channels) {
		epoch, ok := h.Epoch(name)
		if !ok {
			if r != nil && plan.Reason == "" && h.consumed[name] && (!r.SinceTS.IsZero() || r.Positions[name] != nil) {
				plan.Reason, plan.Topic = protocol.NotRecoveredUnavailable, name
			}
			continue
		}
		plan.Epochs[name] = epoch
		live := make(map[int32]int64)
		plan.Live[name] = live
		for _, p := range h.Partitions(name) {
			part := Part{name, p}
			ring := h.Ring(part)
			f := frontier(part)
			if f < 0 {
				f = ring.Start()
			}
			live[p] = f - 1
			if r == nil || plan.Reason != "" {
				continue
			}
			if !r.SinceTS.IsZero() {
				if after, ok := ring.AfterTime(r.SinceTS); !ok {
					plan.Ranges = append(plan.Ranges, Range{Part: part, Before: f, Since: r.SinceTS})
				} else if after < f-1 {
					plan.Ranges = append(plan.Ranges, Range{Part: part, After: after, Before: f})
				}
				continue
			}
			if want, ok := r.Epochs[name]; ok && want != epoch {
				plan.Reason, plan.Topic = protocol.NotRecoveredEpochChanged, name
				continue
			}
			pos, ok := r.Positions[name][p]
			if !ok {
				continue
			}
			switch st := ring.Stats(); {
			case pos >= f:
				if plan.Skip == nil {
					plan.Skip = make(map[Part]int64)
				}
				plan.Skip[part] = pos
				if frontiers == nil {
					frontiers = make(map[Part]int64)
				}
				frontiers[part] = f
				live[p] = pos
			case pos == f-1:
			case st.LogStart >= 0 && pos+1 < st.LogStart:
				plan.Reason, plan.Topic, plan.Partition, plan.Earliest = protocol.NotRecoveredOutOfRetention, name, p, st.LogStart
			default:
				plan.Ranges = append(plan.Ranges, Range{Part: part, After: pos, Before: f})
			}
		}
	}
	if plan.Reason != "" {
		// Not recovered: nothing is replayed and nothing skipped, live from the frontiers.
		for part := range plan.Skip {
			plan.Live[part.Topic][part.Partition] = frontiers[part] - 1
		}
		plan.Ranges, plan.Skip = nil, nil
	}
	return plan
}

// Topics returns the topics of channels, ascending, each once.
func Topics(channels []string) []string {
	var out []string
	for _, ch := range channels {
		if name := protocol.ChannelTopic(ch); !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// Match selects the records a set of channels receives: its exact channels, and every
// record in the topic of a wildcard.
type Match struct {
	exact map[string]struct{}
	wild  map[string]struct{}
}

// NewMatch returns the matcher of channels.
func NewMatch(channels []string) Match {
	m := Match{exact: make(map[string]struct{}), wild: make(map[string]struct{})}
	for _, ch := range channels {
		if t, ok := protocol.WildcardTopic(ch); ok {
			m.wild[t] = struct{}{}
		} else {
			m.exact[ch] = struct{}{}
		}
	}
	return m
}

// HasWildcard reports whether the channels include topic's wildcard.
func (m Match) HasWildcard(topic string) bool {
	_, ok := m.wild[topic]
	return ok
}

// Exact returns the exact channels of topic, each once.
func (m Match) Exact(topic string) []string {
	var out []string
	for ch := range m.exact {
		if protocol.ChannelTopic(ch) == topic {
			out = append(out, ch)
		}
	}
	return out
}

// Matches reports whether the record message m goes to the channels, once however many of
// them it matches.
func (m Match) Matches(msg *protocol.Message) bool {
	if msg.Kind != protocol.KindRecord {
		return false
	}
	if _, ok := m.exact[msg.Channel]; ok {
		return true
	}
	_, ok := m.wild[msg.Topic]
	return ok && protocol.InTopic(msg.Channel, msg.Topic)
}
