package hub

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/adred-codev/ws_poc/ws-multi/internal/metrics"
	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

var (
	behindMode = protocol.Conflate{Mode: protocol.ConflateBehind}
	every250   = protocol.Conflate{Mode: protocol.ConflateInterval, Interval: 250 * time.Millisecond}
)

// tight is a queue of 8 messages: conflation while behind starts past 4.
var tight = Config{Shards: 2, MaxSubscriptions: 10, SendQueueMessages: 8, SendQueueBytes: 1 << 20, WriteTimeout: 5 * time.Second}

// subscribeMode subscribes c to channels with mode, as a request with id.
func (f *fixture) subscribeMode(t *testing.T, c *Client, id string, mode protocol.Conflate, channels ...string) {
	t.Helper()
	req := protocol.Request{Op: protocol.OpSubscribe, ID: id, HasID: true, Channels: channels, Conflate: mode}
	if err := f.h.Handle(f.ctx, c, req); err != nil {
		t.Fatalf("Handle() = %v", err)
	}
}

// gatedClient registers a client whose socket takes nothing until the test lets it, subscribed
// (request "1") to channels with mode: the reply is its write in flight.
func (f *fixture) gatedClient(t *testing.T, mode protocol.Conflate, channels ...string) (*fakeConn, *Client) {
	t.Helper()
	conn := newFake()
	conn.grant = make(chan struct{})
	c := f.client(t, conn)
	f.subscribeMode(t, c, "1", mode, channels...)
	return conn, c
}

// rec publishes the record of channel (topic "t") at partition p and offset off, its value
// the offset, or empty when empty is set.
func (f *fixture) rec(t *testing.T, channel string, p int32, off int64, empty bool) {
	t.Helper()
	value := []byte(fmt.Sprint(off))
	if empty {
		value = nil
	}
	topic := protocol.ChannelTopic(channel)
	m := protocol.EncodeRecord(protocol.Record{Channel: channel, Topic: topic, Partition: p, Offset: off, Timestamp: time.UnixMilli(1e12), Value: value})
	if err := f.h.Publish(f.ctx, m); err != nil {
		t.Fatalf("Publish() = %v", err)
	}
}

// opsOf is a compact view of lines: "a/0@3" for a message, "~a/0:2<3" for a conflated line
// (2 skipped, up to 3), "a/0@5+2" for a message carrying "conflated":2, the op otherwise.
func opsOf(t *testing.T, raw []string) string {
	t.Helper()
	var out []string
	for _, l := range parseLines(t, raw) {
		name := strings.TrimPrefix(l.Channel, "t:")
		switch l.Op {
		case "message":
			s := fmt.Sprintf("%s/%d@%d", name, l.Partition, l.Offset)
			if l.Conflated > 0 {
				s += fmt.Sprintf("+%d", l.Conflated)
			}
			out = append(out, s)
		case "conflated":
			out = append(out, fmt.Sprintf("~%s/%d:%d<%d", name, l.Partition, l.Skipped, l.To))
		default:
			out = append(out, l.Op)
		}
	}
	return strings.Join(out, " ")
}

// wantOps checks the lines of who's connection in opsOf's form.
func wantOps(t *testing.T, who string, conn *fakeConn, want string) {
	t.Helper()
	if got := opsOf(t, conn.got()); got != want {
		t.Errorf("%s's lines = %s\nwant %s", who, got, want)
	}
}

