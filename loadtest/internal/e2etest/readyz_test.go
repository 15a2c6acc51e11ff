package e2etest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/adred-codev/ws_poc/loadtest/internal/conform"
	"github.com/adred-codev/ws_poc/loadtest/internal/dev"
)

// TestResumeReadyzWarmStart: a server started on a topic that already holds records
// answers /readyz 503 until it has loaded them (the warm start), then 200; a client
// resuming right then from before those records is served from memory, every record once.
func TestResumeReadyzWarmStart(t *testing.T) {
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			broker := startBroker(t)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			prod := newProducer(t, broker)
			key := uniqueKey("warm")
			var part int32
			var offs []int64
			for round := range 20 {
				msgs := make([]*sarama.ProducerMessage, 0, 1001)
				for i := range 1000 {
					msgs = append(msgs, &sarama.ProducerMessage{Topic: dev.TradesTopic, Key: sarama.StringEncoder(fmt.Sprintf("filler-%d", i%64)),
						Value: sarama.StringEncoder(fmt.Sprintf(`{"filler":%d,"pad":"%080d"}`, round*1000+i, i))})
				}
				mine := &sarama.ProducerMessage{Topic: dev.TradesTopic, Key: sarama.StringEncoder(key), Value: sarama.StringEncoder(fmt.Sprintf(`{"warm":%d}`, round))}
				msgs = append(msgs, mine)
				if err := prod.SendMessages(msgs); err != nil {
					t.Fatal(err)
				}
				part = mine.Partition
				offs = append(offs, mine.Offset)
			}

			srv := startServerUnready(t, v.name, binary(t, v.envVar, v.name), broker)
			var seen []string
			for {
				status, body := readyz(ctx, srv.addr)
				if status == http.StatusOK {
					break
				}
				if status != 0 && status != http.StatusServiceUnavailable {
					t.Fatalf("/readyz answered %d %q while starting, want 503 or 200", status, body)
				}
				if s := fmt.Sprintf("%d %s", status, body); len(seen) == 0 || seen[len(seen)-1] != s {
					seen = append(seen, s)
				}
				select {
				case <-srv.exited:
					t.Fatalf("%s exited: %v", v.name, srv.err)
				case <-ctx.Done():
					t.Fatalf("/readyz did not answer 200: %v (seen %q)", ctx.Err(), seen)
				case <-time.After(5 * time.Millisecond):
				}
			}
			t.Logf("%s: /readyz before 200: %q", v.name, seen)

			c := dialPositioned(ctx, t, srv.wsURL())
			f := c.subscribePositioned(ctx, t, "p", "trades:"+uniqueKey("warm-epoch"))
			rec := c.resume(ctx, t, "r", []string{"trades:" + key}, f.Epochs, map[string]map[int32]int64{"trades": {part: offs[0] - 1}})
			if rec.Source != "memory" {
				t.Errorf("a resume right after /readyz turned 200, from before the %d records the server found at start: source %q, want memory (the warm start loads the history)", 20*1001, rec.Source)
			}
			mine := func(e conform.Envelope) bool { return e.Op == "message" && e.Channel == "trades:"+key }
			c.waitCount(ctx, t, "records of "+key, len(offs), mine)
			var got []int64
			for _, e := range c.all() {
				if mine(e) {
					got = append(got, *e.Offset)
				}
			}
			if !slices.Equal(got, offs) {
				t.Errorf("replayed offsets %v, want %v (every record once, in order)", got, offs)
			}
		})
	}
}

// readyz asks /readyz once, on a new connection.
func readyz(ctx context.Context, addr string) (int, string) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/readyz", nil)
	req.Close = true
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return resp.StatusCode, strings.TrimSpace(string(b))
}
