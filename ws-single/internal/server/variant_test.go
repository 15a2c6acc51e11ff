package server

// What the server's tests need that differs between the variants: how the hub
// is built from a config.Config. Every other test file of this package is the
// same in ws-single and ws-multi (copied on purpose); this one is not.

import (
	"testing"

	"go.uber.org/zap"

	"github.com/adred-codev/ws_poc/ws-single/internal/config"
	"github.com/adred-codev/ws_poc/ws-single/internal/history"
	"github.com/adred-codev/ws_poc/ws-single/internal/hub"
	"github.com/adred-codev/ws_poc/ws-single/internal/metrics"
)

// newHub builds ws-single's hub (one loop) from cfg as main does.
func newHub(t *testing.T, cfg config.Config, hist *history.History, rd hub.Reader, m *metrics.Metrics) *hub.Hub {
	t.Helper()
	h, err := hub.New(hub.Config{
		MaxSubscriptions:  cfg.MaxSubscriptions,
		SendQueueMessages: cfg.SendQueueMessages,
		SendQueueBytes:    cfg.SendQueueBytes,
		WriteTimeout:      cfg.WriteTimeout,
		MarkInterval:      cfg.MarkInterval,
		ResumeMaxAge:      cfg.ResumeMaxAge,
		ResumeTimeout:     cfg.ResumeTimeout,
	}, hist, rd, m, zap.NewNop())
	if err != nil {
		t.Fatalf("hub.New() = %v", err)
	}
	return h
}
