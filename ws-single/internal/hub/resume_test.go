package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/adred-codev/ws_poc/ws-single/internal/await"
	"github.com/adred-codev/ws_poc/ws-single/internal/history"
	"github.com/adred-codev/ws_poc/ws-single/internal/metrics"
	"github.com/adred-codev/ws_poc/ws-single/internal/protocol"
)

// The seam between replay and live, on the hub alone: the tests play the Kafka consumer
// (append to the ring, then publish) and, where a resume needs Kafka, the catch-up reader.

// line is one line as a client reads it.
type line struct {
	Op        string            `json:"op"`
	ID        string            `json:"id"`
	Channel   string            `json:"channel"`
	Topic     string            `json:"topic"`
	Partition int32             `json:"partition"`
	Offset    int64             `json:"offset"`
	Recovered *bool             `json:"recovered"`
	Reason    string            `json:"reason"`
	Source    string            `json:"source"`
	Replayed  int               `json:"replayed"`
	Earliest  *int64            `json:"earliest"`
	Epochs    map[string]string `json:"epochs"`
	Positions json.RawMessage   `json:"positions"` // per topic, or a mark's per partition
	From, To  int64
	After     int64           `json:"reconnect_after_ms"`
	Skipped   int             `json:"skipped"`   // a conflated line's
	Conflated int             `json:"conflated"` // an interval message's
	Data      json.RawMessage `json:"data"`
}

// pos returns the position of topic's partition p in a subscribed, recovered or draining
// line (-2 when absent).
func (l line) pos(t *testing.T, topic string, p int) int64 {
	t.Helper()
	var all map[string]map[string]int64
	if err := json.Unmarshal(l.Positions, &all); err != nil {
		t.Fatalf("positions %s: %v", l.Positions, err)
	}
	if off, ok := all[topic][fmt.Sprint(p)]; ok {
		return off
	}
	return -2
}

func parseLines(t *testing.T, raw []string) []line {
	t.Helper()
	out := make([]line, len(raw))
	for i, s := range raw {
		if err := json.Unmarshal([]byte(s), &out[i]); err != nil {
			t.Fatalf("line %q: %v", s, err)
		}
	}
	return out
}

// feed is the Kafka side of a test: topic "t", partitions 0 and 1, epoch "E1".
type feed struct {
	f    *fixture
	next map[int32]int64
	last *protocol.Message // the last record published
}

func newFeed(t *testing.T, f *fixture, start int64) *feed {
	t.Helper()
	f.hist.Attach("t", "E1", map[int32]int64{0: start, 1: start})
	return &feed{f: f, next: map[int32]int64{0: start, 1: start}}
}

// record appends the next record of channel on partition p to the ring, then publishes it,
// as the consumer does; it returns its offset.
func (fd *feed) record(t *testing.T, channel string, p int32) int64 {
	t.Helper()
	off := fd.next[p]
	fd.next[p]++
	m := protocol.EncodeRecord(protocol.Record{Channel: channel, Topic: "t", Partition: p, Offset: off, Timestamp: time.Now(), Value: []byte(`1`)})
	fd.f.hist.Ring(history.Part{Topic: "t", Partition: p}).Append(m)
	fd.last = m
	if err := fd.f.h.Publish(fd.f.ctx, m); err != nil {
		t.Fatalf("Publish() = %v", err)
	}
	return off
}

func (f *fixture) resume(t *testing.T, c *Client, id string, r *protocol.Resume, channels ...string) {
	t.Helper()
	f.resumeMode(t, c, id, r, protocol.Conflate{}, channels...)
}

// resumeMode is resume with a conflation mode.
func (f *fixture) resumeMode(t *testing.T, c *Client, id string, r *protocol.Resume, mode protocol.Conflate, channels ...string) {
	t.Helper()
	req := protocol.Request{Op: protocol.OpSubscribe, ID: id, HasID: true, Channels: channels, Positioned: true, Resume: r, Conflate: mode}
	if err := f.h.Handle(f.ctx, c, req); err != nil {
		t.Fatalf("Handle() = %v", err)
	}
}

