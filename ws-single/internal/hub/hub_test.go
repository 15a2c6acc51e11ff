package hub

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/adred-codev/ws_poc/ws-single/internal/await"
	"github.com/adred-codev/ws_poc/ws-single/internal/metrics"
	"github.com/adred-codev/ws_poc/ws-single/internal/protocol"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var roomy = Config{MaxSubscriptions: 3, SendQueueMessages: 1000, SendQueueBytes: 1 << 20, WriteTimeout: 5 * time.Second}

func TestDeliveryFollowsSubscriptions(t *testing.T) {
	f := start(t, roomy)
	conn := newFakeConn()
	c := f.client(t, conn)

	f.do(t, c, protocol.OpSubscribe, "1", "trades:BTC", "tickers:*")
	f.publish(t, "trades", "trades:BTC", 1) // subscribed
	f.publish(t, "trades", "trades:ETH", 2) // not subscribed
	f.publish(t, "tickers", "tickers:X", 3) // wildcard
	f.publish(t, "tickers", "tickers", 4)   // wildcard, channel is the topic
	f.publish(t, "other", "tickers:Y", 5)   // channel in tickers but record of another topic
	f.publish(t, "tickers", "tickersX", 6)  // not in the topic
	// Control events overtake queued records, so let the records land first.
	conn.waitLines(t, 4)
	f.do(t, c, protocol.OpUnsubscribe, "2", "trades:BTC")
	f.publish(t, "trades", "trades:BTC", 7)
	f.do(t, c, protocol.OpPing, "3")

	got := conn.waitLines(t, 6)
	want := []string{
		`{"op":"subscribed","id":"1","channels":["trades:BTC","tickers:*"]}`,
		"trades:BTC#1", "tickers:X#3", "tickers#4",
		`{"op":"unsubscribed","id":"2","channels":["trades:BTC"]}`,
		`{"op":"pong","id":"3"}`,
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("lines =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := testutil.ToFloat64(f.m.Subscriptions); got != 1 {
		t.Errorf("ws_subscriptions = %v, want 1", got)
	}
	if got := testutil.ToFloat64(f.m.Channels); got != 1 {
		t.Errorf("ws_channels = %v, want 1", got)
	}
}

func TestWildcardAndChannelDeliverOnce(t *testing.T) {
	f := start(t, roomy)
	both, wildOnly := newFakeConn(), newFakeConn()
	c1, c2 := f.client(t, both), f.client(t, wildOnly)
	f.do(t, c1, protocol.OpSubscribe, "", "trades:BTC", "trades:*")
	f.do(t, c2, protocol.OpSubscribe, "", "trades:*")
	for i := range 3 {
		f.publish(t, "trades", "trades:BTC", i)
	}
	both.waitLines(t, 4)
	wildOnly.waitLines(t, 4)
	f.do(t, c1, protocol.OpPing, "end")
	f.do(t, c2, protocol.OpPing, "end")
	for _, conn := range []*fakeConn{both, wildOnly} {
		got := conn.waitLines(t, 5)
		want := []string{"trades:BTC#0", "trades:BTC#1", "trades:BTC#2", `{"op":"pong","id":"end"}`}
		if strings.Join(got[1:], "|") != strings.Join(want, "|") {
			t.Fatalf("lines = %q, want subscribed then %q", got, want)
		}
	}
	if got := testutil.ToFloat64(f.m.Subscriptions); got != 3 {
		t.Errorf("ws_subscriptions = %v, want 3", got)
	}
	if got := testutil.ToFloat64(f.m.Channels); got != 2 {
		t.Errorf("ws_channels = %v, want 2", got)
	}
}

func TestSubscribeIsAllOrNothing(t *testing.T) {
	f := start(t, roomy) // MaxSubscriptions 3
	conn := newFakeConn()
	c := f.client(t, conn)
	f.do(t, c, protocol.OpSubscribe, "1", "a", "b")
	f.do(t, c, protocol.OpSubscribe, "2", "a", "c", "d") // a is held: 2 new -> 4 > 3
	f.do(t, c, protocol.OpSubscribe, "3", "a", "b", "c") // 1 new -> 3: fine
	conn.waitLines(t, 3)
	f.publish(t, "d", "d", 1)
	f.publish(t, "c", "c", 2)
	got := conn.waitLines(t, 4)
	want := []string{
		`{"op":"subscribed","id":"1","channels":["a","b"]}`,
		`{"op":"error","id":"2","code":"too_many_subscriptions","message":"subscribe would pass the limit of 3 channels per client"}`,
		`{"op":"subscribed","id":"3","channels":["a","b","c"]}`,
		"c#2",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("lines =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := testutil.ToFloat64(f.m.ProtocolErrors.WithLabelValues("too_many_subscriptions")); got != 1 {
		t.Errorf("too_many_subscriptions errors = %v, want 1", got)
	}
}

func TestRejectQueuesErrorReplyInOrder(t *testing.T) {
	f := start(t, roomy)
	conn := newFakeConn()
	c := f.client(t, conn)
	f.do(t, c, protocol.OpPing, "1")
	if err := f.h.Reject(f.ctx, c, &protocol.Error{Code: protocol.CodeInvalidJSON, Message: "m"}); err != nil {
		t.Fatal(err)
	}
	f.do(t, c, protocol.OpPing, "2")
	got := conn.waitLines(t, 3)
	want := `{"op":"pong","id":"1"}|{"op":"error","code":"invalid_json","message":"m"}|{"op":"pong","id":"2"}`
	if strings.Join(got, "|") != want {
		t.Fatalf("lines = %q, want %s", got, want)
	}
	if got := testutil.ToFloat64(f.m.ProtocolErrors.WithLabelValues("invalid_json")); got != 1 {
		t.Errorf("invalid_json errors = %v, want 1", got)
	}
}

// TestOverflowCutsOnlyTheSlowClient: a client whose socket takes nothing,
// under continued traffic, is cut once its queue is past a limit and its write
// in flight has waited more than slowAfter; a client that keeps pace is not.
func TestOverflowCutsOnlyTheSlowClient(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{name: "messages", cfg: Config{MaxSubscriptions: 10, SendQueueMessages: 5, SendQueueBytes: 1 << 20, WriteTimeout: time.Minute}},
		{name: "bytes", cfg: Config{MaxSubscriptions: 10, SendQueueMessages: 1000, SendQueueBytes: 40, WriteTimeout: time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				f := start(t, tt.cfg)
				slow, healthy, _ := f.heldAndOpen(t)
				// The healthy client keeps pace; the slow one's write is stuck but
				// not yet for long: past its limits it is kept.
				for i := range 20 {
					f.publish(t, "t", "t", i)
					healthy.waitLines(t, 2+i)
				}
				if got := testutil.ToFloat64(f.m.SendQueueOverflow); got != 0 {
					t.Fatal("cut before its write had waited slowAfter")
				}
				time.Sleep(slowAfter + time.Millisecond)
				f.publish(t, "t", "t", 20)
				healthy.waitLines(t, 22)
				select {
				case <-slow.overflow:
				case <-time.After(5 * time.Second):
					t.Fatal("slow client was not cut")
				}
				close(slow.gate) // the stalled flush returns; nothing more is written
				if got := testutil.ToFloat64(f.m.SendQueueOverflow); got != 1 {
					t.Errorf("ws_send_queue_overflow_total = %v, want 1", got)
				}
				if got := testutil.ToFloat64(f.m.Subscriptions); got != 1 {
					t.Errorf("ws_subscriptions = %v, want 1 (the slow client's is gone)", got)
				}
			})
		})
	}
}