// TestConflateBehind: while the client's socket has not taken its last write, a newer record
// of a key (channel, partition) replaces the one waiting, behind a conflated line, at the end
// of the queue; keys never mix, plain subscriptions are untouched, order per partition holds.
func TestConflateBehind(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := start(t, tight)
		conn, c := f.gatedClient(t, behindMode, "t:a", "t:b")
		f.do(t, c, protocol.OpSubscribe, "2", "u:x") // plain
		synctest.Wait()                              // "1" in flight: the socket is full
		for _, r := range []struct {
			ch  string
			p   int32
			off int64
		}{{"t:a", 0, 0}, {"t:b", 0, 1}, {"t:a", 0, 2}, {"t:a", 0, 3}, {"t:b", 0, 4}, {"u:x", 0, 0}, {"u:x", 0, 1}, {"t:a", 1, 10}, {"t:a", 1, 11}} {
			f.rec(t, r.ch, r.p, r.off, false)
		}
		synctest.Wait()
		if got := testutil.ToFloat64(f.m.ConflatedRecords.WithLabelValues(metrics.ConflateBehind)); got != 4 {
			t.Errorf("ws_conflated_records_total{mode=behind} = %v, want 4", got)
		}
		if got := testutil.ToFloat64(f.m.ConflationClients); got != 1 {
			t.Errorf("ws_conflation_clients = %v, want 1", got)
		}
		if got := testutil.ToFloat64(f.m.ConflationPendingKeys); got != 3 {
			t.Errorf("ws_conflation_pending_keys = %v, want 3", got)
		}
		close(conn.grant)
		synctest.Wait()
		want := "subscribed subscribed ~a/0:2<2 a/0@3 ~b/0:1<1 b/0@4 u:x/0@0 u:x/0@1 ~a/1:1<10 a/1@11"
		if got := opsOf(t, conn.got()); got != want {
			t.Errorf("lines = %s\nwant    %s", got, want)
		}
		if got := testutil.ToFloat64(f.m.ConflationClients) + testutil.ToFloat64(f.m.ConflationPendingKeys); got != 0 {
			t.Errorf("conflation gauges = %v once the queue is out, want 0", got)
		}
	})
}

// TestConflateBehindOnlyWhileBehind: a client that keeps up gets every record; records
// fanned out in one round start being replaced once the queue holds more than half of
// SendQueueMessages (the threshold), and the ones before stay.
func TestConflateBehindOnlyWhileBehind(t *testing.T) {
	t.Run("keeping up", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			f := start(t, tight)
			conn := newFake()
			c := f.client(t, conn)
			f.subscribeMode(t, c, "1", behindMode, "t:a")
			for i := range 50 {
				synctest.Wait() // each record in a round of its own: the queue stays short
				f.rec(t, "t:a", 0, int64(i), false)
			}
			synctest.Wait()
			if got := records(parseLines(t, conn.got()), 0); len(got) != 50 {
				t.Errorf("delivered %d of 50 records: %v", len(got), got)
			}
			if got := testutil.ToFloat64(f.m.ConflatedRecords.WithLabelValues(metrics.ConflateBehind)); got != 0 {
				t.Errorf("ws_conflated_records_total{mode=behind} = %v, want 0", got)
			}
		})
	})
	t.Run("queue past half a limit", func(t *testing.T) {
		f := newIdleHub(t, tight)
		conn := newFake()
		c := f.idleClient(conn)
		f.h.request(c, protocol.Request{Op: protocol.OpSubscribe, Channels: []string{"t:a"}, Conflate: behindMode})
		f.h.writeDirty()
		for i := range 10 { // one round: no write in between
			f.h.fanout(protocol.EncodeRecord(protocol.Record{Channel: "t:a", Topic: "t", Offset: int64(i), Value: []byte("1")}))
		}
		f.h.writeDirty()
		want := "subscribed a/0@0 a/0@1 a/0@2 a/0@3 a/0@4 ~a/0:4<8 a/0@9"
		if got := opsOf(t, conn.got()); got != want {
			t.Errorf("lines = %s\nwant    %s", got, want)
		}
	})
}