// records returns the offsets of the message lines of partition p, in order.
func records(lines []line, p int32) []int64 {
	var out []int64
	for _, l := range lines {
		if l.Op == "message" && l.Partition == p {
			out = append(out, l.Offset)
		}
	}
	return out
}

// untilOp waits for a line with op and returns all lines so far.
func untilOp(t *testing.T, conn *fakeConn, op string) []line {
	t.Helper()
	var lines []line
	await.True(t, 5*time.Second, func() bool {
		lines = parseLines(t, conn.snapshot())
		for _, l := range lines {
			if l.Op == op {
				return true
			}
		}
		return false
	}, "a "+op+" line")
	return lines
}

func find(lines []line, op string) line {
	for _, l := range lines {
		if l.Op == op {
			return l
		}
	}
	return line{}
}

func TestPositionedSubscribeCarriesEpochsAndPositions(t *testing.T) {
	f := start(t, roomy)
	fd := newFeed(t, f, 100)
	fd.record(t, "t:a", 0)
	fd.record(t, "t:b", 0)
	conn := newFakeConn()
	c := f.client(t, conn)
	await.True(t, 5*time.Second, func() bool { return f.hist.Ring(history.Part{Topic: "t"}).Stats().Next == 102 }, "records appended")
	f.do(t, c, protocol.OpPing, "sync")
	syncClient(t, f, c) // the records are fanned out
	conn.waitLines(t, 1)
	f.h.Handle(f.ctx, c, protocol.Request{Op: protocol.OpSubscribe, ID: "1", HasID: true, Channels: []string{"t:a", "other:x"}, Positioned: true})
	got := conn.waitLines(t, 2)[1]
	want := `{"op":"subscribed","id":"1","channels":["t:a","other:x"],"epochs":{"t":"E1"},"positions":{"t":{"0":101,"1":99}}}`
	if got != want {
		t.Fatalf("reply = %s\nwant    %s", got, want)
	}
}

func TestResumeFromMemoryHasNoGapAndNoDuplicate(t *testing.T) {
	f := start(t, roomy)
	fd := newFeed(t, f, 0)
	for i := range 10 {
		fd.record(t, []string{"t:a", "t:b"}[i%2], 0)
	}
	conn := newFakeConn()
	c := f.client(t, conn)
	syncClient(t, f, c) // records 0..9 fanned out: the frontier is 10
	// t:a has offsets 0,2,4,6,8; the client processed up to 3.
	f.resume(t, c, "r", &protocol.Resume{Epochs: protocol.Epochs{"t": "E1"}, Positions: protocol.Positions{"t": {0: 3}}}, "t:a")
	untilOp(t, conn, "recovered")
	fd.record(t, "t:a", 0) // 10, live
	lines := untilOffset(t, conn, 0, 10)

	if got, want := fmt.Sprint(records(lines, 0)), "[4 6 8 10]"; got != want {
		t.Errorf("offsets = %s, want %s", got, want)
	}
	rec := find(lines, "recovered")
	if rec.Recovered == nil || !*rec.Recovered || rec.Source != "memory" || rec.Replayed != 3 {
		t.Errorf("recovered line = %+v, want recovered from memory, 3 replayed", rec)
	}
	if lines[0].Op != "subscribed" || lines[0].Epochs["t"] != "E1" {
		t.Errorf("first line = %+v, want subscribed with epochs", lines[0])
	}
	if got := rec.pos(t, "t", 0); got != 9 {
		t.Errorf("recovered positions t/0 = %d, want 9 (live from 10)", got)
	}
	if got := testutil.ToFloat64(f.m.ResumeRequests.WithLabelValues(metrics.ResultRecovered, metrics.ReasonNone, "memory")); got != 1 {
		t.Errorf("resume requests recovered/memory = %v, want 1", got)
	}
}

// untilOffset waits for the message with offset off on partition p.
func untilOffset(t *testing.T, conn *fakeConn, p int32, off int64) []line {
	t.Helper()
	var lines []line
	await.True(t, 5*time.Second, func() bool {
		lines = parseLines(t, conn.snapshot())
		for _, l := range lines {
			if l.Op == "message" && l.Partition == p && l.Offset == off {
				return true
			}
		}
		return false
	}, fmt.Sprintf("offset %d/%d", p, off))
	return lines
}

