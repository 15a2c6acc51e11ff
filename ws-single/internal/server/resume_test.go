// This file is duplicated in ws-multi (internal/server/resume_test.go) on purpose: the server layer is
// the same for one hub loop and for N shards; they may diverge.

package server

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/adred-codev/ws_poc/ws-single/internal/config"
	"github.com/adred-codev/ws_poc/ws-single/internal/kafkatest"
)

// Resume end to end: a real server on a kfake broker, real WebSocket clients. Each case
// produces ten records of one channel on trades/0, stamped a second apart, lets a first
// connection see them, and resumes on a second one.

// resumeLine is what these tests read of a line.
type resumeLine struct {
	Op        string                      `json:"op"`
	ID        string                      `json:"id"`
	Offset    int64                       `json:"offset"`
	Partition int32                       `json:"partition"`
	Recovered bool                        `json:"recovered"`
	Source    string                      `json:"source"`
	Reason    string                      `json:"reason"`
	Earliest  *int64                      `json:"earliest"`
	Replayed  int                         `json:"replayed"`
	Epochs    map[string]string           `json:"epochs"`
	Positions map[string]map[string]int64 `json:"positions"`
}

func (c *client) line() resumeLine {
	c.t.Helper()
	s, err := c.next(15 * time.Second)
	if err != nil {
		c.t.Fatalf("reading: %v", err)
	}
	var l resumeLine
	if err := json.Unmarshal([]byte(s), &l); err != nil {
		c.t.Fatalf("line %q: %v", s, err)
	}
	return l
}

// untilRecovered reads a resume's lines up to its recovered line: it returns the offsets
// of the messages before it and the line itself.
func (c *client) untilRecovered() ([]int64, resumeLine) {
	c.t.Helper()
	var offs []int64
	for {
		l := c.line()
		switch l.Op {
		case "message":
			offs = append(offs, l.Offset)
		case "recovered":
			return offs, l
		case "subscribed", "mark":
		default:
			c.t.Fatalf("line %+v during a resume", l)
		}
	}
}

// base is the first record's timestamp: recent enough for WS_RESUME_MAX_AGE.
var base = time.Now().Add(-10 * time.Minute).Truncate(time.Second)

// produceTen produces records 0..9 of trades:K on trades/0, stamped base+i s.
func produceTen(t *testing.T, f *fixture) {
	t.Helper()
	var msgs []*sarama.ProducerMessage
	for i := range 10 {
		m := kafkatest.Record("trades", 0, "K", fmt.Sprint(i))
		m.Timestamp = base.Add(time.Duration(i) * time.Second)
		msgs = append(msgs, m)
	}
	kafkatest.Produce(t, f.brokers, msgs...)
}

// seeTen subscribes positioned to trades:K, reads the ten records and returns the epoch.
func seeTen(t *testing.T, f *fixture) string {
	t.Helper()
	a := f.connect()
	defer a.ws.CloseNow()
	a.send(`{"op":"subscribe","id":"a","channels":["trades:K"],"positioned":true}`)
	sub := a.line()
	if sub.Op != "subscribed" || sub.Epochs["trades"] == "" || len(sub.Positions["trades"]) != 2 {
		t.Fatalf("positioned reply %+v, want the epoch of trades and both partitions' positions", sub)
	}
	produceTen(t, f)
	for i := range 10 {
		if l := a.line(); l.Op != "message" || l.Offset != int64(i) {
			t.Fatalf("line %+v, want message %d", l, i)
		}
	}
	return sub.Epochs["trades"]
}