// TestConflateBehindIsNotCut: with the socket stuck past slowAfter, a plain subscriber
// past the queue limit is cut; a conflating one, whose queue holds one record per key, is not.
func TestConflateBehindIsNotCut(t *testing.T) {
	for _, tt := range []struct {
		name string
		mode protocol.Conflate
		cut  bool
	}{{"plain", protocol.Conflate{}, true}, {"behind", behindMode, false}} {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := start(t, tight)
				conn, c := f.gatedClient(t, tt.mode, "t:a", "t:b")
				synctest.Wait()
				time.Sleep(2 * slowAfter) // the write in flight waits for the socket
				for i := range 400 {
					f.rec(t, []string{"t:a", "t:b"}[i%2], 0, int64(i), false)
				}
				synctest.Wait()
				switch {
				case conn.isOverflowed():
					if !tt.cut {
						t.Fatal("the conflating client was cut as slow")
					}
				case tt.cut:
					t.Fatal("the plain client was not cut")
				default:
					if n := queuedLive(c); n != 4 {
						t.Errorf("pending = %d, want 2 records and their 2 conflated lines", n)
					}
					if n := pending(c); n > 2*64+4 {
						t.Errorf("the queue holds %d entries for 4 messages: its holes are not squeezed out", n)
					}
				}
				close(conn.grant)
			})
		})
	}
}

// TestConflateBehindNeverOrphansALine: a write that ends between a conflated line and its
// record sends the line; the record, still queued, is then no longer replaced (the line
// announced it), so the next record of the key follows it plainly.
func TestConflateBehindNeverOrphansALine(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := start(t, tight)
		conn, _ := f.gatedClient(t, behindMode, "t:a")
		synctest.Wait()
		f.rec(t, "t:a", 0, 0, false)
		f.rec(t, "t:a", 0, 1, false) // replaces 0: [line, 1]
		synctest.Wait()
		conn.mu.Lock()
		conn.chunk = 1 // the next write takes the line only, and waits
		conn.mu.Unlock()
		conn.grant <- struct{}{} // "subscribed" out; the line goes in flight
		synctest.Wait()
		f.rec(t, "t:a", 0, 2, false) // must not replace 1: its line is out
		synctest.Wait()
		conn.mu.Lock()
		conn.chunk = 0
		conn.mu.Unlock()
		close(conn.grant)
		synctest.Wait()
		if got, want := opsOf(t, conn.got()), "subscribed ~a/0:1<0 a/0@1 a/0@2"; got != want {
			t.Errorf("lines = %s\nwant    %s", got, want)
		}
	})
}

// TestConflateBehindRandom drives random records over random keys through a socket that
// takes random chunks at random times, and checks what the client reads: per key, offsets
// ascend; each conflated line comes right before a newer record of its key, skipping
// exactly the records between; every key ends with its last record; nothing is lost.
func TestConflateBehindRandom(t *testing.T) {
	for seed := range uint64(20) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 7))
				f := start(t, tight)
				conn, c := f.gatedClient(t, behindMode, "t:*")
				f.do(t, c, protocol.OpSubscribe, "2", "u:x")
				synctest.Wait()
				produced := map[key][]int64{}
				next := map[int32]int64{}
				for range 300 {
					switch rng.IntN(10) {
					case 0: // the socket takes the write in flight, and maybe more
						if !flushing(c) {
							continue
						}
						conn.mu.Lock()
						conn.chunk = 1 + rng.IntN(4)
						conn.mu.Unlock()
						conn.grant <- struct{}{}
					case 1:
						f.rec(t, "u:x", 0, next[9], false)
						next[9]++
					default:
						p := int32(rng.IntN(2))
						ch := fmt.Sprintf("t:k%d", rng.IntN(3))
						produced[key{ch, p}] = append(produced[key{ch, p}], next[p])
						f.rec(t, ch, p, next[p], rng.IntN(5) == 0)
						next[p]++
					}
					synctest.Wait()
				}
				conn.mu.Lock()
				conn.chunk = 0
				conn.mu.Unlock()
				close(conn.grant)
				synctest.Wait()
				checkConflated(t, parseLines(t, conn.got()), produced)
			})
		})
	}
}

