package dev

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/rcrowley/go-metrics"
	"go.uber.org/goleak"

	"github.com/adred-codev/ws_poc/loadtest/internal/syncbuf"
)

func TestMain(m *testing.M) {
	// Before any sarama client, so no test races on the process-wide switch.
	metrics.UseNilMetrics = true
	goleak.VerifyTestMain(m)
}

func TestRunFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "help", args: []string{"--help"}, wantErr: flag.ErrHelp.Error()},
		{name: "negative rate", args: []string{"--rate", "-1"}, wantErr: "--rate"},
		{name: "zero partitions", args: []string{"--partitions", "0"}, wantErr: "--partitions"},
		{name: "stray argument", args: []string{"extra"}, wantErr: "unexpected arguments"},
		{name: "bad address", args: []string{"--broker", "no-port"}, wantErr: "no-port"},
		{name: "external without brokers", args: []string{"--external"}, wantErr: "--brokers"},
		{name: "external without feed", args: []string{"--external", "--brokers", "127.0.0.1:1", "--rate", "0"}, wantErr: "--rate 0"},
		{name: "brokers without external", args: []string{"--brokers", "127.0.0.1:1"}, wantErr: "--external"},
		{name: "negative duration", args: []string{"--duration", "-1s"}, wantErr: "--duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := Run(context.Background(), tt.args, &out, &errOut)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Run(%q) = %v, want an error containing %q", tt.args, err, tt.wantErr)
			}
		})
	}
}

// TestRunFeedsBothTopics starts `loadtest dev` on a free port and reads the feed back with
// a sarama consumer from both topics, then stops it and expects a clean nil return.
func TestRunFeedsBothTopics(t *testing.T) {
	port := freePort(t)
	addr := net.JoinHostPort("127.0.0.1", port)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncbuf.Buffer{}
	errOut := &syncbuf.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, []string{"--broker", addr, "--rate", "200", "--partitions", "3", "--seed", "5"}, out, errOut)
	}()

	consumer := waitConsumer(t, addr)
	defer consumer.Close()
	for _, topic := range []string{TradesTopic, TickersTopic} {
		parts, err := consumer.Partitions(topic)
		if err != nil {
			t.Fatalf("partitions of %s: %v", topic, err)
		}
		if len(parts) != 3 {
			t.Fatalf("topic %s has %d partitions, want 3", topic, len(parts))
		}
		got := readSome(t, consumer, topic, parts, 10)
		for _, m := range got {
			var tick Tick
			if err := json.Unmarshal(m.Value, &tick); err != nil {
				t.Fatalf("%s value %s: %v", topic, m.Value, err)
			}
			if tick.Symbol != string(m.Key) || tick.Price == "" || tick.Side == "" {
				t.Fatalf("%s record key %s value %s: incomplete", topic, m.Key, m.Value)
			}
			if age := time.Since(time.UnixMilli(tick.TS)); age < 0 || age > time.Minute {
				t.Fatalf("%s record ts %d is %v old", topic, tick.TS, age)
			}
		}
	}
	if !strings.Contains(out.String(), addr) {
		t.Fatalf("output does not name the broker address %s:\n%s", addr, out.String())
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel = %v, want nil (stderr: %s)", err, errOut.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return within 10s of cancel")
	}
}

