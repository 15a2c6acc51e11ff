package server

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/adred-codev/ws_poc/ws-multi/internal/await"
	"github.com/adred-codev/ws_poc/ws-multi/internal/config"
	"github.com/adred-codev/ws_poc/ws-multi/internal/metrics"
)

// TestRefuseWhileDraining: a refusal while draining says Retry-After: 1 (come back soon, to
// another instance) and Connection: close.
func TestRefuseWhileDraining(t *testing.T) {
	t.Parallel()
	s := &Server{d: Deps{Metrics: metrics.New(prometheus.NewRegistry(), metrics.BuildInfo{}, metrics.Labels{})}, audit: zap.NewNop()}
	rec := httptest.NewRecorder()
	s.refuse(rec, httptest.NewRequest(http.MethodGet, "/ws", nil), RejectDraining, drainRetryAfter)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "1" || rec.Header().Get("Connection") != "close" {
		t.Errorf("refusal = %d, Retry-After %q, Connection %q; want 503, 1, close",
			rec.Code, rec.Header().Get("Retry-After"), rec.Header().Get("Connection"))
	}
}

// TestOverCapacityReleasedAtOnce: an upgrade past the connection limit gets 1013
// over_capacity and its socket is closed right after, without waiting for its close frame.
func TestOverCapacityReleasedAtOnce(t *testing.T) {
	b := startBroker(t, 1)
	e := startEnv(t, b, func(_ *config.Config, maxConns *int) { *maxConns = 1 })
	e.mustDial()
	await.True(t, 20*time.Second, func() bool { return testutil.ToFloat64(e.metrics.Connections) == 1 }, "one connection")
	c := e.dialRaw()
	if _, code, reason := c.untilClose(5 * time.Second); code != 1013 || reason != "over_capacity" {
		t.Fatalf("closed with %d %q, want 1013 over_capacity", code, reason)
	}
	if el := waitEOF(t, c.conn, c.br, 4*time.Second); el > time.Second {
		t.Errorf("socket released %v after the close frame, want at once", el)
	}
}