// TestResumeSeamUnderLoad resumes clients while records flow: each gets every record of
// its channel after its position exactly once, in order.
func TestResumeSeamUnderLoad(t *testing.T) {
	const total = 3000
	hist, err := history.New(history.Config{Records: total, Bytes: 1 << 30}, []string{"t"})
	if err != nil {
		t.Fatal(err)
	}
	f := startWith(t, Config{MaxSubscriptions: 3, SendQueueMessages: 100000, SendQueueBytes: 1 << 30, WriteTimeout: 5 * time.Second}, hist, nil)
	fd := newFeed(t, f, 0)
	var wg sync.WaitGroup
	wg.Go(func() {
		for range total {
			fd.record(t, "t:a", 0)
		}
	})
	type resumed struct {
		conn *fakeConn
		from int64
	}
	var clients []resumed
	for i := range 20 {
		time.Sleep(time.Millisecond)
		// Positions a little behind the ring's head, so each resume replays some.
		from := max(fd.f.hist.Ring(history.Part{Topic: "t"}).Stats().Next-50, -1)
		conn := newFakeConn()
		c := f.client(t, conn)
		f.resume(t, c, fmt.Sprint(i), &protocol.Resume{Positions: protocol.Positions{"t": {0: from}}}, "t:*")
		clients = append(clients, resumed{conn, from})
	}
	wg.Wait()
	for i, r := range clients {
		lines := untilOffset(t, r.conn, 0, total-1)
		if rec := find(lines, "recovered"); rec.Recovered == nil || !*rec.Recovered {
			t.Fatalf("client %d: recovered line %+v", i, rec)
		}
		got := records(lines, 0)
		for j, off := range got {
			if off != r.from+1+int64(j) {
				t.Fatalf("client %d (from %d): offset #%d = %d, want %d", i, r.from, j, off, r.from+1+int64(j))
			}
		}
	}
}

func TestResumeNotRecovered(t *testing.T) {
	tests := []struct {
		name      string
		resume    protocol.Resume
		logStart  int64
		reason    string
		earliest  int64
		partition string
	}{
		{"epoch changed", protocol.Resume{Epochs: protocol.Epochs{"t": "OLD"}, Positions: protocol.Positions{"t": {0: 5}}}, -1, "epoch_changed", -1, ""},
		{"out of retention", protocol.Resume{Positions: protocol.Positions{"t": {0: 5}}}, 50, "out_of_retention", 50, "0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := start(t, roomy)
			fd := newFeed(t, f, 100)
			fd.record(t, "t:a", 0)
			if tt.logStart >= 0 {
				f.hist.Ring(history.Part{Topic: "t"}).SetLogStart(tt.logStart)
			}
			conn := newFakeConn()
			c := f.client(t, conn)
			syncClient(t, f, c) // record 100 fanned out
			f.resume(t, c, "r", &tt.resume, "t:a")
			untilOp(t, conn, "recovered")
			fd.record(t, "t:a", 0) // live goes on
			lines := untilOffset(t, conn, 0, 101)
			rec := find(lines, "recovered")
			if rec.Recovered == nil || *rec.Recovered || rec.Reason != tt.reason {
				t.Fatalf("recovered line = %+v, want not recovered, %s", rec, tt.reason)
			}
			if tt.earliest >= 0 && (rec.Earliest == nil || *rec.Earliest != tt.earliest) {
				t.Errorf("earliest = %v, want %d", rec.Earliest, tt.earliest)
			}
			if got := fmt.Sprint(records(lines, 0)); got != "[101]" {
				t.Errorf("offsets = %s, want only live [101]", got)
			}
			if got := rec.pos(t, "t", 0); got != 100 {
				t.Errorf("positions t/0 = %d, want 100 (live from 101)", got)
			}
		})
	}
}

