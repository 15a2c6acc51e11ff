// This file is duplicated from ws-multi (internal/kafka/catchup_test.go) on purpose: the variants share the consumer.

package kafka

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/zap"

	"github.com/adred-codev/ws_poc/ws-single/internal/await"
	"github.com/adred-codev/ws_poc/ws-single/internal/history"
	"github.com/adred-codev/ws_poc/ws-single/internal/kafkatest"
	"github.com/adred-codev/ws_poc/ws-single/internal/metrics"
	"github.com/adred-codev/ws_poc/ws-single/internal/protocol"
)

// t0 is the timestamp of the first record of catch-up tests; record i is stamped t0 + i s.
var t0 = time.UnixMilli(1700000000000)

// catchupCluster holds trades/0 records 0 to 9, keys alternating A and B, record 4 with an
// invalid channel header and record 7's value too large (over 20 bytes); trades/1 holds 2.
func catchupCluster(t *testing.T) (*kfake.Cluster, []string) {
	t.Helper()
	cl := kafkatest.NewCluster(t, 0)
	t.Cleanup(cl.Close)
	var msgs []*sarama.ProducerMessage
	for i := range 10 {
		m := kafkatest.Record("trades", 0, []string{"A", "B"}[i%2], fmt.Sprintf(`{"i":%d}`, i))
		switch i {
		case 4:
			m.Headers = []sarama.RecordHeader{{Key: []byte("channel"), Value: []byte("tickers:X")}}
		case 7:
			m.Value = sarama.StringEncoder(strings.Repeat("x", 21))
		}
		m.Timestamp = t0.Add(time.Duration(i) * time.Second)
		msgs = append(msgs, m)
	}
	msgs = append(msgs, kafkatest.Record("trades", 1, "A", `1`), kafkatest.Record("trades", 1, "A", `2`))
	kafkatest.Produce(t, cl.ListenAddrs(), msgs...)
	return cl, cl.ListenAddrs()
}

