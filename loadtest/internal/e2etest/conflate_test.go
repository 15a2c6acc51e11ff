package e2etest

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// TestNodeConflateInterval: the npm ws package subscribes with "conflate":{"ms":250} while
// records of its channel arrive every 5 ms for 2 s, on both variants: it gets at most one
// message per interval (the first at once), the "conflated" counts add up to every record
// it did not get, and the last record arrives.
func TestNodeConflateInterval(t *testing.T) {
	node := requireTool(t, "node", "install Node.js 20+ (the Debian package nodejs)")
	dir := e2eDir(t)
	broker := startBroker(t)
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			srv := startServer(t, v.name, binary(t, v.envVar, v.name), broker)
			prod := newProducer(t, broker)
			ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
			defer cancel()
			key := uniqueKey("conflate")
			channel := "tickers:" + key
			out, wait := startNode(ctx, t, node, dir, "ws-conflate-client.mjs", srv.wsURL(), channel, "250", "30000")
			if _, err := out.waitLine(ctx, func(l string) bool { return l == "READY" }); err != nil {
				t.Fatalf("node client never subscribed: %v\n%s", err, wait())
			}
			const records = 400
			start := time.Now()
			for i := range records {
				last := i == records-1
				produce(t, prod, "tickers", key, fmt.Sprintf(`{"i":%d,"last":%t}`, i, last))
				time.Sleep(time.Until(start.Add(time.Duration(i+1) * 5 * time.Millisecond)))
			}
			span := time.Since(start)
			if msg := wait(); msg != "" {
				t.Fatalf("node client: %s\nstdout:\n%s", msg, out.all())
			}
			line, err := out.waitLine(ctx, func(l string) bool { return len(l) > 0 && l[0] == '{' })
			if err != nil {
				t.Fatalf("no summary printed: %v\n%s", err, out.all())
			}
			var got struct {
				Messages  int             `json:"messages"`
				Conflated int             `json:"conflated"`
				Times     []int64         `json:"times"`
				Last      json.RawMessage `json:"last"`
			}
			if err := json.Unmarshal([]byte(line), &got); err != nil {
				t.Fatal(err)
			}
			if got.Messages+got.Conflated != records {
				t.Errorf("%d messages + %d conflated = %d, want the %d records produced", got.Messages, got.Conflated, got.Messages+got.Conflated, records)
			}
			if max := int(span/(250*time.Millisecond)) + 3; got.Messages > max || got.Messages < 3 {
				t.Errorf("%d messages over %v at 250 ms, want 3 to %d", got.Messages, span.Round(time.Millisecond), max)
			}
			for i := 1; i < len(got.Times); i++ {
				// At most one per interval; 50 ms for the interval clock's tick and the reader.
				if d := got.Times[i] - got.Times[i-1]; d < 150 {
					t.Errorf("messages %d and %d %d ms apart, want about 250", i-1, i, d)
				}
			}
			if string(got.Last) != fmt.Sprintf(`{"i":%d,"last":true}`, records-1) {
				t.Errorf("last data %s, want the last record's", got.Last)
			}
		})
	}
}