// TestResumeAheadSkipsWhatItHad: a client from an instance that was ahead does not get
// again what it has.
func TestResumeAheadSkipsWhatItHad(t *testing.T) {
	f := start(t, roomy)
	fd := newFeed(t, f, 0)
	fd.record(t, "t:a", 0) // 0
	conn := newFakeConn()
	c := f.client(t, conn)
	syncClient(t, f, c)
	f.resume(t, c, "r", &protocol.Resume{Positions: protocol.Positions{"t": {0: 2}}}, "t:a")
	untilOp(t, conn, "recovered")
	for range 3 {
		fd.record(t, "t:a", 0) // 1, 2 (had), 3 (new)
	}
	lines := untilOffset(t, conn, 0, 3)
	if got := fmt.Sprint(records(lines, 0)); got != "[3]" {
		t.Errorf("offsets = %s, want [3]", got)
	}
	if got := find(lines, "recovered").pos(t, "t", 0); got != 2 {
		t.Errorf("positions t/0 = %d, want the client's 2", got)
	}
}

// fakeReader plays the Kafka catch-up: it serves ranges from a fixed log, once released.
type fakeReader struct {
	release chan struct{}
	log     map[int32][]*protocol.Message
	err     error
}

func (r *fakeReader) Read(ctx context.Context, ranges []history.Range, match func(*protocol.Message) bool) ([]*protocol.Message, int, error) {
	select {
	case <-r.release:
	case <-ctx.Done():
		return nil, 0, ctx.Err()
	}
	if r.err != nil {
		return nil, 0, r.err
	}
	var out []*protocol.Message
	n := 0
	for _, rg := range ranges {
		for _, m := range r.log[rg.Partition] {
			if m.Offset > rg.After && m.Offset < rg.Before {
				n++
				if match(m) {
					out = append(out, m)
				}
			}
		}
	}
	return out, n, nil
}

// kafkaFixture is a hub whose ring holds only the last 2 records, so older positions need
// the reader; partition 0 has offsets 0..9 of t:a in the log.
func kafkaFixture(t *testing.T, cfg Config, err error) (*fixture, *feed, *fakeReader) {
	t.Helper()
	hist, herr := history.New(history.Config{Records: 2, Bytes: 1 << 20}, []string{"t"})
	if herr != nil {
		t.Fatal(herr)
	}
	rd := &fakeReader{release: make(chan struct{}), log: map[int32][]*protocol.Message{}, err: err}
	f := startWith(t, cfg, hist, rd)
	fd := newFeed(t, f, 0)
	for range 10 {
		fd.record(t, "t:a", 0)
		rd.log[0] = append(rd.log[0], fd.last)
	}
	return f, fd, rd
}

func TestResumeFromKafkaHoldsLiveBehindTheReplay(t *testing.T) {
	f, fd, rd := kafkaFixture(t, roomy, nil)
	conn := newFakeConn()
	c := f.client(t, conn)
	f.do(t, c, protocol.OpPing, "sync")
	syncClient(t, f, c) // records 0..9 fanned out: the frontier is 10
	conn.waitLines(t, 1)
	f.resume(t, c, "r", &protocol.Resume{Positions: protocol.Positions{"t": {0: 3}}}, "t:a")
	f.do(t, c, protocol.OpPing, "after") // deferred until the resume ends
	fd.record(t, "t:a", 0)               // 10, live while the reader reads
	conn.waitLines(t, 2)                 // subscribed (recovering)
	close(rd.release)
	lines := untilOffset(t, conn, 0, 10)
	if got := fmt.Sprint(records(lines, 0)); got != "[4 5 6 7 8 9 10]" {
		t.Errorf("offsets = %s, want [4 5 6 7 8 9 10]", got)
	}
	lines = untilOp(t, conn, "pong") // the first pong, "sync"
	await.True(t, 5*time.Second, func() bool { return len(conn.snapshot()) == 11 }, "11 lines")
	var ops []string
	for _, l := range parseLines(t, conn.snapshot()) {
		ops = append(ops, l.Op+l.ID)
	}
	// The deferred pong follows the recovered line; live record 10 may come before or
	// after it (it raced the catch-up's report), never before the replay.
	got := strings.Join(ops, " ")
	want := "pongsync subscribedr message message message message message message recoveredr "
	if !strings.HasPrefix(got, want) || (got[len(want):] != "message pongafter" && got[len(want):] != "pongafter message") {
		t.Errorf("ops = %s\nwant %s + message and pongafter", got, want)
	}
	if rec := find(lines, "recovered"); rec.Source != "kafka" || rec.Replayed != 6 {
		t.Errorf("recovered = %+v, want from kafka, 6 replayed", rec)
	}
}

