package e2etest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/adred-codev/ws_poc/loadtest/internal/conform"
	"github.com/adred-codev/ws_poc/loadtest/internal/dev"
)

// TestResumeLiveGap: the server is stopped (SIGSTOP) while records it has not fetched yet
// are deleted (DeleteRecords) under it; when it continues its offset is out of range, and
// WS_KAFKA_START_OFFSET=oldest restarts the partition at the log start. Every subscriber of
// the topic gets a gap line covering exactly what it will never get, in order with its
// messages, and the records after the gap arrive.
func TestResumeLiveGap(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			broker := startBroker(t)
			srv := startServer(t, v.name, binary(t, v.envVar, v.name), broker, "WS_KAFKA_START_OFFSET=oldest")
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			prod := newProducer(t, broker)
			admin := newAdmin(t, broker)
			key := uniqueKey("gap")
			ch := "trades:" + key
			otherCh := "trades:" + keyOnOtherPartition(t, key, 4)

			c := dialPositioned(ctx, t, srv.wsURL())
			c.subscribePositioned(ctx, t, "sub", ch)
			o := dialPositioned(ctx, t, srv.wsURL())
			o.ws.send(ctx, t, map[string]any{"op": "subscribe", "id": "sub", "channels": []string{otherCh}})
			o.waitLine(ctx, t, "subscribed", func(e conform.Envelope) bool { return e.Op == "subscribed" })

			type rec struct {
				part int32
				off  int64
			}
			send := func(i int) rec {
				t.Helper()
				p, off, err := prod.SendMessage(&sarama.ProducerMessage{Topic: dev.TradesTopic, Key: sarama.StringEncoder(key), Value: sarama.StringEncoder(fmt.Sprintf(`{"gap":%d}`, i))})
				if err != nil {
					t.Fatal(err)
				}
				return rec{p, off}
			}
			var recs []rec
			recs = append(recs, send(0))
			c.waitLine(ctx, t, "the first record", func(e conform.Envelope) bool { return e.Op == "message" && *e.Offset == recs[0].off })

			t.Cleanup(func() { _ = srv.cmd.Process.Signal(syscall.SIGCONT) })
			if err := srv.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
				t.Fatal(err)
			}
			recs = append(recs, send(1)) // may answer a fetch already in flight
			time.Sleep(300 * time.Millisecond)
			recs = append(recs, send(2), send(3))
			part, logStart := recs[0].part, recs[3].off+1
			if err := admin.DeleteRecords(dev.TradesTopic, map[int32]int64{part: logStart}); err != nil {
				t.Fatalf("DeleteRecords: %v", err)
			}
			recs = append(recs, send(4))
			if err := srv.cmd.Process.Signal(syscall.SIGCONT); err != nil {
				t.Fatal(err)
			}
			onPart := func(e conform.Envelope) bool {
				return e.Topic == dev.TradesTopic && e.Partition != nil && *e.Partition == part
			}
			gap := c.waitLine(ctx, t, "a gap line", func(e conform.Envelope) bool { return e.Op == "gap" && onPart(e) })
			c.waitLine(ctx, t, "the record after the gap", func(e conform.Envelope) bool { return e.Op == "message" && *e.Offset == recs[4].off })
			recs = append(recs, send(5))
			c.waitLine(ctx, t, "a record produced after the gap", func(e conform.Envelope) bool { return e.Op == "message" && *e.Offset == recs[5].off })

			var g struct {
				From   *int64 `json:"from"`
				To     *int64 `json:"to"`
				Reason string `json:"reason"`
			}
			if err := json.Unmarshal(gap.Raw, &g); err != nil || g.From == nil || g.To == nil {
				t.Fatalf("gap line %s: %v", gap.Raw, err)
			}
			if g.Reason != "offset_reset" || *g.From > *g.To {
				t.Errorf("gap line %s: want reason offset_reset and from <= to", gap.Raw)
			}
			// Delivered or inside the gap, never both, never neither; the gap in order.
			lines := c.all()
			gapAt := slices.IndexFunc(lines, func(e conform.Envelope) bool { return e.Op == "gap" })
			delivered := map[int64]int{}
			for i, e := range lines {
				if e.Op != "message" || !onPart(e) {
					continue
				}
				delivered[*e.Offset] = i
				if (i < gapAt && *e.Offset >= *g.From) || (i > gapAt && *e.Offset <= *g.To) {
					t.Errorf("the record at offset %d came %s the gap [%d, %d]", *e.Offset, where(i, gapAt), *g.From, *g.To)
				}
			}
			for i, r := range recs {
				_, got := delivered[r.off]
				in := r.off >= *g.From && r.off <= *g.To
				if got == in {
					t.Errorf("record %d at offset %d: delivered %v, inside the gap [%d, %d] %v: want exactly one", i, r.off, got, *g.From, *g.To, in)
				}
			}
			if *g.To >= logStart {
				t.Errorf("gap [%d, %d] runs past the log start %d: with WS_KAFKA_START_OFFSET=oldest only what is gone is skipped", *g.From, *g.To, logStart)
			}
			// Every subscriber of the topic is told, whatever its channel.
			o.waitLine(ctx, t, "the gap line on another channel of the topic", func(e conform.Envelope) bool {
				return e.Op == "gap" && onPart(e) && string(e.Raw) == string(gap.Raw)
			})
			body := getMetrics(ctx, t, srv)
			if n, ok := metricValue(body, "ws_live_gaps_total", `topic="trades"`, `reason="offset_reset"`); !ok || n < 1 {
				t.Errorf("ws_live_gaps_total{topic=\"trades\",reason=\"offset_reset\"} %v (%v), want 1 or more: %s", n, ok, metricLines(body, "ws_live_gaps_total"))
			}
			t.Logf("%s: %s; delivered offsets %v", v.name, gap.Raw, sortedOffsets(delivered))
		})
	}
}

// newAdmin returns a sarama cluster admin on broker, closed at cleanup.
func newAdmin(t *testing.T, broker string) sarama.ClusterAdmin {
	t.Helper()
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V2_8_0_0 // DeleteRecords needs 0.11 or later
	admin, err := sarama.NewClusterAdmin([]string{broker}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Close() })
	return admin
}

// keyOnOtherPartition returns a key whose records land in a partition other than key's.
func keyOnOtherPartition(t *testing.T, key string, partitions int32) string {
	t.Helper()
	hp := sarama.NewHashPartitioner(dev.TradesTopic)
	part := func(k string) int32 {
		p, err := hp.Partition(&sarama.ProducerMessage{Key: sarama.StringEncoder(k)}, partitions)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for range 100 {
		if k := uniqueKey("other"); part(k) != part(key) {
			return k
		}
	}
	t.Fatal("no key on another partition")
	return ""
}

func where(i, at int) string {
	if i < at {
		return "before"
	}
	return "after"
}

func sortedOffsets(m map[int64]int) []int64 {
	out := make([]int64, 0, len(m))
	for off := range m {
		out = append(out, off)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}