func TestResumeOutcomes(t *testing.T) {
	smallHistory := func(c *config.Config, _ *setup) { c.HistoryRecords = 2 }
	byPositions := func(epoch string) string {
		return `{"positions":{"trades":{"0":4}},"epochs":{"trades":"` + epoch + `"}}`
	}
	since5 := func(string) string { return fmt.Sprintf(`{"since_ts":%d}`, base.Add(5*time.Second).UnixMilli()) }
	tests := []struct {
		name     string
		opts     []option
		prepare  func(t *testing.T, f *fixture)
		resume   func(epoch string) string
		source   string // recovered from
		reason   string // or not, why
		earliest int64
	}{
		{name: "from memory", resume: byPositions, source: "memory"},
		{name: "from kafka", opts: []option{smallHistory}, resume: byPositions, source: "kafka"},
		{name: "since a time, from memory", resume: since5, source: "memory"},
		{name: "since a time, from kafka", opts: []option{smallHistory}, resume: since5, source: "kafka"},
		{name: "out of retention", opts: []option{smallHistory}, resume: byPositions, reason: "out_of_retention", earliest: 7,
			prepare: func(t *testing.T, f *fixture) {
				if err := f.cluster.DeleteRecords("trades", 0, 7); err != nil {
					t.Fatal(err)
				}
			}},
		{name: "epoch changed", resume: func(string) string {
			return `{"positions":{"trades":{"0":4}},"epochs":{"trades":"another-topic-id"}}`
		}, reason: "epoch_changed"},
		{name: "too far behind", opts: []option{smallHistory, func(c *config.Config, _ *setup) { c.ResumeMaxScanRecords = 3 }},
			resume: byPositions, reason: "too_far_behind"},
		{name: "timeout", opts: []option{smallHistory, func(c *config.Config, _ *setup) { c.ResumeTimeout = time.Millisecond }},
			resume: byPositions, reason: "timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := start(t, tt.opts...)
			epoch := seeTen(t, f)
			if tt.prepare != nil {
				tt.prepare(t, f)
			}
			b := f.connect()
			b.send(`{"op":"subscribe","id":"b","channels":["trades:K"],"resume":` + tt.resume(epoch) + `}`)
			if l := b.line(); l.Op != "subscribed" || l.Epochs["trades"] != epoch {
				t.Fatalf("reply %+v, want subscribed with the epoch", l)
			}
			offs, rec := b.untilRecovered()
			if tt.reason == "" {
				if !rec.Recovered || rec.Source != tt.source || fmt.Sprint(offs) != "[5 6 7 8 9]" || rec.Replayed != 5 {
					t.Fatalf("replayed %v then %+v; want 5..9 recovered from %s", offs, rec, tt.source)
				}
			} else {
				if rec.Recovered || rec.Reason != tt.reason || len(offs) != 0 {
					t.Fatalf("replayed %v then %+v; want nothing, not recovered: %s", offs, rec, tt.reason)
				}
				if tt.earliest > 0 && (rec.Earliest == nil || *rec.Earliest != tt.earliest) {
					t.Errorf("earliest = %v, want %d", rec.Earliest, tt.earliest)
				}
			}
			if got := rec.Positions["trades"]["0"]; got != 9 {
				t.Errorf("recovered positions trades/0 = %d, want 9: live from 10", got)
			}
			kafkatest.Produce(t, f.brokers, kafkatest.Record("trades", 0, "K", "live"))
			if l := b.line(); l.Op != "message" || l.Offset != 10 {
				t.Fatalf("after the resume %+v, want live record 10", l)
			}
		})
	}
}

// TestResumeBusy: with one catch-up reader and no wait, of two resumes that need Kafka at
// once one reads and the other is answered busy.
func TestResumeBusy(t *testing.T) {
	f := start(t, func(c *config.Config, _ *setup) {
		c.HistoryRecords, c.ResumeReaders, c.ResumeWait = 2, 1, time.Millisecond
	})
	seeTen(t, f)
	clients := []*client{f.connect(), f.connect()}
	for _, c := range clients {
		c.send(`{"op":"subscribe","id":"b","channels":["trades:K"],"resume":{"positions":{"trades":{"0":4}}}}`)
	}
	var mu sync.Mutex
	var outcomes []string
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Go(func() {
			_, rec := c.untilRecovered()
			mu.Lock()
			defer mu.Unlock()
			outcomes = append(outcomes, fmt.Sprint(rec.Recovered, rec.Reason))
		})
	}
	wg.Wait()
	if got := strings.Join(outcomes, ","); got != "true,falsebusy" && got != "falsebusy,true" {
		t.Errorf("outcomes %s, want one recovered and one busy", got)
	}
}