func newReader(t *testing.T, brokers []string, opts ...func(*ReaderConfig)) (*Reader, *metrics.Metrics) {
	t.Helper()
	m := metrics.New(prometheus.NewRegistry(), metrics.BuildInfo{}, metrics.Labels{})
	cfg := ReaderConfig{Brokers: brokers, ClientID: "test", MaxRecordBytes: 20, Readers: 2, Wait: 50 * time.Millisecond,
		MaxScanRecords: 100, MaxScanBytes: 1 << 20}
	for _, o := range opts {
		o(&cfg)
	}
	r, err := NewReader(cfg, m, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r, m
}

func all(*protocol.Message) bool { return true }

// lines returns "<partition>/<offset> <op> <channel>" per message.
func lines(msgs []*protocol.Message) string {
	var out []string
	for _, m := range msgs {
		op := "message"
		if strings.HasPrefix(string(m.Wire), `{"op":"skipped"`) {
			op = "skipped"
		}
		out = append(out, fmt.Sprintf("%d/%d %s %s", m.Partition, m.Offset, op, m.Channel))
	}
	return strings.Join(out, ", ")
}

func rng(p int32, after, before int64) history.Range {
	return history.Range{Part: history.Part{Topic: "trades", Partition: p}, After: after, Before: before}
}

func since(p int32, ts time.Time, before int64) history.Range {
	return history.Range{Part: history.Part{Topic: "trades", Partition: p}, Before: before, Since: ts}
}

// TestReaderReads: a range is read exactly, (After, Before), encoded as the live consumer
// does (skipped line, invalid channel dropped), filtered by match, ranges in the given order;
// a time range starts at the first record stamped at or after Since.
func TestReaderReads(t *testing.T) {
	_, brokers := catchupCluster(t)
	r, m := newReader(t, brokers)
	onlyA := func(m *protocol.Message) bool { return m.Channel == "trades:A" }
	tests := []struct {
		name    string
		ranges  []history.Range
		match   func(*protocol.Message) bool
		want    string
		scanned int
	}{
		{"range", []history.Range{rng(0, 2, 9)}, all,
			"0/3 message trades:B, 0/5 message trades:B, 0/6 message trades:A, 0/7 skipped trades:B, 0/8 message trades:A", 6},
		{"filter", []history.Range{rng(0, 2, 9)}, onlyA, "0/6 message trades:A, 0/8 message trades:A", 6},
		{"ranges in order", []history.Range{rng(1, -1, 2), rng(0, -1, 1)}, all,
			"1/0 message trades:A, 1/1 message trades:A, 0/0 message trades:A", 3},
		{"empty", []history.Range{rng(0, 5, 6), rng(0, 9, 9)}, all, "", 0},
		{"a partition twice", []history.Range{rng(0, -1, 2), rng(0, 5, 7)}, all,
			"0/0 message trades:A, 0/1 message trades:B, 0/6 message trades:A", 3},
		{"since", []history.Range{since(0, t0.Add(2500*time.Millisecond), 6)}, all, "0/3 message trades:B, 0/5 message trades:B", 3},
		{"since exact", []history.Range{since(0, t0.Add(8*time.Second), 10)}, all, "0/8 message trades:A, 0/9 message trades:B", 2},
		{"since the start", []history.Range{since(0, t0.Add(-time.Hour), 2)}, all, "0/0 message trades:A, 0/1 message trades:B", 2},
		{"since after all", []history.Range{since(0, t0.Add(time.Hour), 10)}, all, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, scanned, err := r.Read(context.Background(), tt.ranges, tt.match)
			if err != nil {
				t.Fatal(err)
			}
			if lines(got) != tt.want || scanned != tt.scanned {
				t.Fatalf("read %q (%d scanned)\nwant %q (%d)", lines(got), scanned, tt.want, tt.scanned)
			}
		})
	}
	if n := testutil.ToFloat64(m.ResumeReaders); n != 0 {
		t.Fatalf("ws_resume_catchup_readers = %v after the reads", n)
	}
}

// TestReaderOutOfRetention: a range or a time range starting before deleted records is out
// of retention, with the log start; a time range whose first retained record is stamped at
// Since exactly has lost nothing.
func TestReaderOutOfRetention(t *testing.T) {
	cl, brokers := catchupCluster(t)
	if err := cl.DeleteRecords("trades", 0, 3); err != nil {
		t.Fatal(err)
	}
	r, _ := newReader(t, brokers)
	for _, rg := range []history.Range{rng(0, 0, 5), since(0, t0, 5)} {
		_, _, err := r.Read(context.Background(), []history.Range{rg}, all)
		var oor *history.OutOfRetentionError
		if !errors.As(err, &oor) || oor.Part != rg.Part || oor.Earliest != 3 {
			t.Fatalf("read %+v: %v, want out of retention from 3", rg, err)
		}
		if reason, _, _ := history.Reason(err); reason != protocol.NotRecoveredOutOfRetention {
			t.Fatalf("reason %q", reason)
		}
	}
	got, _, err := r.Read(context.Background(), []history.Range{since(0, t0.Add(3*time.Second), 5)}, all)
	if err != nil || lines(got) != "0/3 message trades:B" {
		t.Fatalf("since the log start's own time: %q, %v", lines(got), err)
	}
}