// checkConflated checks a conflating client's lines against the records produced per key.
func checkConflated(t *testing.T, lines []line, produced map[key][]int64) {
	t.Helper()
	got := map[key][]int64{} // delivered offsets
	skipped := map[key]int{} // announced
	var pendingNote *line    // a conflated line waiting for its record
	lastOff := map[int32]int64{0: -1, 1: -1}
	for i := range lines {
		l := lines[i]
		if pendingNote != nil && (l.Op != "message" || l.Channel != pendingNote.Channel || l.Partition != pendingNote.Partition) {
			t.Fatalf("line %d: conflated line %+v not followed by its key's record but by %+v", i, *pendingNote, l)
		}
		switch {
		case l.Op == "conflated":
			k := key{l.Channel, l.Partition}
			if prev := got[k]; len(prev) > 0 && l.To <= prev[len(prev)-1] {
				t.Fatalf("line %d: conflated to %d, but %d was delivered", i, l.To, prev[len(prev)-1])
			}
			skipped[k] += l.Skipped
			pendingNote = &lines[i]
		case l.Op == "message" && strings.HasPrefix(l.Channel, "t:"):
			k := key{l.Channel, l.Partition}
			if l.Offset <= lastOff[l.Partition] {
				t.Fatalf("line %d: partition %d offset %d after %d", i, l.Partition, l.Offset, lastOff[l.Partition])
			}
			lastOff[l.Partition] = l.Offset
			if pendingNote != nil && pendingNote.To >= l.Offset {
				t.Fatalf("line %d: record %d after a line skipping to %d", i, l.Offset, pendingNote.To)
			}
			pendingNote = nil
			got[k] = append(got[k], l.Offset)
		}
	}
	for k, offs := range produced {
		d := got[k]
		if len(d)+skipped[k] != len(offs) {
			t.Errorf("%v: %d delivered + %d skipped, %d produced", k, len(d), skipped[k], len(offs))
		}
		if len(d) == 0 || d[len(d)-1] != offs[len(offs)-1] {
			t.Errorf("%v: delivered %v, the last produced is %d", k, d, offs[len(offs)-1])
		}
	}
}

// TestConflateInterval: at most one message per channel per interval, the latest, with the
// count it replaced; the first after a quiet interval goes at once; the channel's exact and
// wildcard subscribers at the interval get it once, the same bytes; keys never mix.
func TestConflateInterval(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := start(t, testConfig())
		one, two := newFake(), newFake()
		c1, c2 := f.client(t, one), f.client(t, two)
		if shardOf(c1) == shardOf(c2) {
			t.Fatal("c1 and c2 share a shard: the test counts per shard")
		}
		f.subscribeMode(t, c1, "1", every250, "t:a", "t:*")
		f.subscribeMode(t, c2, "1", every250, "t:a")
		synctest.Wait()
		start := time.Now()
		f.rec(t, "t:a", 0, 0, false) // the bucket is free: at once
		synctest.Wait()
		if got := opsOf(t, one.got()); got != "subscribed a/0@0" {
			t.Fatalf("lines = %s, want the first record at once", got)
		}
		for i := range 10 { // 1..10 within the interval: held, the latest per key
			time.Sleep(10 * time.Millisecond)
			f.rec(t, []string{"t:a", "t:b"}[i%3/2], 0, int64(1+i), i == 9)
		}
		synctest.Wait()
		if got := opsOf(t, one.got()); got != "subscribed a/0@0" {
			t.Fatalf("lines = %s: something went before the interval's end", got)
		}
		time.Sleep(250*time.Millisecond - time.Since(start) + protocol.ConflateTick)
		synctest.Wait()
		want := "subscribed a/0@0 b/0@9+2 a/0@10+6"
		if got := opsOf(t, one.got()); got != want {
			t.Errorf("c1 lines = %s\nwant       %s", got, want)
		}
		if got := opsOf(t, two.got()); got != "subscribed a/0@0 a/0@10+6" {
			t.Errorf("c2 lines = %s, want t:a's only", got)
		}
		if l := parseLines(t, one.got()); string(l[3].Data) != "null" {
			t.Errorf("the empty value arrived as %s, want null", l[3].Data)
		}
		if got := testutil.ToFloat64(f.m.ConflatedRecords.WithLabelValues(metrics.ConflateInterval)); got != 8+6 {
			// Each shard keeps its own buckets: c1's counts t:a's 6 and t:b's 2, c2's t:a's 6.
			t.Errorf("ws_conflated_records_total{mode=interval} = %v, want 8+6 (c1's shard, c2's)", got)
		}
		// Records every 5 ms for 1 s: one message per interval.
		for i := range 200 {
			time.Sleep(5 * time.Millisecond)
			f.rec(t, "t:a", 0, int64(11+i), false)
		}
		time.Sleep(300 * time.Millisecond)
		synctest.Wait()
		n := len(records(parseLines(t, two.got()), 0)) - 2
		if n < 4 || n > 5 {
			t.Errorf("%d messages for 1 s at 250 ms, want 4 or 5", n)
		}
		if got := testutil.ToFloat64(f.m.ConflationPendingKeys); got != 0 {
			t.Errorf("ws_conflation_pending_keys = %v once released, want 0", got)
		}
	})
}