func TestResumeFromKafkaFails(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		cfg    Config
		reason string
	}{
		{"busy", history.ErrBusy, roomy, "busy"},
		{"too far behind", history.ErrTooFarBehind, roomy, "too_far_behind"},
		{"out of retention", &history.OutOfRetentionError{Part: history.Part{Topic: "t"}, Earliest: 7}, roomy, "out_of_retention"},
		{"timeout", nil, func() Config { c := roomy; c.ResumeTimeout = 50 * time.Millisecond; return c }(), "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, fd, rd := kafkaFixture(t, tt.cfg, tt.err)
			if tt.err != nil {
				close(rd.release)
			}
			conn := newFakeConn()
			c := f.client(t, conn)
			syncClient(t, f, c) // records 0..9 fanned out
			f.resume(t, c, "r", &protocol.Resume{Positions: protocol.Positions{"t": {0: 3}}}, "t:a")
			untilOp(t, conn, "recovered")
			fd.record(t, "t:a", 0)
			lines := untilOffset(t, conn, 0, 10)
			if rec := find(lines, "recovered"); rec.Recovered == nil || *rec.Recovered || rec.Reason != tt.reason {
				t.Errorf("recovered = %+v, want not recovered, %s", rec, tt.reason)
			}
			if got := fmt.Sprint(records(lines, 0)); got != "[10]" {
				t.Errorf("offsets = %s, want only live [10]", got)
			}
		})
	}
}

func TestResumeOverflowGoesLive(t *testing.T) {
	cfg := roomy
	cfg.SendQueueMessages = 4
	f, fd, _ := kafkaFixture(t, cfg, nil)
	conn := newFakeConn()
	c := f.client(t, conn)
	syncClient(t, f, c) // records 0..9 fanned out
	f.resume(t, c, "r", &protocol.Resume{Positions: protocol.Positions{"t": {0: 3}}}, "t:a")
	conn.waitLines(t, 1)
	for range 6 {
		fd.record(t, "t:a", 0) // 10..15 queue behind the held replay
	}
	lines := untilOffset(t, conn, 0, 15)
	if rec := find(lines, "recovered"); rec.Recovered == nil || *rec.Recovered || rec.Reason != "overflow" {
		t.Fatalf("recovered = %+v, want not recovered, overflow", rec)
	}
	if got := fmt.Sprint(records(lines, 0)); got != "[10 11 12 13 14 15]" {
		t.Errorf("offsets = %s, want the live ones [10 11 12 13 14 15]", got)
	}
}

func TestGapReachesEveryTopicSubscriber(t *testing.T) {
	f := start(t, roomy)
	fd := newFeed(t, f, 0)
	a, b, other := newFakeConn(), newFakeConn(), newFakeConn()
	f.do(t, f.client(t, a), protocol.OpSubscribe, "", "t:a")
	f.do(t, f.client(t, b), protocol.OpSubscribe, "", "t:*")
	co := f.client(t, other)
	f.do(t, co, protocol.OpSubscribe, "", "trades:x")
	for _, conn := range []*fakeConn{a, b, other} {
		conn.waitLines(t, 1)
	}
	if err := f.h.Publish(f.ctx, protocol.EncodeGap("t", 1, 5, 9, protocol.GapOffsetReset)); err != nil {
		t.Fatal(err)
	}
	fd.next[1] = 10
	want := `{"op":"gap","topic":"t","partition":1,"from":5,"to":9,"reason":"offset_reset"}`
	for _, conn := range []*fakeConn{a, b} {
		if got := conn.waitLines(t, 2)[1]; got != want {
			t.Errorf("gap line = %s, want %s", got, want)
		}
	}
	syncClient(t, f, co) // the gap is fanned out
	if got := len(other.snapshot()); got != 1 {
		t.Errorf("a subscriber of another topic got %d lines, want 1", got)
	}
}