// TestReaderBounds: no reader free within Wait is busy; more to scan than the bounds is too
// far behind (up front for records, while reading for bytes); ctx's deadline ends a read
// that waits for records that do not come.
func TestReaderBounds(t *testing.T) {
	_, brokers := catchupCluster(t)
	r, m := newReader(t, brokers, func(c *ReaderConfig) { c.Readers, c.MaxScanRecords, c.MaxScanBytes = 1, 5, 30 })

	// A range past the log's end holds the one reader until its ctx ends.
	ctx, cancel := context.WithCancel(context.Background())
	held := make(chan error, 1)
	go func() { _, _, err := r.Read(ctx, []history.Range{rng(1, 1, 4)}, all); held <- err }()
	await.True(t, 2*time.Second, func() bool { return testutil.ToFloat64(m.ResumeReaders) == 1 }, "reader taken")
	start := time.Now()
	if _, _, err := r.Read(context.Background(), []history.Range{rng(0, -1, 1)}, all); !errors.Is(err, history.ErrBusy) {
		t.Fatalf("read with every reader taken: %v, want busy", err)
	} else if d := time.Since(start); d < 50*time.Millisecond {
		t.Fatalf("busy after %v, before Wait", d)
	}
	cancel()
	if err := <-held; !errors.Is(err, context.Canceled) {
		t.Fatalf("held read: %v, want canceled", err)
	}

	tests := []struct {
		name    string
		ranges  []history.Range
		scanned int
		tooFar  bool
	}{
		{"at the bounds", []history.Range{rng(0, -1, 3), rng(1, -1, 2)}, 5, false}, // 5 records, 23 bytes
		{"records up front", []history.Range{rng(0, -1, 4), rng(1, -1, 2)}, 0, true},
		{"records of a time range", []history.Range{since(0, t0.Add(-time.Hour), 10)}, 0, true},
		{"bytes", []history.Range{rng(0, 4, 8)}, 3, true}, // 7 + 7 + 21 bytes > 30 at offset 7
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, scanned, err := r.Read(context.Background(), tt.ranges, all)
			if errors.Is(err, history.ErrTooFarBehind) != tt.tooFar || (err != nil && !tt.tooFar) || scanned != tt.scanned {
				t.Fatalf("read: %v, %d scanned; want too far behind %v, %d scanned", err, scanned, tt.tooFar, tt.scanned)
			}
		})
	}

	tctx, tcancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer tcancel()
	_, _, err := r.Read(tctx, []history.Range{rng(1, 1, 4)}, all)
	if reason, _, _ := history.Reason(err); !errors.Is(err, context.DeadlineExceeded) || reason != protocol.NotRecoveredTimeout {
		t.Fatalf("read past the log's end: %v (%s), want a timeout", err, reason)
	}
	if n := testutil.ToFloat64(m.ResumeReaders); n != 0 {
		t.Fatalf("ws_resume_catchup_readers = %v after the reads", n)
	}
}

// TestReaderReconnects: a Read that fails on Kafka has the reader's client replaced; the next
// Read connects anew, and Close closes it (goleak checks its goroutines are gone).
func TestReaderReconnects(t *testing.T) {
	cl, brokers := catchupCluster(t)
	r, _ := newReader(t, brokers)
	if _, _, err := r.Read(context.Background(), []history.Range{rng(1, -1, 2)}, all); err != nil {
		t.Fatal(err)
	}
	first := r.cur
	port := kafkatest.Port(t, cl)
	cl.Close()
	_, _, err := r.Read(context.Background(), []history.Range{rng(1, -1, 2)}, all)
	if reason, _, _ := history.Reason(err); err == nil || reason != protocol.NotRecoveredUnavailable {
		t.Fatalf("read with the broker gone: %v (%s), want unavailable", err, reason)
	}
	cl = kafkatest.NewCluster(t, port)
	defer cl.Close()
	kafkatest.Produce(t, brokers, kafkatest.Record("trades", 1, "A", `1`))
	got, _, err := r.Read(context.Background(), []history.Range{rng(1, -1, 1)}, all)
	if err != nil || lines(got) != "1/0 message trades:A" {
		t.Fatalf("read after the broker came back: %q, %v", lines(got), err)
	}
	r.mu.Lock()
	replaced := r.cur != first
	r.mu.Unlock()
	if !replaced {
		t.Fatal("the client was not replaced after the failure")
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.Read(context.Background(), []history.Range{rng(1, -1, 1)}, all); err == nil {
		t.Fatal("read after Close succeeded")
	}
}