// TestConflateIntervalMismatch: a client's channels of one topic share one interval.
func TestConflateIntervalMismatch(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := start(t, testConfig())
		conn := newFake()
		c := f.client(t, conn)
		f.subscribeMode(t, c, "1", every250, "t:a")
		f.subscribeMode(t, c, "2", protocol.Conflate{Mode: protocol.ConflateInterval, Interval: time.Second}, "t:b")
		f.subscribeMode(t, c, "3", protocol.Conflate{}, "t:b")
		f.subscribeMode(t, c, "4", protocol.Conflate{}, "u:x") // another topic
		f.subscribeMode(t, c, "5", protocol.Conflate{}, "t:a") // all of t's channels change: fine
		f.subscribeMode(t, c, "6", behindMode, "t:b")          // t is plain now: behind mixes
		f.subscribeMode(t, c, "7", every250, "t:c")            // t holds plain channels
		synctest.Wait()
		var got []string
		for _, l := range parseLines(t, conn.got()) {
			got = append(got, l.ID+":"+l.Op)
		}
		if want := "1:subscribed 2:error 3:error 4:subscribed 5:subscribed 6:subscribed 7:error"; strings.Join(got, " ") != want {
			t.Errorf("replies = %s\nwant      %s", strings.Join(got, " "), want)
		}
		if l := conn.got()[1]; !strings.Contains(l, `"message":"conflate of \"t\" channels must be the same interval on a connection"`) {
			t.Errorf("error = %s", l)
		}
	})
}

// idleHub is a hub whose shards do not run: the test is shard 0's loop and calls its methods.
type idleHub struct{ h *shard }

func newIdleHub(t *testing.T, cfg Config) *idleHub {
	t.Helper()
	m := metrics.New(prometheus.NewRegistry(), metrics.BuildInfo{Variant: "test"}, metrics.Labels{})
	h, err := New(cfg, newHistory(t), nil, m, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return &idleHub{h: h.shards[0]}
}

func (f *idleHub) idleClient(conn Conn) *Client {
	c := NewClient(conn)
	c.shard = f.h
	f.h.clients[c] = struct{}{}
	return c
}

// TestConflateResumeReplaysLatest: a resume with conflate replays the latest record per
// key, each after a conflated line counting what it replaced; then live goes on plainly.
func TestConflateResumeReplaysLatest(t *testing.T) {
	for _, mode := range []protocol.Conflate{behindMode, every250} {
		t.Run(fmt.Sprint(mode.Mode), func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := start(t, testConfig())
				fd := newFeed(t, f, 0)
				for i := range 10 {
					fd.record(t, []string{"t:a", "t:b"}[i%2], 0)
				}
				conn := newFake()
				c := f.client(t, conn)
				syncClient(t, f.h, c)
				f.resumeMode(t, c, "r", &protocol.Resume{Positions: protocol.Positions{"t": {0: -1}}}, mode, "t:a", "t:b")
				synctest.Wait()
				want := "subscribed ~a/0:4<6 a/0@8 ~b/0:4<7 b/0@9 recovered"
				if got := opsOf(t, conn.got()); got != want {
					t.Errorf("lines = %s\nwant    %s", got, want)
				}
				if rec := find(parseLines(t, conn.got()), "recovered"); rec.Replayed != 2 || rec.pos(t, "t", 0) != 9 {
					t.Errorf("recovered = %+v, want 2 replayed, live after 9", rec)
				}
				time.Sleep(time.Second)
				fd.record(t, "t:a", 0)
				time.Sleep(time.Second)
				synctest.Wait()
				if got := opsOf(t, conn.got()); got != want+" a/0@10" {
					t.Errorf("lines = %s\nwant    %s a/0@10", got, want)
				}
			})
		})
	}
}

