package server

import (
	"net/http"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/adred-codev/ws_poc/ws-multi/internal/config"
)

// TestDrain cancels the server's context with two clients: one answers the close handshake at
// once, one never reads, which keeps the drain waiting until the shutdown timeout. Meanwhile
// /readyz and new upgrades answer 503; Serve returns nil at the end.
func TestDrain(t *testing.T) {
	b := startBroker(t, 1)
	e := startEnv(t, b, func(cfg *config.Config, _ *int) { cfg.ShutdownTimeout = 2 * time.Second })
	polite, stuck := e.mustDial(), e.mustDial()
	polite.subscribe("trades:*")
	stuck.subscribe("trades:*")

	e.cancel()
	if code, reason := polite.closeStatus(5 * time.Second); code != websocket.StatusGoingAway || reason != "shutdown" {
		t.Errorf("closed with %d %q, want 1001 shutdown", code, reason)
	}
	// The stuck client holds the drain open: the server still answers, and refuses.
	if resp, _ := e.get("/readyz", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz while draining = %d, want 503", resp.StatusCode)
	}
	_, resp, err := e.dial(nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("upgrade while draining: err %v, resp %v, want 503 with Retry-After", err, resp)
	}
	if got := testutil.ToFloat64(e.metrics.ConnectionsRejected.WithLabelValues("draining")); got != 1 {
		t.Errorf("rejected{draining} = %v", got)
	}
	if err := e.stopServer(); err != nil {
		t.Errorf("Serve after drain = %v, want nil", err)
	}
	if got := testutil.ToFloat64(e.metrics.Disconnects.WithLabelValues("shutdown")); got != 2 {
		t.Errorf("disconnects{shutdown} = %v, want 2", got)
	}
}
