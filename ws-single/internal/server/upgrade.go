package server

import (
	"net/http"
	"strconv"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/adred-codev/ws_poc/ws-single/internal/metrics"
)

// drainRetryAfter is the Retry-After of an upgrade refused while draining:
// the client should reconnect, to another instance, soon.
const drainRetryAfter = time.Second

// statusRecorder remembers the status Accept answered with, to count 403s.
// Unwrap lets coder/websocket reach the Hijacker underneath.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

func (s *Server) reject(r *http.Request, reason string, fields ...zap.Field) {
	s.m.ConnectionsRejected.WithLabelValues(reason).Inc()
	s.audit.Info("upgrade rejected", append(fields,
		zap.String("reason", reason),
		zap.String("remote", r.RemoteAddr),
		zap.String("origin", r.Header.Get("Origin")),
		zap.String("user_agent", r.UserAgent()))...)
}

func unavailable(w http.ResponseWriter, retryAfter time.Duration, msg string) {
	secs := int((retryAfter + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	http.Error(w, msg, http.StatusServiceUnavailable)
}

// handleWS admits, upgrades and serves one WebSocket connection; the handler
// goroutine becomes the connection's reader.
func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		s.reject(r, metrics.RejectDraining)
		unavailable(w, drainRetryAfter, "draining")
		return
	}
	if s.admit != nil {
		if ok, retry := s.admit.Allow(); !ok {
			s.reject(r, metrics.RejectCPU, zap.Duration("retry_after", retry))
			unavailable(w, retry, "cpu over threshold")
			return
		}
	}
	if !s.enter() {
		s.reject(r, metrics.RejectDraining)
		unavailable(w, drainRetryAfter, "draining")
		return
	}
	defer s.leave()

	rec := &statusRecorder{ResponseWriter: w}
	ws, err := websocket.Accept(rec, r, s.accept)
	if err != nil {
		if rec.status == http.StatusForbidden {
			s.reject(r, metrics.RejectOrigin)
		}
		return // Accept has answered (403, 426, ...)
	}
	ws.SetReadLimit(s.cfg.ReadLimit)

	if s.active.Add(1) > s.maxConns {
		s.active.Add(-1)
		s.reject(r, metrics.RejectMaxConnections, zap.Int64("max_connections", s.maxConns))
		_ = ws.Close(websocket.StatusTryAgainLater, "over_capacity")
		return
	}
	defer s.active.Add(-1)
	s.m.ConnectionsAccepted.Inc()
	s.m.Connections.Inc()
	defer s.m.Connections.Dec()

	c := newConn(s, ws)
	start := time.Now()
	// The request context ends at hijack; the connection lives as long as the hub.
	reason := c.serve(r.Context())
	s.m.Disconnects.WithLabelValues(reason).Inc()
	s.connLog.Debug("connection closed", zap.String("reason", reason),
		zap.String("remote", r.RemoteAddr), zap.Duration("duration", time.Since(start)))
}
