package e2etest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/adred-codev/ws_poc/loadtest/internal/conform"
)

// TestResumeDrain: SIGTERM an instance with positioned clients while a producer writes.
// /readyz answers 503 before any client has its draining line; each client gets, after
// its messages, a draining line whose delay is within WS_DRAIN_RECONNECT_MAX and whose
// positions cover what it received, then 1001. Each resumes on an instance of the other
// variant from those positions and, per key, loses nothing and gets nothing twice.
func TestResumeDrain(t *testing.T) {
	for i, v := range variants {
		other := variants[1-i]
		t.Run(v.name, func(t *testing.T) {
			broker := startBroker(t)
			const reconnectMax = 1500 * time.Millisecond
			a := startServer(t, v.name, binary(t, v.envVar, v.name), broker,
				"WS_MARK_INTERVAL=100ms", "WS_DRAIN_RECONNECT_MAX="+reconnectMax.String(), "WS_SHUTDOWN_TIMEOUT=5s")
			b := startServer(t, other.name, binary(t, other.envVar, other.name), broker, "WS_MARK_INTERVAL=100ms")
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()

			type sub struct {
				keys []string
				c    *posClient
			}
			// Every client has a key of its own and three busy keys all share: records keep
			// coming to each of them while the drain runs.
			shared := []string{uniqueKey("drain"), uniqueKey("drain"), uniqueKey("drain")}
			allKeys := slices.Clone(shared)
			var subs []sub
			for range 6 {
				keys := append([]string{uniqueKey("drain")}, shared...)
				allKeys = append(allKeys, keys[0])
				c := dialPositioned(ctx, t, a.wsURL())
				c.subscribePositioned(ctx, t, "sub", tradesChannels(keys)...)
				subs = append(subs, sub{keys, c})
			}
			prod := startSeqProducer(t, broker, allKeys, time.Millisecond)
			for _, s := range subs {
				s.c.waitCount(ctx, t, "messages", 50, isMessage)
			}
			// A client that never answers the close keeps the instance draining (up to
			// WS_SHUTDOWN_TIMEOUT), so /readyz can still be asked.
			hold := rawUpgrade(t, a.addr)
			exit := make(chan error, 1)
			go func() { exit <- a.stop(t, syscall.SIGTERM) }()

			for i, s := range subs {
				dl := s.c.waitLine(ctx, t, "the draining line", func(e conform.Envelope) bool { return e.Op == "draining" })
				if i == 0 {
					if status, body := readyz(ctx, a.addr); status != http.StatusServiceUnavailable {
						t.Errorf("/readyz answered %d %q after a client had its draining line, want 503 first", status, body)
					}
				}
				checkDraining(ctx, t, s.c, dl, reconnectMax)
			}
			hold.Close()
			if err := <-exit; err != nil {
				t.Fatalf("%s exited with %v after SIGTERM, want 0", v.name, err)
			}

			resumed := make([]*posClient, len(subs))
			for i, s := range subs {
				f, err := fieldsOf(s.c.waitLine(ctx, t, "the draining line", func(e conform.Envelope) bool { return e.Op == "draining" }))
				if err != nil {
					t.Fatal(err)
				}
				d := dialPositioned(ctx, t, b.wsURL())
				d.resume(ctx, t, "r", tradesChannels(s.keys), f.Epochs, f.topicPos)
				resumed[i] = d
			}
			time.Sleep(200 * time.Millisecond) // live records too
			counts := prod.halt(t)
			for i, s := range subs {
				resumed[i].waitSeqs(ctx, t, counts, s.keys)
				checkSequences(t, counts, s.keys, s.c.all(), resumed[i].all())
			}
		})
	}
}

// checkDraining checks a client's draining line against what it received, then its close.
func checkDraining(ctx context.Context, t *testing.T, c *posClient, dl conform.Envelope, reconnectMax time.Duration) {
	t.Helper()
	f, err := fieldsOf(dl)
	if err != nil {
		t.Fatal(err)
	}
	if f.ReconnectAfterMS == nil || *f.ReconnectAfterMS < 0 || *f.ReconnectAfterMS > reconnectMax.Milliseconds() {
		t.Errorf("reconnect_after_ms not within [0, %d]: %s", reconnectMax.Milliseconds(), dl.Raw)
	}
	if f.Epochs["trades"] == "" {
		t.Errorf("draining line without the epoch of trades: %s", dl.Raw)
	}
	if code, reason, err := closeOf(c.ended(ctx, t)); err != nil || code != websocket.StatusGoingAway || reason != "shutdown" {
		t.Errorf("after the draining line: close %d %q (%v), want 1001 \"shutdown\"", code, reason, err)
	}
	lines := c.all()
	at := slices.IndexFunc(lines, func(e conform.Envelope) bool { return e.Op == "draining" })
	for _, e := range lines[at+1:] {
		t.Errorf("a line after the draining line: %s", e.Raw)
	}
	for _, e := range lines[:at] {
		if e.Op != "message" || e.Partition == nil || e.Offset == nil {
			continue
		}
		if off, ok := f.topicPos[e.Topic][*e.Partition]; !ok || off < *e.Offset {
			t.Errorf("the draining line's positions do not cover the record at %s/%d/%d the client received: %s", e.Topic, *e.Partition, *e.Offset, dl.Raw)
			return
		}
	}
}

func closeOf(err error) (websocket.StatusCode, string, error) {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code, ce.Reason, nil
	}
	return -1, "", fmt.Errorf("ended without a close frame: %w", err)
}