// TestConflateIntervalResumeSkipsHeld: a record held in a bucket when a client resumes is in
// its conflated replay already; the bucket's release must not send it to that client again.
func TestConflateIntervalResumeSkipsHeld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := start(t, testConfig())
		fd := newFeed(t, f, 0)
		other, conn := newFake(), newFake()
		co, c := f.client(t, other), f.client(t, conn)
		f.subscribeMode(t, co, "1", every250, "t:a")
		synctest.Wait()
		fd.record(t, "t:a", 0) // 0: at once
		fd.record(t, "t:a", 0) // 1: held
		syncClient(t, f.h, c)
		f.resumeMode(t, c, "r", &protocol.Resume{Positions: protocol.Positions{"t": {0: -1}}}, every250, "t:a")
		time.Sleep(300 * time.Millisecond) // the bucket releases 1
		fd.record(t, "t:a", 0)             // 2: held, then released
		time.Sleep(300 * time.Millisecond)
		synctest.Wait()
		wantOps(t, "resumed client", conn, "subscribed ~a/0:1<0 a/0@1 recovered a/0@2")
		wantOps(t, "other client", other, "subscribed a/0@0 a/0@1 a/0@2")
	})
}

// TestConflateIntervalDrainAndMarks: a topic subscribed at an interval gets no marks (one
// could pass a held record), and a drain sends what the buckets hold for the client before
// its draining line, whose positions then pass nothing undelivered.
func TestConflateIntervalDrainAndMarks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.MarkInterval = 20 * time.Millisecond
		f := start(t, cfg)
		fd := newFeed(t, f, 0)
		conn, plain := newFake(), newFake()
		c, cp := f.client(t, conn), f.client(t, plain)
		if err := f.h.Handle(f.ctx, c, protocol.Request{Op: protocol.OpSubscribe, Channels: []string{"t:a"}, Positioned: true, Conflate: every250}); err != nil {
			t.Fatal(err)
		}
		if err := f.h.Handle(f.ctx, cp, protocol.Request{Op: protocol.OpSubscribe, Channels: []string{"t:b"}, Positioned: true}); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		for range 3 {
			fd.record(t, "t:a", 0)
			time.Sleep(30 * time.Millisecond)
		}
		if find(parseLines(t, plain.got()), "mark").Op == "" {
			t.Fatal("the plain positioned client got no mark")
		}
		if err := f.h.Drain(f.ctx, c, 0); err != nil {
			t.Fatal(err)
		}
		synctest.Wait()
		if got, want := opsOf(t, conn.got()), "subscribed a/0@0 a/0@2+1 draining"; got != want {
			t.Errorf("lines = %s\nwant    %s", got, want)
		}
		if d := find(parseLines(t, conn.got()), "draining"); d.pos(t, "t", 0) != 2 {
			t.Errorf("draining positions %s, want t/0 at 2", d.Positions)
		}
	})
}

