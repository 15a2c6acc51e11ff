package kafka

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	gometrics "github.com/rcrowley/go-metrics"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/adred-codev/ws_poc/ws-multi/internal/await"
	"github.com/adred-codev/ws_poc/ws-multi/internal/config"
	"github.com/adred-codev/ws_poc/ws-multi/internal/kafkatest"
	"github.com/adred-codev/ws_poc/ws-multi/internal/metrics"
	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

func TestMain(m *testing.M) {
	// sarama's go-metrics registry starts a meter goroutine per client; main turns it off too.
	gometrics.UseNilMetrics = true
	goleak.VerifyTestMain(m)
}

// collector is a Publisher that records what it receives.
type collector struct {
	mu   sync.Mutex
	msgs []*protocol.Message
}

func (c *collector) Publish(_ context.Context, m *protocol.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.msgs = append(c.msgs, m)
	return nil
}

func (c *collector) offsets(partition int32) []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []int64
	for _, m := range c.msgs {
		if m.Partition == partition {
			out = append(out, m.Offset)
		}
	}
	return out
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.msgs)
}

// startCluster starts a kafkatest cluster on port, once the port is free again (a cluster
// just closed can hold it a moment).
func startCluster(t *testing.T, port int) *kfake.Cluster {
	t.Helper()
	await.True(t, 5*time.Second, func() bool {
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			ln.Close()
		}
		return err == nil
	}, "port free")
	return kafkatest.NewCluster(t, port)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// produce sends n records to partition of "trades", the first with a channel header.
func produce(t *testing.T, addr string, partition int32, n int) {
	t.Helper()
	var msgs []*sarama.ProducerMessage
	for i := range n {
		msg := kafkatest.Record("trades", partition, "BTC-USD", fmt.Sprintf(`{"i":%d}`, i))
		if i == 0 {
			msg.Headers = []sarama.RecordHeader{{Key: []byte("channel"), Value: []byte("trades:special")}}
		}
		msgs = append(msgs, msg)
	}
	kafkatest.Produce(t, []string{addr}, msgs...)
}

func TestConsumeOutageAndResume(t *testing.T) {
	port := freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	cl := startCluster(t, port)
	defer func() { cl.Close() }()
	produce(t, addr, 0, 3) // before the consumer starts: read because StartOldest

	m := metrics.New(prometheus.NewRegistry(), metrics.BuildInfo{Variant: "ws-multi"}, metrics.Labels{})
	sink := &collector{}
	c, err := New(Config{Brokers: []string{addr}, Topics: []string{"trades"}, StartOffset: config.StartOldest, ClientID: "test",
		RetryBackoff: 50 * time.Millisecond, RetryBackoffMax: 200 * time.Millisecond, LagInterval: 100 * time.Millisecond,
		MaxRecordBytes: 1 << 20},
		sink, m, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	defer runConsumer(t, c)()

	await.True(t, 15*time.Second, c.Attached, "attached")
	produce(t, addr, 1, 2)
	await.True(t, 15*time.Second, func() bool { return sink.count() == 5 }, "5 records")
	if got := sink.offsets(0); fmt.Sprint(got) != "[0 1 2]" {
		t.Errorf("partition 0 offsets = %v", got)
	}
	if got := sink.offsets(1); fmt.Sprint(got) != "[0 1]" {
		t.Errorf("partition 1 offsets = %v", got)
	}
	sink.mu.Lock()
	first := string(sink.msgs[0].Wire)
	sink.mu.Unlock()
	if want := `"channel":"trades:special"`; !strings.Contains(first, want) {
		t.Errorf("header channel not used: %s", first)
	}
	if got := testutil.ToFloat64(m.KafkaRecords.WithLabelValues("trades")); got != 5 {
		t.Errorf("records consumed = %v", got)
	}
	if got := testutil.ToFloat64(m.KafkaAttached); got != 1 {
		t.Errorf("ws_kafka_attached = %v", got)
	}
	// Lag: the high-water mark minus the next offset, polled every LagInterval; a series per
	// partition, 0 once caught up.
	await.True(t, 15*time.Second, func() bool {
		return testutil.ToFloat64(m.KafkaLag.WithLabelValues("trades", "0")) == 0 &&
			testutil.CollectAndCount(m.KafkaLag) == 2
	}, "lag 0 when caught up")

	// Outage: the broker goes away; the consumer notices and detaches.
	cl.Close()
	await.True(t, 15*time.Second, func() bool { return !c.Attached() }, "detached")
	if got := testutil.ToFloat64(m.KafkaErrors); got < 1 {
		t.Errorf("ws_kafka_errors_total = %v during an outage", got)
	}
	// The broker comes back empty on the same port: the saved offsets (3 and 2) are out of
	// range, so consumption restarts at the policy (oldest) and picks up new records.
	cl = startCluster(t, port)
	await.True(t, 15*time.Second, c.Attached, "re-attached")
	produce(t, addr, 0, 1)
	await.True(t, 15*time.Second, func() bool { return sink.count() == 6 }, "record after restart")
	if got := sink.offsets(0); fmt.Sprint(got) != "[0 1 2 0]" {
		t.Errorf("partition 0 offsets after restart = %v", got)
	}
}

// runConsumer runs c until the returned stop is called; stop waits for Run and
// fails the test if it returned an error.
func runConsumer(t *testing.T, c *Consumer) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}
}