// TestRunExternalFeedsExistingBroker runs only the feed (--external) into a kfake broker of
// the test's own for a bounded --duration: the records arrive on both topics, Run returns nil
// by itself, and it never listened on a broker address of its own.
func TestRunExternalFeedsExistingBroker(t *testing.T) {
	b, err := NewBroker(BrokerConfig{Addr: "127.0.0.1:0", Topics: []string{TradesTopic, TickersTopic}, Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	out := &syncbuf.Buffer{}
	errOut := &syncbuf.Buffer{}
	done := make(chan error, 1)
	go func() {
		done <- Run(context.Background(), []string{"--external", "--brokers", b.Addr(), "--rate", "200", "--duration", "3s", "--symbols", "AAA-USD"}, out, errOut)
	}()

	consumer := waitConsumer(t, b.Addr())
	defer consumer.Close()
	for _, topic := range []string{TradesTopic, TickersTopic} {
		parts, err := consumer.Partitions(topic)
		if err != nil {
			t.Fatalf("partitions of %s: %v", topic, err)
		}
		for _, m := range readSome(t, consumer, topic, parts, 5) {
			if string(m.Key) != "AAA-USD" {
				t.Fatalf("%s record key %q, want AAA-USD", topic, m.Key)
			}
		}
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v, want nil (stderr: %s)", err, errOut.String())
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run --duration 3s did not return within 15s")
	}
	if got := out.String(); strings.Contains(got, "kafka broker on") || !strings.Contains(got, b.Addr()) {
		t.Fatalf("output %q: want the feed into %s and no broker of its own", got, b.Addr())
	}
}

func TestRunWithoutFeedStopsCleanly(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncbuf.Buffer{}
	done := make(chan error, 1)
	go func() { done <- Run(ctx, []string{"--broker", "127.0.0.1:0", "--rate", "0"}, out, &syncbuf.Buffer{}) }()
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(out.String(), "no synthetic feed") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v, want nil", err)
	}
	if !strings.Contains(out.String(), "no synthetic feed") {
		t.Fatalf("output %q", out.String())
	}
}

func TestRunFeedRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  FeedConfig
	}{
		{name: "zero rate", cfg: FeedConfig{Brokers: []string{"127.0.0.1:1"}}},
		{name: "no brokers", cfg: FeedConfig{Rate: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := RunFeed(context.Background(), tt.cfg, NewGenerator(1, "a", "b", nil), &bytes.Buffer{})
			if err == nil {
				t.Fatal("want an error")
			}
		})
	}
}

func TestBrokerAutoCreatesTopics(t *testing.T) {
	b, err := NewBroker(BrokerConfig{Addr: "127.0.0.1:0", Topics: []string{"seeded"}, Partitions: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	cfg := sarama.NewConfig()
	cfg.Producer.Return.Successes = true
	p, err := sarama.NewSyncProducer([]string{b.Addr()}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	for _, topic := range []string{"seeded", "made-up"} {
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: topic, Value: sarama.StringEncoder("x")}); err != nil {
			t.Fatalf("produce to %s: %v", topic, err)
		}
	}
	c, err := sarama.NewClient([]string{b.Addr()}, sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, topic := range []string{"seeded", "made-up"} {
		parts, err := c.Partitions(topic)
		if err != nil || len(parts) != 2 {
			t.Fatalf("topic %s: partitions %v, err %v; want 2", topic, parts, err)
		}
	}
}

func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(l.Addr().String())
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return port
}

func waitConsumer(t *testing.T, addr string) sarama.Consumer {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := sarama.NewConsumer([]string{addr}, sarama.NewConfig())
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer on %s: %v", addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// readSome reads at least n records of topic from the oldest offset of every partition.
func readSome(t *testing.T, c sarama.Consumer, topic string, parts []int32, n int) []*sarama.ConsumerMessage {
	t.Helper()
	msgs := make(chan *sarama.ConsumerMessage)
	var pcs []sarama.PartitionConsumer
	defer func() {
		for _, pc := range pcs {
			pc.AsyncClose()
		}
		for _, pc := range pcs {
			// Drain until closed so AsyncClose can finish.
			for range pc.Messages() {
			}
		}
	}()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer func() { close(stop); wg.Wait() }()
	for _, p := range parts {
		pc, err := c.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("consume %s/%d: %v", topic, p, err)
		}
		pcs = append(pcs, pc)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case m, ok := <-pc.Messages():
					if !ok {
						return
					}
					select {
					case msgs <- m:
					case <-stop:
						return
					}
				case <-stop:
					return
				}
			}
		}()
	}
	var got []*sarama.ConsumerMessage
	timeout := time.After(10 * time.Second)
	for len(got) < n {
		select {
		case m := <-msgs:
			got = append(got, m)
		case <-timeout:
			t.Fatalf("topic %s: %d records in 10s, want %d", topic, len(got), n)
		}
	}
	return got
}