// TestResumeErrors: a resume naming a subscribed channel and a time replay older than
// WS_RESUME_MAX_AGE are refused, and nothing is subscribed.
func TestResumeErrors(t *testing.T) {
	f := start(t)
	c := f.connect()
	c.send(`{"op":"subscribe","id":"1","channels":["trades:K"]}`)
	c.expect(map[string]any{"op": "subscribed"})
	c.send(`{"op":"subscribe","id":"2","channels":["trades:J","trades:K"],"resume":{"positions":{"trades":{"0":1}}}}`)
	c.expect(map[string]any{"op": "error", "id": "2", "code": "already_subscribed", "message": `resume of channel "trades:K": already subscribed`})
	old := time.Now().Add(-2 * time.Hour).UnixMilli()
	c.send(fmt.Sprintf(`{"op":"subscribe","id":"3","channels":["trades:J"],"resume":{"since_ts":%d}}`, old))
	c.expect(map[string]any{"op": "error", "id": "3", "code": "invalid_request", "message": "resume.since_ts is older than the maximum age of 1h0m0s"})
	kafkatest.Produce(t, f.brokers, kafkatest.Record("trades", 0, "J", "1"), kafkatest.Record("trades", 0, "K", "2"))
	if l := c.line(); l.Op != "message" || l.Offset != 1 {
		t.Fatalf("line %+v, want only trades:K's record (trades:J was not subscribed)", l)
	}
}

// TestResumeOverflow: live records that pass the queue limit while a Kafka catch-up runs end
// the resume "overflow": nothing is replayed, the live records follow, and the client stays.
func TestResumeOverflow(t *testing.T) {
	f := start(t, func(c *config.Config, _ *setup) { c.HistoryRecords, c.SendQueueMessages = 2, 3 })
	epoch := seeTen(t, f)
	b := f.connect()
	b.send(`{"op":"subscribe","id":"b","channels":["trades:K"],"resume":{"positions":{"trades":{"0":4}},"epochs":{"trades":"` + epoch + `"}}}`)
	if l := b.line(); l.Op != "subscribed" {
		t.Fatalf("reply %+v, want subscribed", l)
	}
	// The catch-up takes about 100 ms; these land behind it meanwhile.
	var live []*sarama.ProducerMessage
	for i := range 6 {
		live = append(live, kafkatest.Record("trades", 0, "K", fmt.Sprint("live", i)))
	}
	kafkatest.Produce(t, f.brokers, live...)
	offs, rec := b.untilRecovered()
	if rec.Recovered || rec.Reason != "overflow" || len(offs) != 0 {
		t.Fatalf("replayed %v then %+v; want nothing, not recovered: overflow", offs, rec)
	}
	for want := int64(10); want < 16; want++ {
		if l := b.line(); l.Op != "message" || l.Offset != want {
			t.Fatalf("after the overflow %+v, want live record %d", l, want)
		}
	}
}

// TestResumeUnavailable: a catch-up whose broker is gone answers "unavailable" at once.
func TestResumeUnavailable(t *testing.T) {
	f := start(t, func(c *config.Config, _ *setup) { c.HistoryRecords = 2 })
	seeTen(t, f)
	f.cluster.Close()
	b := f.connect()
	b.send(`{"op":"subscribe","id":"b","channels":["trades:K"],"resume":{"positions":{"trades":{"0":4}}}}`)
	if l := b.line(); l.Op != "subscribed" {
		t.Fatalf("reply %+v, want subscribed", l)
	}
	offs, rec := b.untilRecovered()
	if rec.Recovered || rec.Reason != "unavailable" || len(offs) != 0 {
		t.Fatalf("replayed %v then %+v; want nothing, not recovered: unavailable", offs, rec)
	}
}