func TestBatchesGrowWhileWriterIsBusy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := start(t, roomy)
		conn := newFakeConn()
		conn.gate = make(chan struct{})
		c := f.client(t, conn)
		f.do(t, c, protocol.OpSubscribe, "", "t")
		for i := range 10 {
			f.publish(t, "t", "t", i)
		}
		// A ping reply queues behind the records once they have been fanned out;
		// Each is a control event, so it returns only after the loop drained them.
		waitPending(t, c, 10)
		f.do(t, c, protocol.OpPing, "")
		// The socket holds the first write (the reply) while ten records and a
		// pong queue up: they must come as one more write, in order.
		conn.gate <- struct{}{}
		conn.gate <- struct{}{}
		got := conn.waitLines(t, 12)
		if got[11] != `{"op":"pong"}` || got[1] != "t#0" || got[10] != "t#9" {
			t.Fatalf("lines = %q", got)
		}
		if n := conn.writes(); n != 2 {
			t.Fatalf("writes = %d, want 2", n)
		}
		close(conn.gate)
	})
}

// TestStop: calls after the loop has ended fail with ErrStopped, every time.
func TestStop(t *testing.T) {
	m := metrics.New(prometheus.NewRegistry(), metrics.BuildInfo{}, metrics.Labels{})
	h, err := New(roomy, newHistory(t), nil, m, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = h.Run(ctx); close(done) }()
	cancel()
	<-done
	for i := range 100 { // every time: a select with room in a queue would pick at random
		if err := h.Publish(context.Background(), &protocol.Message{}); err != ErrStopped {
			t.Fatalf("Publish %d after stop = %v, want ErrStopped", i, err)
		}
		if err := h.Register(context.Background(), NewClient(newFakeConn())); err != ErrStopped {
			t.Fatalf("Register %d after stop = %v, want ErrStopped", i, err)
		}
	}
}

