package hub

import (
	"context"
	"errors"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/adred-codev/ws_poc/ws-multi/internal/history"
	"github.com/adred-codev/ws_poc/ws-multi/internal/metrics"
	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// Positions and resume on a shard (doc.go, Resume). Each shard owns its own frontier (seen:
// per partition, the last offset it fanned out), so a resume served from memory replays
// (position, the shard's frontier) and subscribes in one control event of the client's
// shard: no record of the partition is fanned out by that shard in between, so the seam has
// no gap and no duplicate by construction, whatever the other shards have reached. A resume
// that needs Kafka holds the client's writes at the replay's place while a catch-up
// goroutine of the shard reads; live records go on queueing behind that place, charged to
// the client's queue limits, and the replay is spliced in front of them when it ends. No
// lock is taken on the broadcast path: the rings' read locks are taken by the shard serving
// a resume, on its own goroutine.

// Reader reads from Kafka what the history no longer holds (*kafka.Reader).
type Reader interface {
	// Read returns the records of ranges that match, each range's in offset order, and
	// how many records it scanned. It fails with history.ErrBusy, history.ErrTooFarBehind,
	// a *history.OutOfRetentionError, ctx's error, or a Kafka error.
	Read(ctx context.Context, ranges []history.Range, match func(*protocol.Message) bool) ([]*protocol.Message, int, error)
}

// maxDeferred bounds the requests a client may send while its resume reads Kafka; they
// are applied, in order, after it. Past it a request is refused at once (an error reply).
const maxDeferred = 64

// errNoReader is a resume that needs Kafka on a hub without a reader.
var errNoReader = errors.New("hub: no catch-up reader")

// recovery is one resume that reads Kafka. The client's shard owns it but msgs, read and
// err, which the catch-up goroutine sets before it reports (evResumed) and the shard reads
// only after the report: an abort meanwhile counts what the shard scanned (scanned), never
// what the goroutine may be writing.
type recovery struct {
	c       *Client
	req     protocol.Request
	plan    history.Plan
	match   history.Match
	start   time.Time
	at      int                 // where in c.pending the replay goes
	memory  []*protocol.Message // replayed from memory
	scanned int                 // records scanned in memory
	kafka   []history.Range     // to read from Kafka
	cancel  context.CancelFunc

	msgs []*protocol.Message // read from Kafka
	read int                 // records scanned in Kafka
	err  error
}

// frontier is the shard's history.Frontier: the next offset of a partition it will fan out.
func (s *shard) frontier(p history.Part) int64 {
	if off, ok := s.seen[p]; ok {
		return off + 1
	}
	return -1
}

// positionedReply answers a positioned subscribe, or serves a resume, once its channels are
// in the shard's index (so live records from the shard's frontier on are queued for c behind
// the replay).
func (s *shard) positionedReply(c *Client, req protocol.Request) {
	hist := s.hub.hist
	c.positioned = true
	plan := hist.Plan(req.Channels, req.Resume, s.frontier)
	if req.Resume == nil {
		s.enqueue(c, protocol.EncodeSubscribed(req, plan.Epochs, plan.Live, false))
		return
	}
	s.enqueue(c, protocol.EncodeSubscribed(req, plan.Epochs, nil, true))
	if c.gone {
		return
	}
	if c.conf != nil && c.conf.holes > 0 {
		c.compact() // the resume's place must not move under it
	}
	if req.Conflate.Mode == protocol.ConflateInterval {
		// A bucket may hold a record the replay sends: its release, during or after the
		// resume, must not send it again.
		c.skip = skipUpTo(c.skip, plan.Live)
	}
	rec := &recovery{c: c, req: req, plan: plan, match: history.NewMatch(req.Channels), start: time.Now(), at: len(c.pending)}
	if plan.Reason != "" {
		s.complete(rec)
		return
	}
	for _, r := range plan.Ranges {
		if r.Since.IsZero() {
			ok, n := hist.Ring(r.Part).ReplayMatch(rec.match, r.Topic, r.After, r.Before, func(m *protocol.Message) {
				rec.memory = append(rec.memory, m)
			})
			rec.scanned += n
			if ok {
				continue
			}
		}
		rec.kafka = append(rec.kafka, r)
	}
	c.skip = mergeSkip(c.skip, plan.Skip)
	if len(rec.kafka) == 0 {
		s.complete(rec)
		return
	}
	if s.hub.reader == nil {
		rec.err = errNoReader
		s.complete(rec)
		return
	}
	// Cancellable even without a timeout: an abort (overflow, drain, c gone) frees the reader.
	var ctx context.Context
	var cancel context.CancelFunc
	if t := s.hub.cfg.ResumeTimeout; t > 0 {
		ctx, cancel = context.WithTimeout(s.ctx, t)
	} else {
		ctx, cancel = context.WithCancel(s.ctx)
	}
	rec.cancel = cancel
	c.recovering = rec
	s.catchups.Add(1)
	go s.catchup(ctx, rec)
}

// catchup is a resume's Kafka read, owned by the shard (run waits for it); it reports to
// the shard as a control event, or gives up when the shard stops.
func (s *shard) catchup(ctx context.Context, rec *recovery) {
	defer s.catchups.Done()
	rec.msgs, rec.read, rec.err = s.hub.reader.Read(ctx, rec.kafka, rec.match.Matches)
	select {
	case s.ctrl <- event{kind: evResumed, rec: rec}:
	case <-s.ctx.Done():
	}
}

// resumed takes a catch-up's report; one aborted meanwhile (overflow, drain, c gone) is
// ignored.
func (s *shard) resumed(rec *recovery) {
	rec.cancel()
	if rec.c.recovering != rec {
		return
	}
	rec.c.recovering = nil
	s.complete(rec)
	s.undefer(rec.c)
}

// complete ends a resume: the replay and its recovered line go in at the resume's place,
// ahead of the live records queued since.
func (s *shard) complete(rec *recovery) {
	c := rec.c
	plan := rec.plan
	line := protocol.Recovered{ID: rec.req.ID, HasID: rec.req.HasID, Epochs: plan.Epochs, Positions: plan.Live, Partition: -1, Earliest: -1}
	source := protocol.SourceMemory
	if len(rec.kafka) > 0 {
		source = protocol.SourceKafka
	}
	var replay []*protocol.Message
	switch {
	case plan.Reason != "":
		line.Reason, line.Topic, line.Partition, line.Earliest = plan.Reason, plan.Topic, plan.Partition, plan.Earliest
		source = metrics.SourceNone
	case rec.err != nil:
		reason, part, earliest := history.Reason(rec.err)
		line.Reason, line.Topic, line.Partition, line.Earliest = reason, part.Topic, part.Partition, earliest
		s.hub.log.Debug("resume not recovered", zap.Int("shard", s.index), zap.Error(rec.err))
	default:
		replay = append(rec.memory, rec.msgs...)
		line.Recovered, line.Source, line.Replayed = true, source, len(replay)
		if rec.req.Conflate.Mode != protocol.ConflateNone {
			replay, line.Replayed = conflateReplay(replay)
		}
	}
	s.countResume(line, source, rec, rec.scanned+rec.read)
	s.splice(c, rec.at, append(replay, protocol.EncodeRecovered(line)))
}

// countResume counts a finished resume, which scanned records, in the metrics.
func (s *shard) countResume(line protocol.Recovered, source string, rec *recovery, scanned int) {
	m := s.hub.metrics
	if line.Recovered {
		m.ResumeRequests.WithLabelValues(metrics.ResultRecovered, metrics.ReasonNone, source).Inc()
	} else {
		m.ResumeRequests.WithLabelValues(metrics.ResultNotRecovered, line.Reason, source).Inc()
	}
	m.ResumeReplayed.Observe(float64(line.Replayed))
	m.ResumeScanned.Observe(float64(scanned))
	m.ResumeDuration.Observe(time.Since(rec.start).Seconds())
}

// splice puts msgs into c's queue at index at (the place of a resume), ahead of what was
// queued since, and schedules a write. It is not judged by the slow rule: the replay was
// asked for, and the client's next message is judged with it.
func (s *shard) splice(c *Client, at int, msgs []*protocol.Message) {
	if c.gone {
		return
	}
	c.pending = slices.Insert(c.pending, at, msgs...)
	c.pendingBytes += wireBytes(msgs)
	if !c.dirty && !c.flushing {
		c.dirty = true
		s.dirty = append(s.dirty, c)
	}
}

// abortResume ends c's Kafka catch-up early with reason (its report is then ignored): its
// recovered line says so, and live records queued since its place follow.
func (s *shard) abortResume(c *Client, reason string) {
	rec := c.recovering
	rec.cancel()
	c.recovering = nil
	plan := rec.plan
	s.countResume(protocol.Recovered{Reason: reason}, protocol.SourceKafka, rec, rec.scanned) // not rec.read: the reader may be writing it
	s.splice(c, rec.at, []*protocol.Message{protocol.EncodeRecovered(protocol.Recovered{
		ID: rec.req.ID, HasID: rec.req.HasID, Reason: reason, Partition: -1, Earliest: -1,
		Epochs: plan.Epochs, Positions: plan.Live,
	})})
	s.undeferLater(c)
}

// deferEvent keeps a request (or an error reply) of c, read while its resume reads Kafka,
// for after it: replies keep the order of requests.
func (s *shard) deferEvent(c *Client, ev event) {
	// A permit is always kept, in order: dropping or hoisting it would let a channel its
	// credentials no longer allow stay subscribed. Permits are as rate-limited as requests.
	if len(c.deferred) >= maxDeferred && ev.kind != evPermit {
		// Refused, not kept: its error reply queues behind the resume, ahead of the
		// replies deferred before it (an error reply read past the bound goes as is).
		if ev.kind == evRequest {
			ev = event{kind: evReply, client: c, err: protocol.TooManyWaiting(maxDeferred, ev.req.ID, ev.req.HasID)}
		}
		s.apply(ev)
		return
	}
	c.deferred = append(c.deferred, ev)
}

// undefer applies c's deferred requests in order, until one starts another Kafka resume.
func (s *shard) undefer(c *Client) {
	for len(c.deferred) > 0 && c.recovering == nil && !c.gone {
		ev := c.deferred[0]
		c.deferred[0] = event{}
		c.deferred = c.deferred[1:]
		s.apply(ev)
	}
	if len(c.deferred) == 0 {
		c.deferred = nil
	}
}

// undeferLater applies c's deferred requests after the current round: an abort happens
// inside a fan-out (or a gap, or a mark), which must not change the index it walks.
func (s *shard) undeferLater(c *Client) {
	if len(c.deferred) > 0 {
		s.undeferred = append(s.undeferred, c)
	}
}

// applyUndeferred applies the deferred requests of clients whose resume was aborted during
// the round.
func (s *shard) applyUndeferred() {
	for i, c := range s.undeferred {
		s.undeferred[i] = nil
		s.undefer(c)
	}
	s.undeferred = s.undeferred[:0]
}

// mergeSkip adds the partitions of add to skip.
func mergeSkip(skip, add map[history.Part]int64) map[history.Part]int64 {
	if len(add) == 0 {
		return skip
	}
	if skip == nil {
		skip = make(map[history.Part]int64, len(add))
	}
	for p, off := range add {
		skip[p] = off
	}
	return skip
}

// skipUpTo adds positions to skip, keeping the higher offset of a partition in both.
func skipUpTo(skip map[history.Part]int64, positions protocol.Positions) map[history.Part]int64 {
	for topic, parts := range positions {
		for p, off := range parts {
			if skip == nil {
				skip = make(map[history.Part]int64)
			}
			part := history.Part{Topic: topic, Partition: p}
			if cur, ok := skip[part]; !ok || off > cur {
				skip[part] = off
			}
		}
	}
	return skip
}

// skips reports whether m is a record c has had already (it resumed ahead of this
// instance on m's partition), and forgets a partition once c is past it.
func (c *Client) skips(m *protocol.Message) bool {
	p := history.Part{Topic: m.Topic, Partition: m.Partition}
	upto, ok := c.skip[p]
	if !ok {
		return false
	}
	if m.Offset <= upto {
		return true
	}
	c.forget(p)
	return false
}

// forget drops c's skip of partition p; an empty filter goes, so the fan-out's nil check
// skips it again.
func (c *Client) forget(p history.Part) {
	delete(c.skip, p)
	if len(c.skip) == 0 {
		c.skip = nil
	}
}
