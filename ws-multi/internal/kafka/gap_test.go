// This file is duplicated from ws-single (internal/kafka/gap_test.go) on purpose: the variants share the consumer.

package kafka

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/adred-codev/ws_poc/ws-multi/internal/await"
	"github.com/adred-codev/ws_poc/ws-multi/internal/config"
	"github.com/adred-codev/ws_poc/ws-multi/internal/history"
	"github.com/adred-codev/ws_poc/ws-multi/internal/kafkatest"
	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// checkReset checks what follows records 3 to 4 of trades/0 deleted while the consumer was
// at 3: the gap line, then record 5, with the ring restarted at 5 and the gap counted.
func checkReset(t *testing.T, r *running) {
	t.Helper()
	got := receive(t, r.pub, 2)
	want := `{"op":"gap","topic":"trades","partition":0,"from":3,"to":4,"reason":"offset_reset"}`
	if w := string(got[0].Wire); w != want || got[0].Kind != protocol.KindGap || got[0].Offset != 4 {
		t.Fatalf("first line after the reset: %s (kind %d, offset %d), want %s", w, got[0].Kind, got[0].Offset, want)
	}
	if got[1].Partition != 0 || got[1].Offset != 5 {
		t.Fatalf("then %s, want record 5", got[1].Wire)
	}
	ring := r.hist.Ring(history.Part{Topic: "trades", Partition: 0})
	if st := ring.Stats(); ring.Start() != 5 || st.From != 5 || st.Next != 6 || st.Records != 1 {
		t.Fatalf("ring after the reset: start %d, %+v; want it restarted at 5", ring.Start(), st)
	}
	for reason, want := range map[string]float64{protocol.GapOffsetReset: 1, protocol.GapEpochChanged: 0} {
		if n := testutil.ToFloat64(r.m.LiveGaps.WithLabelValues("trades", reason)); n != want {
			t.Errorf("ws_live_gaps_total{trades,%s} = %v, want %v", reason, n, want)
		}
	}
}

// TestOffsetResetWhileStopped: records deleted (DeleteRecords) past the consumer's offset
// while it was stopped; restarted, it announces one gap and resumes at the log start.
func TestOffsetResetWhileStopped(t *testing.T) {
	cl := kafkatest.NewCluster(t, 0)
	defer cl.Close()
	brokers := cl.ListenAddrs()
	r := startConsumer(t, brokers, config.StartNewest, func(c *Config) { c.Topics = []string{"trades"} })
	await.True(t, 5*time.Second, r.c.Attached, "attached")
	produce(t, brokers, 0, 3)
	receive(t, r.pub, 3)
	r.stop()

	produce(t, brokers, 0, 3)
	if err := cl.DeleteRecords("trades", 0, 5); err != nil {
		t.Fatal(err)
	}
	r.run()
	checkReset(t, r)
}

// TestOffsetResetWhileRunning: the consumer's fetches of trades/0 fail (a retriable error)
// while records 3 to 5 are produced and 3 to 4 deleted; its next fetch is out of range, and
// the next session announces the gap.
func TestOffsetResetWhileRunning(t *testing.T) {
	cl := kafkatest.NewCluster(t, 0)
	defer cl.Close()
	brokers := cl.ListenAddrs()
	r := startConsumer(t, brokers, config.StartNewest, func(c *Config) { c.Topics = []string{"trades"} })
	await.True(t, 5*time.Second, r.c.Attached, "attached")
	produce(t, brokers, 0, 3)
	receive(t, r.pub, 3)

	blocked := cl.Fault(kfake.Fault{
		Keys: []kmsg.Key{kmsg.Fetch}, Topic: "trades", Partitions: []int32{0},
		Err: kerr.NotLeaderForPartition, Count: -1,
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := blocked.Wait(ctx, 1); err != nil { // from now on no fetch of trades/0 gets records
		t.Fatal(err)
	}
	produce(t, brokers, 0, 3)
	if err := cl.DeleteRecords("trades", 0, 5); err != nil {
		t.Fatal(err)
	}
	blocked.Remove()
	checkReset(t, r)
}

// TestEpochChange: the topic is deleted and recreated while the consumer runs: its new topic
// id is the new epoch, every partition announces an epoch_changed gap from its old next
// offset to just before the new start, and consumption goes on in the new topic.
func TestEpochChange(t *testing.T) {
	cl := kafkatest.NewCluster(t, 0)
	defer cl.Close()
	brokers := cl.ListenAddrs()
	r := startConsumer(t, brokers, config.StartNewest, func(c *Config) { c.Topics = []string{"trades"} })
	await.True(t, 5*time.Second, r.c.Attached, "attached")
	produce(t, brokers, 0, 2)
	receive(t, r.pub, 2)
	before, _ := r.hist.Epoch("trades")
	if want := epochOf(cl.TopicInfo("trades").TopicID); before != want || len(before) != 22 {
		t.Fatalf("epoch %q, want the topic id %q", before, want)
	}

	if err := cl.DeleteTopic("trades"); err != nil {
		t.Fatal(err)
	}
	if err := cl.CreateTopic("trades", 2, nil); err != nil {
		t.Fatal(err)
	}
	got := receive(t, r.pub, 2)
	for i, want := range []string{
		`{"op":"gap","topic":"trades","partition":0,"from":2,"to":-1,"reason":"epoch_changed"}`,
		`{"op":"gap","topic":"trades","partition":1,"from":0,"to":-1,"reason":"epoch_changed"}`,
	} {
		if w := string(got[i].Wire); w != want {
			t.Errorf("line %d after the recreation: %s, want %s", i, w, want)
		}
	}
	after, _ := r.hist.Epoch("trades")
	if want := epochOf(cl.TopicInfo("trades").TopicID); after != want || after == before {
		t.Fatalf("epoch after the recreation %q, want the new topic id %q (was %q)", after, want, before)
	}
	if n := testutil.ToFloat64(r.m.LiveGaps.WithLabelValues("trades", protocol.GapEpochChanged)); n != 2 {
		t.Errorf("ws_live_gaps_total{trades,epoch_changed} = %v, want 2", n)
	}
	produce(t, brokers, 0, 1)
	if m := receive(t, r.pub, 1)[0]; m.Offset != 0 || !strings.Contains(string(m.Wire), `"offset":0,`) {
		t.Fatalf("first record of the new topic: %s", m.Wire)
	}
	if st := r.hist.Ring(history.Part{Topic: "trades", Partition: 0}).Stats(); st.From != 0 || st.Next != 1 || st.Records != 1 {
		t.Fatalf("ring of the new trades/0: %+v", st)
	}
}
