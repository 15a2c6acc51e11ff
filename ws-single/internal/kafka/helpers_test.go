// This file is duplicated from ws-multi (internal/kafka/helpers_test.go) on purpose: the variants share the consumer.

package kafka

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	gometrics "github.com/rcrowley/go-metrics"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/adred-codev/ws_poc/ws-single/internal/history"
	"github.com/adred-codev/ws_poc/ws-single/internal/metrics"
	"github.com/adred-codev/ws_poc/ws-single/internal/protocol"
)

func TestMain(m *testing.M) {
	// As in main: sarama's go-metrics registry would start a meter goroutine
	// that never ends (and costs CPU in production).
	gometrics.UseNilMetrics = true
	goleak.VerifyTestMain(m)
}

// chanPublisher hands published messages to the test.
type chanPublisher chan *protocol.Message

func (p chanPublisher) Publish(ctx context.Context, m *protocol.Message) error {
	select {
	case p <- m:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func receive(t *testing.T, pub chanPublisher, n int) []*protocol.Message {
	t.Helper()
	var got []*protocol.Message
	timeout := time.After(20 * time.Second)
	for len(got) < n {
		select {
		case m := <-pub:
			got = append(got, m)
		case <-timeout:
			t.Fatalf("received %d records, want %d", len(got), n)
		}
	}
	return got
}

type running struct {
	c      *Consumer
	m      *metrics.Metrics
	hist   *history.History
	pub    chanPublisher
	cancel context.CancelFunc
	done   chan error
}

// testHistory is the history tests run with unless they say otherwise.
var testHistory = history.Config{Records: 1000, Bytes: 1 << 20}

func startConsumer(t *testing.T, brokers []string, start string, opts ...func(*Config)) *running {
	t.Helper()
	return startWith(t, brokers, start, testHistory, nil, opts...)
}

// startWith starts a consumer with the history config hc; wrap, when set, puts a publisher
// of the test's between the consumer and r.pub.
func startWith(t *testing.T, brokers []string, start string, hc history.Config, wrap func(Publisher, *history.History) Publisher, opts ...func(*Config)) *running {
	t.Helper()
	m := metrics.New(prometheus.NewRegistry(), metrics.BuildInfo{}, metrics.Labels{})
	pub := make(chanPublisher, 100)
	cfg := Config{
		Brokers: brokers, Topics: []string{"trades", "tickers"}, StartOffset: start, ClientID: "test",
		RetryBackoff: 50 * time.Millisecond, RetryBackoffMax: 200 * time.Millisecond, LagInterval: 100 * time.Millisecond,
		MaxRecordBytes: 1 << 20,
	}
	for _, o := range opts {
		o(&cfg)
	}
	hist, err := history.New(hc, cfg.Topics)
	if err != nil {
		t.Fatal(err)
	}
	var p Publisher = pub
	if wrap != nil {
		p = wrap(pub, hist)
	}
	c, err := New(cfg, p, hist, m, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	r := &running{c: c, m: m, hist: hist, pub: pub}
	r.run()
	t.Cleanup(r.stop)
	return r
}

// run starts (or, after stop, restarts) the consumer's Run.
func (r *running) run() {
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan error, 1)
	go func() { r.done <- r.c.Run(ctx) }()
}

func (r *running) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	<-r.done
}
