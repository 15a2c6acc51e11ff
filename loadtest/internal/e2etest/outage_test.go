package e2etest

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/adred-codev/ws_poc/loadtest/internal/conform"
	"github.com/adred-codev/ws_poc/loadtest/internal/dev"
)

// TestBrokerOutage: when Kafka goes away /readyz turns 503 and clients stay connected;
// when it comes back (empty, at the same address) /readyz turns 200 again and new records
// reach the same clients (README, endpoints; WS_KAFKA_RETRY_BACKOFF*).
func TestBrokerOutage(t *testing.T) {
	for _, v := range []struct{ name, envVar string }{{"ws-single", "WS_SINGLE_BIN"}, {"ws-multi", "WS_MULTI_BIN"}} {
		t.Run(v.name, func(t *testing.T) {
			bin := binary(t, v.envVar, v.name)
			cfg := dev.BrokerConfig{Addr: "127.0.0.1:0", Topics: []string{dev.TradesTopic, dev.TickersTopic}, Partitions: 4}
			b, err := dev.NewBroker(cfg)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Addr = b.Addr()
			current := b
			t.Cleanup(func() { current.Close() })
			srv := startServer(t, v.name, bin, cfg.Addr, "WS_KAFKA_RETRY_BACKOFF=100ms", "WS_KAFKA_RETRY_BACKOFF_MAX=500ms")

			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			c := dialWS(ctx, t, srv.wsURL())
			key := uniqueKey("outage")
			c.subscribe(ctx, t, "trades:"+key)
			deliver := func(phase string) {
				t.Helper()
				prod := newProducer(t, cfg.Addr)
				// The server may attach at the newest offset a moment after /readyz: keep
				// producing until one record arrives.
				got := make(chan error, 1)
				go func() {
					// Ends when a record arrives or ctx ends (the read fails).
					_, err := c.next(ctx, func(e conform.Envelope) bool {
						return e.Op == "message" && e.Channel == "trades:"+key
					})
					got <- err
				}()
				for i := 0; ; i++ {
					produce(t, prod, "trades", key, fmt.Sprintf(`{"phase":%q,"i":%d}`, phase, i))
					select {
					case err := <-got:
						if err != nil {
							t.Fatalf("%s: %v", phase, err)
						}
						return
					case <-time.After(300 * time.Millisecond):
					}
				}
			}
			deliver("before")

			current.Close()
			start := time.Now()
			waitStatus(ctx, t, srv, http.StatusServiceUnavailable)
			t.Logf("%s: /readyz 503 %v after the broker went away", v.name, time.Since(start).Round(time.Millisecond))
			// The client is still there: a ping round trip.
			c.send(ctx, t, map[string]any{"op": "ping", "id": "during"})
			c.readUntil(ctx, t, "pong during the outage", func(e conform.Envelope) bool { return e.Op == "pong" && e.IDIs("during") })

			current = restartBroker(ctx, t, cfg)
			start = time.Now()
			waitStatus(ctx, t, srv, http.StatusOK)
			t.Logf("%s: /readyz 200 %v after the broker came back", v.name, time.Since(start).Round(time.Millisecond))
			deliver("after")
		})
	}
}

// restartBroker starts a broker on the address of the one that was closed, retrying while
// the port is still held.
func restartBroker(ctx context.Context, t *testing.T, cfg dev.BrokerConfig) *dev.Broker {
	t.Helper()
	for {
		b, err := dev.NewBroker(cfg)
		if err == nil {
			return b
		}
		select {
		case <-ctx.Done():
			t.Fatalf("restart broker on %s: %v", cfg.Addr, err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitStatus waits until /readyz answers want.
func waitStatus(ctx context.Context, t *testing.T, srv *server, want int) {
	t.Helper()
	url := "http://" + srv.addr + "/readyz"
	last := 0
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			last = resp.StatusCode
			if last == want {
				return
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("/readyz: last status %d, want %d: %v", last, want, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}
