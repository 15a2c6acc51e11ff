// This file is duplicated from ws-single (internal/history/ring.go) on purpose: the variants
// share the history.

package history

import (
	"sync"
	"time"

	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// Ring is one partition's recent messages, in offset order. Append and Reset are called by
// the partition's one writer; Replay, Find and Stats by anyone.
type Ring struct {
	cfg Config

	mu    sync.RWMutex
	buf   []*protocol.Message // circular, grown up to cfg.Records
	head  int                 // index of the oldest
	n     int
	bytes int
	from  int64 // every record from this offset on is held
	next  int64 // the offset after the last record appended (or the start)
	start int64 // the first offset its writer consumes (since creation or Reset)

	logStart int64 // the log's first offset as last seen in Kafka (-1 unknown)

	channels channelIndex // the held records by channel
}

func newRing(cfg Config, start int64) *Ring {
	return &Ring{cfg: cfg, from: start, next: start, start: start, logStart: -1, channels: channelIndex{}}
}

// Append adds m (a record's message, offsets ascending) and drops what passes the bounds.
func (r *Ring) Append(m *protocol.Message) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.next = m.Offset + 1
	if r.cfg.Records == 0 {
		r.from = r.next
		return
	}
	if r.n == len(r.buf) {
		if r.n < r.cfg.Records {
			r.grow()
		} else {
			r.popLocked()
		}
	}
	r.buf[(r.head+r.n)%len(r.buf)] = m
	r.channels.add(m)
	r.n++
	r.bytes += len(m.Wire)
	for r.n > 1 && r.bytes > r.cfg.Bytes {
		r.popLocked()
	}
	r.trimLocked(m.Time)
}

// grow doubles the buffer up to cfg.Records, so a quiet partition does not hold a full one.
func (r *Ring) grow() {
	size := min(max(2*len(r.buf), 64), r.cfg.Records)
	buf := make([]*protocol.Message, size)
	for i := range r.n {
		buf[i] = r.buf[(r.head+i)%len(r.buf)]
	}
	r.buf, r.head = buf, 0
}

func (r *Ring) popLocked() {
	m := r.buf[r.head]
	r.buf[r.head] = nil
	r.channels.drop(m)
	r.head = (r.head + 1) % len(r.buf)
	r.n--
	r.bytes -= len(m.Wire)
	r.from = m.Offset + 1
}

// trimLocked drops records older than MaxAge before now (by record timestamp).
func (r *Ring) trimLocked(now time.Time) {
	if r.cfg.MaxAge <= 0 {
		return
	}
	cut := now.Add(-r.cfg.MaxAge)
	for r.n > 0 && r.buf[r.head].Time.Before(cut) {
		r.popLocked()
	}
	if r.n == 0 {
		r.from = r.next
	}
}

// Trim drops records older than MaxAge before now: a quiet partition's old records go too.
func (r *Ring) Trim(now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.trimLocked(now)
}

// Reset forgets every record: the partition continues at next, with nothing held before it
// (after a gap in the live stream).
func (r *Ring) Reset(next int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	clear(r.buf)
	clear(r.channels)
	r.head, r.n, r.bytes = 0, 0, 0
	r.from, r.next, r.start = next, next, next
}

// Start returns the first offset its writer consumes (since creation or the last Reset):
// where a hub that has seen nothing of the partition yet is live from.
func (r *Ring) Start() int64 {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.start
}

// SetLogStart records the log's first offset as seen in Kafka (the retention check).
func (r *Ring) SetLogStart(off int64) {
	r.mu.Lock()
	r.logStart = off
	r.mu.Unlock()
}

// Replay calls fn, in offset order, with every held message whose offset is in (after,
// before), and reports whether the ring covers that range (after+1 >= From); when it does
// not, fn is not called.
func (r *Ring) Replay(after, before int64, fn func(*protocol.Message)) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if after+1 < r.from {
		return false
	}
	for i := r.search(after + 1); i < r.n; i++ {
		m := r.buf[(r.head+i)%len(r.buf)]
		if m.Offset >= before {
			break
		}
		fn(m)
	}
	return true
}

// ReplayMatch is Replay for the records match selects, and how many records it visited.
// A match with a wildcard of the partition's topic takes nearly every record, so it scans
// the range; one of exact channels only visits their records (channelIndex), so its cost
// is what it replays however busy the partition.
func (r *Ring) ReplayMatch(match Match, topic string, after, before int64, fn func(*protocol.Message)) (bool, int) {
	if match.HasWildcard(topic) {
		n := 0
		ok := r.Replay(after, before, func(m *protocol.Message) {
			n++
			if match.Matches(m) {
				fn(m)
			}
		})
		return ok, n
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	if after+1 < r.from {
		return false, 0
	}
	return true, r.channels.replay(match.Exact(topic), after, before, fn)
}

// search returns the index (from the oldest) of the first held message with offset >= off.
func (r *Ring) search(off int64) int {
	lo, hi := 0, r.n
	for lo < hi {
		mid := (lo + hi) / 2
		if r.buf[(r.head+mid)%len(r.buf)].Offset < off {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo
}

// AfterTime returns the offset just before the first held record stamped at or after t,
// and whether the ring answers it: it holds a record older than t (so nothing before its
// first held record can be at or after t, Kafka's CreateTime aside) or it holds everything
// since the log's start. With no record at or after t, the answer is next-1: nothing.
func (r *Ring) AfterTime(t time.Time) (int64, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	if r.n == 0 || !r.buf[r.head].Time.Before(t) {
		if r.logStart < 0 || r.from > r.logStart {
			return 0, false
		}
	}
	for i := range r.n {
		if m := r.buf[(r.head+i)%len(r.buf)]; !m.Time.Before(t) {
			return m.Offset - 1, true
		}
	}
	return r.next - 1, true
}

// Stats are a ring's figures for the metrics and the resume plan.
type Stats struct {
	Records, Bytes int
	From, Next     int64     // held from From; Next is the offset after the last appended
	LogStart       int64     // the log's first offset (-1 unknown)
	Oldest         time.Time // the oldest held record's timestamp (zero if none)
}

// Stats returns the ring's figures.
func (r *Ring) Stats() Stats {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s := Stats{Records: r.n, Bytes: r.bytes, From: r.from, Next: r.next, LogStart: r.logStart}
	if r.n > 0 {
		s.Oldest = r.buf[r.head].Time
	}
	return s
}
