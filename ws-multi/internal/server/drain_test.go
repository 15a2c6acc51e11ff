// This file is duplicated in ws-single (internal/server/drain_test.go) on purpose: the server layer is
// the same for one hub loop and for N shards; they may diverge.

package server

import (
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/adred-codev/ws_poc/ws-multi/internal/config"
)

func TestDrainClosesEveryClientWith1001(t *testing.T) {
	f := start(t)
	var clients []*client
	for range 3 {
		c := f.connect()
		c.send(`{"op":"ping"}`)
		c.expect(map[string]any{"op": "pong"})
		clients = append(clients, c)
	}
	// The clients are not reading yet, so the drain waits for their close
	// replies: meanwhile readiness and upgrades answer 503.
	f.cancel()
	f.waitStatus("/readyz", http.StatusServiceUnavailable)
	_, resp, err := f.dial(nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("dial while draining = %v, %v; want 503 with Retry-After", resp, err)
	}
	for _, c := range clients {
		c.expectClose(websocket.StatusGoingAway, "shutdown")
	}
	select {
	case err := <-f.done:
		if err != nil {
			t.Fatalf("Serve() = %v, want nil", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Serve did not return")
	}
	f.cancel = nil
	if got := testutil.ToFloat64(f.m.Disconnects.WithLabelValues("shutdown")); got != 3 {
		t.Fatalf("disconnects{shutdown} = %v, want 3", got)
	}
	if got := testutil.ToFloat64(f.m.ConnectionsRejected.WithLabelValues("draining")); got != 1 {
		t.Fatalf("rejected{draining} = %v, want 1", got)
	}
}

func TestDrainDeadlineDropsSilentClients(t *testing.T) {
	f := start(t, func(c *config.Config, _ *setup) { c.ShutdownTimeout = 300 * time.Millisecond })
	c := f.connect()
	c.send(`{"op":"ping"}`)
	c.expect(map[string]any{"op": "pong"})
	// The client never reads again, so it never answers the close frame: the
	// close handshake would take coder/websocket's 5 s + 5 s.
	began := time.Now()
	f.cancel()
	select {
	case err := <-f.done:
		if err != nil {
			t.Fatalf("Serve() = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve still draining 5s after a 300ms shutdown timeout")
	}
	f.cancel = nil
	if took := time.Since(began); took > 3*time.Second {
		t.Fatalf("drain took %v with a 300ms shutdown timeout", took)
	}
	if got := testutil.ToFloat64(f.m.Disconnects.WithLabelValues("shutdown")); got != 1 {
		t.Fatalf("disconnects{shutdown} = %v, want 1", got)
	}
}
