// This file is duplicated from ws-single (internal/kafka/session_test.go) on purpose: the variants share the consumer.

package kafka

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/adred-codev/ws_poc/ws-multi/internal/await"
	"github.com/adred-codev/ws_poc/ws-multi/internal/config"
	"github.com/adred-codev/ws_poc/ws-multi/internal/history"
	"github.com/adred-codev/ws_poc/ws-multi/internal/kafkatest"
	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// gatePublisher holds every Publish while its gate is shut.
type gatePublisher struct {
	next Publisher
	mu   sync.Mutex
	open chan struct{} // closed: open
}

func newGate(next Publisher) *gatePublisher {
	return &gatePublisher{next: next, open: make(chan struct{})} // shut
}

func (g *gatePublisher) Publish(ctx context.Context, m *protocol.Message) error {
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	select {
	case <-open:
		return g.next.Publish(ctx, m)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gatePublisher) set(open bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	select {
	case <-g.open:
		if !open {
			g.open = make(chan struct{})
		}
	default:
		if open {
			close(g.open)
		}
	}
}

// TestWarmStart: with newest, each partition starts at max(log start, HWM - history
// records), so the history holds the last records before any client comes; Ready turns true
// only once every partition reached the HWM read at attach, and false again while the lag
// passes ReadyMaxLag.
func TestWarmStart(t *testing.T) {
	cl := kafkatest.NewCluster(t, 0)
	defer cl.Close()
	brokers := cl.ListenAddrs()
	produce(t, brokers, 0, 5)
	produce(t, brokers, 1, 2)

	var gate *gatePublisher
	r := startWith(t, brokers, config.StartNewest, history.Config{Records: 3, Bytes: 1 << 20},
		func(p Publisher, _ *history.History) Publisher { gate = newGate(p); return gate },
		func(c *Config) { c.Topics, c.ReadyMaxLag = []string{"trades"}, 2 })
	defer gate.set(true) // before the cleanup stops the consumer
	if n := testutil.CollectAndCount(r.m.LiveGaps); n != len(protocol.GapReasons) {
		t.Fatalf("ws_live_gaps_total has %d series, want one per reason of the one topic", n)
	}
	// The consumer may attach before this first look: either way it is not ready, the
	// warm start being held by the gate.
	if ok, why := r.c.Ready(); ok || (why != NotReadyDetached && why != NotReadyCatchUp) {
		t.Fatalf("Ready() at start = %v, %q", ok, why)
	}
	await.True(t, 5*time.Second, r.c.Attached, "attached")
	if ok, why := r.c.Ready(); ok || why != NotReadyCatchUp {
		t.Fatalf("Ready() while the warm start is held = %v, %q", ok, why)
	}
	gate.set(true)
	got := receive(t, r.pub, 5)
	if o := offsets(got, 0); fmt.Sprint(o) != "[2 3 4]" {
		t.Errorf("partition 0 offsets = %v, want the last 3", o)
	}
	if o := offsets(got, 1); fmt.Sprint(o) != "[0 1]" {
		t.Errorf("partition 1 offsets = %v, want both (fewer than 3)", o)
	}
	for p, want := range map[int32]history.Stats{
		0: {Records: 3, From: 2, Next: 5},
		1: {Records: 2, From: 0, Next: 2},
	} {
		st := r.hist.Ring(history.Part{Topic: "trades", Partition: p}).Stats()
		if st.Records != want.Records || st.From != want.From || st.Next != want.Next {
			t.Errorf("ring of trades/%d = %+v, want %+v", p, st, want)
		}
	}
	await.True(t, 5*time.Second, func() bool { ok, _ := r.c.Ready(); return ok }, "ready after the warm start")

	// Lagging: records held back by the hub count, past ReadyMaxLag (2).
	gate.set(false)
	produce(t, brokers, 0, 3)
	await.True(t, 5*time.Second, func() bool { _, why := r.c.Ready(); return why == NotReadyLagging }, "lagging")
	gate.set(true)
	receive(t, r.pub, 3)
	await.True(t, 5*time.Second, func() bool { ok, _ := r.c.Ready(); return ok }, "ready again")
	await.True(t, 5*time.Second, func() bool {
		return testutil.ToFloat64(r.m.HistoryRecords.WithLabelValues("trades", "0")) == 3 &&
			testutil.ToFloat64(r.m.HistoryRecords.WithLabelValues("trades", "1")) == 2 &&
			testutil.ToFloat64(r.m.HistoryBytes.WithLabelValues("trades", "0")) > 0 &&
			testutil.ToFloat64(r.m.HistoryOldestAge.WithLabelValues("trades", "0")) > 0
	}, "history gauges")
}

// ringChecker fails the test when a record reaches the publisher before its ring holds it.
type ringChecker struct {
	next       Publisher
	hist       *history.History
	violations atomic.Int32
}

func (c *ringChecker) Publish(ctx context.Context, m *protocol.Message) error {
	if m.Kind == protocol.KindRecord {
		if st := c.hist.Ring(history.Part{Topic: m.Topic, Partition: m.Partition}).Stats(); st.Next <= m.Offset {
			c.violations.Add(1)
		}
	}
	return c.next.Publish(ctx, m)
}

// TestRingBeforePublish: every published record's line is in its ring before Publish is
// called (the hub's frontier never passes the ring's next); a record going to nobody is not
// in the ring, a too-large one's skipped line is.
func TestRingBeforePublish(t *testing.T) {
	cl := kafkatest.NewCluster(t, 0)
	defer cl.Close()
	brokers := cl.ListenAddrs()
	var check *ringChecker
	r := startWith(t, brokers, config.StartNewest, testHistory,
		func(p Publisher, h *history.History) Publisher { check = &ringChecker{next: p, hist: h}; return check },
		func(c *Config) { c.Topics, c.MaxRecordBytes = []string{"trades"}, 10 })
	await.True(t, 5*time.Second, r.c.Attached, "attached")
	produce(t, brokers, 0, 20)
	produce(t, brokers, 1, 20)
	kafkatest.Produce(t, brokers,
		header("trades", "K", `1`, "tickers:X"),                     // invalid channel: nobody
		kafkatest.Record("trades", 0, "K", strings.Repeat("x", 11)), // too large: skipped line
	)
	got := receive(t, r.pub, 41)
	if n := check.violations.Load(); n != 0 {
		t.Fatalf("%d records published before their ring held them", n)
	}
	for _, m := range got {
		if m.Partition == 0 && m.Offset == 21 && !strings.Contains(string(m.Wire), `"op":"skipped"`) {
			t.Fatalf("trades/0 offset 21 published as %s, want the skipped line", m.Wire)
		}
	}
	if st := r.hist.Ring(history.Part{Topic: "trades", Partition: 0}).Stats(); st.Records != 21 || st.Next != 22 {
		t.Fatalf("ring of trades/0 = %+v, want 21 records up to offset 21", st)
	}
}
