package server

import (
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/adred-codev/ws_poc/ws-single/internal/await"
	"github.com/adred-codev/ws_poc/ws-single/internal/config"
	"github.com/adred-codev/ws_poc/ws-single/internal/kafkatest"
)

func TestStalledClientTimesOut(t *testing.T) {
	tests := []struct {
		name   string
		opt    option
		stall  func(t *testing.T, f *fixture, c *client)
		reason string
	}{
		{
			name: "write", reason: "write_timeout",
			opt: func(c *config.Config, _ *setup) {
				c.WriteTimeout = 300 * time.Millisecond
				c.PingInterval = time.Hour
			},
			stall: func(t *testing.T, f *fixture, c *client) {
				c.send(`{"op":"subscribe","channels":["trades:*"]}`)
				await.True(t, 20*time.Second, func() bool { return testutil.ToFloat64(f.m.Subscriptions) == 1 }, "subscribed")
				value := `"` + strings.Repeat("v", 64<<10) + `"`
				for i := 0; testutil.ToFloat64(f.m.Disconnects.WithLabelValues("write_timeout")) == 0; i++ {
					if i == 100 {
						t.Fatal("no write timeout after 100 records of 64 KiB")
					}
					kafkatest.Produce(t, f.brokers, kafkatest.Record("trades", 0, "K", value))
					time.Sleep(20 * time.Millisecond)
				}
			},
		},
		{
			name: "ping", reason: "ping_timeout",
			opt: func(c *config.Config, _ *setup) {
				c.WriteTimeout = 200 * time.Millisecond
				c.PingInterval = time.Second // the shortest allowed
			},
			stall: func(t *testing.T, f *fixture, c *client) {
				// A client that does not read never answers pings.
				await.True(t, 20*time.Second, func() bool {
					return testutil.ToFloat64(f.m.Disconnects.WithLabelValues("ping_timeout")) == 1
				}, "ping timeout")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := start(t, tt.opt)
			ws, _, err := f.dial(&websocket.DialOptions{HTTPClient: smallReadBuffer()})
			if err != nil {
				t.Fatal(err)
			}
			defer ws.CloseNow()
			tt.stall(t, f, &client{t: t, ws: ws})
			if got := testutil.ToFloat64(f.m.Disconnects.WithLabelValues(tt.reason)); got != 1 {
				t.Fatalf("disconnects{%s} = %v, want 1", tt.reason, got)
			}
			await.True(t, 20*time.Second, func() bool { return testutil.ToFloat64(f.m.Connections) == 0 }, "connection gone")
		})
	}
}