// TestConflateIntervalKafkaResumeSkipsHeld: a bucket released while a resume reads Kafka
// must not queue, behind the resume's place, a record the replay then sends too.
func TestConflateIntervalKafkaResumeSkipsHeld(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := testConfig()
		cfg.Shards = 1                         // the two clients share the bucket
		f, fd, rd := kafkaFixture(t, cfg, nil) // 0..9 in the log, 8 and 9 in memory
		other, conn := newFake(), newFake()
		co, c := f.client(t, other), f.client(t, conn)
		f.subscribeMode(t, co, "1", every250, "t:a")
		synctest.Wait()
		for range 3 { // 10 at once, 11 and 12 held
			fd.record(t, "t:a", 0)
			rd.log[0] = append(rd.log[0], fd.last)
		}
		synctest.Wait()
		f.resumeMode(t, c, "r", &protocol.Resume{Positions: protocol.Positions{"t": {0: 3}}}, every250, "t:a")
		time.Sleep(300 * time.Millisecond) // the bucket releases 12 while the reader waits
		close(rd.release)
		time.Sleep(300 * time.Millisecond)
		synctest.Wait()
		wantOps(t, "resumed client", conn, "subscribed ~a/0:8<11 a/0@12 recovered")
		wantOps(t, "other client", other, "subscribed a/0@10 a/0@12+1")
	})
}

// TestConflateBehindWritesSmallChunks: a client conflating while behind gets writes of at most
// behindChunk bytes (one message at least), so its records wait in the queue, where newer
// ones still replace them, and a slow link takes each write within the write timeout.
func TestConflateBehindWritesSmallChunks(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := start(t, Config{Shards: 2, MaxSubscriptions: 40, SendQueueMessages: 1000, SendQueueBytes: 1 << 20, WriteTimeout: 5 * time.Second})
		var channels []string
		for i := range 20 {
			channels = append(channels, fmt.Sprintf("t:k%d", i))
		}
		conn, _ := f.gatedClient(t, behindMode, channels...)
		synctest.Wait()
		value := []byte(`"` + strings.Repeat("x", 4000) + `"`)
		for i, ch := range channels { // 20 records of about 4 KB, one per key: nothing to replace
			m := protocol.EncodeRecord(protocol.Record{Channel: ch, Topic: "t", Offset: int64(i), Value: value})
			if err := f.h.Publish(f.ctx, m); err != nil {
				t.Fatal(err)
			}
		}
		synctest.Wait()
		close(conn.grant)
		synctest.Wait()
		if got := len(records(parseLines(t, conn.got()), 0)); got != 20 {
			t.Fatalf("delivered %d of 20 records", got)
		}
		wantSmallWrites(t, conn)
	})
}

// wantSmallWrites checks that conn's writes after the first (the subscribe reply) are at most
// behindChunk bytes, or one message.
func wantSmallWrites(t *testing.T, conn *fakeConn) {
	t.Helper()
	for _, w := range conn.socketWrites()[1:] {
		b := 0
		for _, l := range w {
			b += len(l)
		}
		if len(w) > 1 && b > behindChunk {
			t.Errorf("a write of %d messages, %d bytes: more than %d", len(w), b, behindChunk)
		}
	}
}

// TestConflateBehindSmallWritesBeforeBehind: the write that finds the socket full comes before
// any record was replaced; for a client with a behind-mode subscription it is small too, or a
// slow link would not take it within the write timeout.
func TestConflateBehindSmallWritesBeforeBehind(t *testing.T) {
	f := newIdleHub(t, Config{Shards: 1, MaxSubscriptions: 40, SendQueueMessages: 1000, SendQueueBytes: 1 << 20, WriteTimeout: time.Second})
	conn := newFake()
	c := f.idleClient(conn)
	f.h.request(c, protocol.Request{Op: protocol.OpSubscribe, Channels: []string{"t:*"}, Conflate: behindMode})
	f.h.writeDirty()
	value := []byte(`"` + strings.Repeat("x", 4000) + `"`)
	for i := range 20 { // one round, one record per key: nothing to replace
		f.h.fanout(protocol.EncodeRecord(protocol.Record{Channel: fmt.Sprintf("t:k%d", i), Topic: "t", Offset: int64(i), Value: value}))
	}
	f.h.writeDirty()
	if got := len(records(parseLines(t, conn.got()), 0)); got != 20 {
		t.Fatalf("wrote %d of 20 records", got)
	}
	wantSmallWrites(t, conn)
}
