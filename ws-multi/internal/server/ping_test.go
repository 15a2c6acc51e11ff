package server

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/adred-codev/ws_poc/ws-multi/internal/await"
	"github.com/adred-codev/ws_poc/ws-multi/internal/config"
)

func TestPingTimeout(t *testing.T) {
	b := startBroker(t, 1)
	e := startEnv(t, b, func(cfg *config.Config, _ *int) {
		cfg.PingInterval = 100 * time.Millisecond
		cfg.WriteTimeout = 300 * time.Millisecond
	})
	answering := e.mustDial()
	answering.collect() // reading answers pings
	silent := e.mustDial()
	_ = silent // never reads, so never answers a ping
	await.True(t, 20*time.Second, func() bool {
		return testutil.ToFloat64(e.metrics.Disconnects.WithLabelValues("ping_timeout")) == 1
	}, "ping_timeout")
	time.Sleep(500 * time.Millisecond)
	if got := testutil.ToFloat64(e.metrics.Connections); got != 1 {
		t.Errorf("ws_connections = %v, want the answering client only", got)
	}
}

// TestPingsEveryIntervalFromConnect: a connection's first ping comes one interval after it
// connected, not before, and the next one an interval after the pong came back (a timer per
// connection, re-armed by its pong).
func TestPingsEveryIntervalFromConnect(t *testing.T) {
	const interval = 300 * time.Millisecond
	b := startBroker(t, 1)
	e := startEnv(t, b, func(cfg *config.Config, _ *int) { cfg.PingInterval = interval })
	start := time.Now()
	c := e.dialRaw()
	last := start
	for i := range 2 {
		f, err := c.readFrame(5 * time.Second)
		if err != nil {
			t.Fatalf("ping %d: %v", i, err)
		}
		if f.op != 0x9 {
			t.Fatalf("frame %d: opcode %#x, want a ping", i, f.op)
		}
		if d := time.Since(last); d < interval-50*time.Millisecond || d > 3*interval {
			t.Errorf("ping %d came %v after the connect or the last pong, want about %v", i, d, interval)
		}
		if err := c.send(wsFrame(true, 0xA, f.payload, true)); err != nil {
			t.Fatal(err)
		}
		last = time.Now()
	}
}