func TestMarksCarryPositionsOfQuietSubscriptions(t *testing.T) {
	cfg := roomy
	cfg.MarkInterval = 20 * time.Millisecond
	f := start(t, cfg)
	fd := newFeed(t, f, 0)
	quiet, plain := newFakeConn(), newFakeConn()
	cq := f.client(t, quiet)
	f.h.Handle(f.ctx, cq, protocol.Request{Op: protocol.OpSubscribe, Channels: []string{"t:quiet"}, Positioned: true})
	f.do(t, f.client(t, plain), protocol.OpSubscribe, "", "t:quiet")
	quiet.waitLines(t, 1)
	for range 5 {
		fd.record(t, "t:busy", 0)
	}
	var mark line
	await.True(t, 5*time.Second, func() bool {
		mark = find(parseLines(t, quiet.snapshot()), "mark")
		last := quiet.snapshot()
		return mark.Op == "mark" && strings.Contains(last[len(last)-1], `{"op":"mark","topic":"t","positions":{"0":4,"1":-1}}`)
	}, "a mark at offset 4")
	time.Sleep(100 * time.Millisecond) // nothing moved: no more marks
	marks := 0
	for _, l := range parseLines(t, quiet.snapshot()) {
		if l.Op == "mark" {
			marks++
		}
	}
	if marks > 2 { // one before the records landed at most, one after
		t.Errorf("%d marks for positions that moved at most twice", marks)
	}
	if got := find(parseLines(t, plain.snapshot()), "mark"); got.Op != "" {
		t.Errorf("a subscriber that did not ask for positions got %+v", got)
	}
}