// TestNewRefusesBadConfig: every limit must be positive.
func TestNewRefusesBadConfig(t *testing.T) {
	t.Parallel()
	m := metrics.New(prometheus.NewRegistry(), metrics.BuildInfo{}, metrics.Labels{})
	for _, cfg := range []Config{
		{SendQueueMessages: 1, SendQueueBytes: 1},
		{MaxSubscriptions: 1, SendQueueBytes: 1},
		{MaxSubscriptions: 1, SendQueueMessages: 1},
		{MaxSubscriptions: 1, SendQueueMessages: 1, SendQueueBytes: 1, WriteTimeout: -1},
	} {
		if _, err := New(cfg, newHistory(t), nil, m, nil); err == nil {
			t.Errorf("New(%+v) = nil error", cfg)
		}
	}
}

// TestRecordFloodDoesNotStarveControl keeps the publish queue full while
// clients register and unregister: each call must wait for at most the round
// in progress, not behind the queued records. The bound counts work, not
// time: the deliveries made while a call waits are at most a round's worth
// (roundRecords records to every client), with a round of slack for the
// reading of the count; behind the queue (or behind records picked at random
// over it) a call would see more.
func TestRecordFloodDoesNotStarveControl(t *testing.T) {
	f := start(t, Config{MaxSubscriptions: 1, SendQueueMessages: 1 << 20, SendQueueBytes: 1 << 30})
	const clients = 1000
	var delivered atomic.Int64
	for range clients {
		// Not f.client: unregistering a thousand busy clients one by one
		// behind the flood would be slow; stopping the hub ends their writers.
		c := NewClient(countConn{&delivered})
		if err := f.h.Register(f.ctx, c); err != nil {
			t.Fatal(err)
		}
		f.do(t, c, protocol.OpSubscribe, "", "t")
	}
	stop := make(chan struct{})
	flooding := make(chan struct{})
	go func() {
		defer close(flooding)
		msg := &protocol.Message{Channel: "t", Topic: "t", Wire: []byte("x")}
		for {
			select {
			case <-stop:
				return
			default:
			}
			if f.h.Publish(f.ctx, msg) != nil {
				return
			}
		}
	}()
	defer func() { close(stop); <-flooding }()
	await.True(t, 5*time.Second, func() bool { return len(f.h.pub) >= publishQueue/2 }, "a half-full record queue")

	const bound = 2 * roundRecords * clients
	var worst int64
	call := func(name string, do func() error) {
		t.Helper()
		before := delivered.Load()
		if err := do(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		waited := delivered.Load() - before
		worst = max(worst, waited)
		if waited > bound {
			t.Fatalf("%s waited for %d deliveries under a record flood, want at most %d (the round in progress)", name, waited, bound)
		}
	}
	for range 20 {
		c := NewClient(newFakeConn())
		call("Register", func() error { return f.h.Register(f.ctx, c) })
		call("Unregister", func() error { return f.h.Unregister(f.ctx, c) })
		c.Wait()
	}
	t.Logf("worst call under a flood waited for %d deliveries (a round: up to %d; queue %d/%d)", worst, roundRecords*clients, len(f.h.pub), publishQueue)
}
