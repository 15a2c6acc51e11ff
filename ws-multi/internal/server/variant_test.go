package server

// What the server's tests need that differs between the variants: how the hub
// is built from a config.Config, and the tests of what only N shards have.
// Every other test file of this package is the same in ws-single and ws-multi
// (copied on purpose); this one is not.

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"

	"github.com/adred-codev/ws_poc/ws-multi/internal/await"
	"github.com/adred-codev/ws_poc/ws-multi/internal/config"
	"github.com/adred-codev/ws_poc/ws-multi/internal/history"
	"github.com/adred-codev/ws_poc/ws-multi/internal/hub"
	"github.com/adred-codev/ws_poc/ws-multi/internal/kafkatest"
	"github.com/adred-codev/ws_poc/ws-multi/internal/metrics"
)

// testShards is the shard count of every test's hub unless its config sets
// WS_SHARDS: more than one, so that clients land on different shards.
const testShards = 3

// newHub builds ws-multi's hub (N shards) from cfg as main does, with
// testShards shards when cfg.Shards is 0 (main would take GOMAXPROCS).
func newHub(t *testing.T, cfg config.Config, hist *history.History, rd hub.Reader, m *metrics.Metrics) *hub.Hub {
	t.Helper()
	shards := cfg.Shards
	if shards == 0 {
		shards = testShards
	}
	h, err := hub.New(hub.Config{
		Shards:            shards,
		MaxSubscriptions:  cfg.MaxSubscriptions,
		SendQueueMessages: cfg.SendQueueMessages,
		SendQueueBytes:    cfg.SendQueueBytes,
		WriteTimeout:      cfg.WriteTimeout,
		MarkInterval:      cfg.MarkInterval,
		ResumeMaxAge:      cfg.ResumeMaxAge,
		ResumeTimeout:     cfg.ResumeTimeout,
	}, hist, rd, m, zap.NewNop())
	if err != nil {
		t.Fatalf("hub.New() = %v", err)
	}
	return h
}

// TestOrderUnderParallelPartitions produces to many partitions at once and
// checks that every client, on every shard, sees each partition's offsets in
// order and without gaps.
func TestOrderUnderParallelPartitions(t *testing.T) {
	const partitions, perPartition, clients = 8, 150, 9
	f := startWith(t, nil, func(s *Server) {
		// Before Serve starts the consumer: it sees every partition at once.
		admin, err := sarama.NewClusterAdmin(s.cfg.KafkaBrokers, sarama.NewConfig())
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close()
		if err := admin.CreatePartitions("trades", partitions, nil, false); err != nil {
			t.Fatalf("partitions of trades: %v", err)
		}
	}, func(c *config.Config, _ *setup) { c.Shards = testShards })
	var cols []*collector
	for range clients {
		c := f.connect()
		c.send(`{"op":"subscribe","channels":["trades:*"]}`)
		c.expect(map[string]any{"op": "subscribed"})
		cols = append(cols, collect(c))
	}
	// One pipelined call: the partitions' records reach the broker, and the
	// consumer's partition goroutines, interleaved.
	var msgs []*sarama.ProducerMessage
	for i := range perPartition {
		for part := range int32(partitions) {
			msgs = append(msgs, kafkatest.Record("trades", part, fmt.Sprintf("K%d", i%5), fmt.Sprintf(`{"i":%d}`, i)))
		}
	}
	kafkatest.Produce(t, f.brokers, msgs...)
	for i, col := range cols {
		await.True(t, 20*time.Second, func() bool {
			return len(col.messages()) == partitions*perPartition
		}, fmt.Sprintf("client %d gets everything", i))
		next := make(map[int32]int64)
		for _, l := range col.messages() {
			if l.Offset != next[l.Partition] {
				t.Fatalf("client %d: partition %d offset %d, want %d", i, l.Partition, l.Offset, next[l.Partition])
			}
			next[l.Partition]++
		}
	}
}

// TestShardMetrics: /metrics has a queue depth and a fan-out histogram per
// shard.
func TestShardMetrics(t *testing.T) {
	f := start(t, func(c *config.Config, _ *setup) { c.Shards = testShards })
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := hc.Get(f.url("/metrics"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	for shard := range testShards {
		for _, series := range []string{
			fmt.Sprintf(`ws_shard_queue_depth{shard="%d"}`, shard),
			fmt.Sprintf(`ws_shard_fanout_seconds_count{shard="%d"}`, shard),
		} {
			if !strings.Contains(string(body), series) {
				t.Errorf("/metrics lacks %s", series)
			}
		}
	}
}

// collector reads every line of a client on its own goroutine.
type collector struct {
	mu    sync.Mutex
	lines []recordLine
	done  chan struct{}
}

// recordLine is what the order test reads of a line.
type recordLine struct {
	Op        string `json:"op"`
	Partition int32  `json:"partition"`
	Offset    int64  `json:"offset"`
}

func collect(c *client) *collector {
	col := &collector{done: make(chan struct{})}
	go func() {
		defer close(col.done)
		for {
			s, err := c.next(time.Minute)
			if err != nil {
				return
			}
			var l recordLine
			if json.Unmarshal([]byte(s), &l) != nil {
				continue
			}
			col.mu.Lock()
			col.lines = append(col.lines, l)
			col.mu.Unlock()
		}
	}()
	c.t.Cleanup(func() {
		_ = c.ws.CloseNow()
		<-col.done
	})
	return col
}

func (col *collector) messages() []recordLine {
	col.mu.Lock()
	defer col.mu.Unlock()
	var out []recordLine
	for _, l := range col.lines {
		if l.Op == "message" {
			out = append(out, l)
		}
	}
	return out
}