func TestDrainHandsOutPositions(t *testing.T) {
	f := start(t, roomy)
	fd := newFeed(t, f, 0)
	conn := newFakeConn()
	c := f.client(t, conn)
	f.do(t, c, protocol.OpSubscribe, "", "t:a")
	fd.record(t, "t:a", 0)
	fd.record(t, "t:b", 1)
	conn.waitLines(t, 2)
	syncClient(t, f, c) // t:b's record, not c's, fanned out too
	if err := f.h.Drain(f.ctx, c, 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	got := conn.waitLines(t, 3)[2]
	want := `{"op":"draining","reconnect_after_ms":1500,"epochs":{"t":"E1"},"positions":{"t":{"0":0,"1":0}}}`
	if got != want {
		t.Errorf("drain line = %s\nwant         %s", got, want)
	}
	// Nothing follows the line: a client resuming from its positions would get it twice.
	fd.record(t, "t:a", 0)
	syncClient(t, f, c)
	if got := conn.snapshot(); len(got) != 3 {
		t.Errorf("lines after the draining line: %q", got[3:])
	}
}

// syncClient waits until the records published so far are fanned out and c's queue is in
// its connection.
func syncClient(t *testing.T, f *fixture, c *Client) {
	t.Helper()
	await.True(t, 5*time.Second, func() bool { return len(f.h.pub) == 0 }, "record queue drained")
	if err := f.h.Sync(context.Background(), c); err != nil {
		t.Fatal(err)
	}
}

// TestSyncWaitsForAResume: Sync owes what was asked before it, a resume reading Kafka
// included: it returns once the replay, the recovered line and the replies deferred behind
// the resume are in the connection, not when the queue before the resume's place is out.
func TestSyncWaitsForAResume(t *testing.T) {
	f, _, rd := kafkaFixture(t, roomy, nil)
	conn := newFakeConn()
	c := f.client(t, conn)
	syncClient(t, f, c) // records 0..9 fanned out
	f.resume(t, c, "r", &protocol.Resume{Positions: protocol.Positions{"t": {0: 3}}}, "t:a")
	_, perr := protocol.Parse([]byte(`{"op":"nope","id":"2"}`))
	if err := f.h.Reject(f.ctx, c, perr); err != nil { // deferred behind the resume
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(f.ctx, 100*time.Millisecond)
	err := f.h.Sync(ctx, c)
	cancel()
	if err == nil {
		t.Fatalf("Sync returned while the resume read Kafka; the connection holds %q", conn.snapshot())
	}
	close(rd.release)
	if err := f.h.Sync(f.ctx, c); err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, l := range parseLines(t, conn.snapshot()) {
		ops = append(ops, l.Op+l.ID)
	}
	if got, want := strings.Join(ops, " "), "subscribedr message message message message message message recoveredr error2"; got != want {
		t.Errorf("after Sync: %s\nwant        %s", got, want)
	}
}

// TestDrainDuringAKafkaResume: a drain while a resume reads Kafka ends the resume and drops
// the live records held behind it; the draining line hands out the resume's own positions
// (the client asks again elsewhere), and the reader's late report is ignored.
func TestDrainDuringAKafkaResume(t *testing.T) {
	f, fd, rd := kafkaFixture(t, roomy, nil)
	conn := newFakeConn()
	c := f.client(t, conn)
	syncClient(t, f, c) // records 0..9 fanned out: the frontier is 10
	f.resume(t, c, "r", &protocol.Resume{Positions: protocol.Positions{"t": {0: 3}}}, "t:a")
	fd.record(t, "t:a", 0) // 10, held behind the resume
	await.True(t, 5*time.Second, func() bool { return len(f.h.pub) == 0 }, "record 10 fanned out")
	if err := f.h.Drain(f.ctx, c, 1500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	close(rd.release) // the reader was cancelled by the drain; nothing of it goes out
	if err := f.h.Sync(f.ctx, c); err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond) // a late report would have landed
	syncClient(t, f, c)
	want := []string{
		`{"op":"subscribed","id":"r","channels":["t:a"],"recovering":true,"epochs":{"t":"E1"}}`,
		`{"op":"draining","reconnect_after_ms":1500,"epochs":{"t":"E1"},"positions":{"t":{"0":3,"1":-1}}}`,
	}
	if got := conn.snapshot(); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("lines = %q\nwant %q", got, want)
	}
}

// TestResumeOverflowAppliesDeferredAfterTheFanout: a resume aborted "overflow" inside a
// fan-out applies the requests deferred behind it after that fan-out: the reply follows the
// record whose fan-out aborted the resume, and the recovered line precedes every record.
func TestResumeOverflowAppliesDeferredAfterTheFanout(t *testing.T) {
	cfg := roomy
	cfg.SendQueueMessages = 4
	f, fd, _ := kafkaFixture(t, cfg, nil)
	conn := newFakeConn()
	c := f.client(t, conn)
	syncClient(t, f, c)
	f.resume(t, c, "r", &protocol.Resume{Positions: protocol.Positions{"t": {0: 3}}}, "t:a")
	f.do(t, c, protocol.OpPing, "p") // deferred
	conn.waitLines(t, 1)
	for range 6 {
		fd.record(t, "t:a", 0) // 10..14 held; 14 passes the limit and aborts the resume; 15
	}
	untilOffset(t, conn, 0, 15)
	lines := untilOp(t, conn, "pong")
	var ops []string
	for _, l := range lines {
		ops = append(ops, fmt.Sprint(l.Op, l.ID, l.Offset))
	}
	got := strings.Join(ops, " ")
	want := "subscribedr0 recoveredr0 message10 message11 message12 message13 message14 "
	if !strings.HasPrefix(got, want) || (got[len(want):] != "pongp0 message15" && got[len(want):] != "message15 pongp0") {
		t.Errorf("ops = %s\nwant %s + pongp0 and message15", got, want)
	}
}

// TestRequestsPastTheDeferBoundAreRefused: of the requests read while a resume reads Kafka,
// maxDeferred wait for it; the ones past them get an error reply, none goes unanswered.
func TestRequestsPastTheDeferBoundAreRefused(t *testing.T) {
	f, _, rd := kafkaFixture(t, roomy, nil)
	conn := newFakeConn()
	c := f.client(t, conn)
	syncClient(t, f, c)
	f.resume(t, c, "r", &protocol.Resume{Positions: protocol.Positions{"t": {0: 3}}}, "t:a")
	for i := range maxDeferred + 6 {
		f.do(t, c, protocol.OpPing, fmt.Sprint(i))
	}
	close(rd.release)
	if err := f.h.Sync(f.ctx, c); err != nil {
		t.Fatal(err)
	}
	counts := map[string]int{}
	for _, l := range parseLines(t, conn.snapshot()) {
		counts[l.Op]++
	}
	if counts["recovered"] != 1 || counts["pong"] != maxDeferred || counts["error"] != 6 {
		t.Errorf("lines by op %v, want 1 recovered, %d pongs and 6 errors", counts, maxDeferred)
	}
}
