package server

import (
	"errors"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"
	"golang.org/x/time/rate"

	"github.com/adred-codev/ws_poc/ws-multi/internal/hub"
	"github.com/adred-codev/ws_poc/ws-multi/internal/metrics"
	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// handleWS admits and upgrades a client, then hands the connection to a fresh goroutine and
// returns: net/http's goroutine, with the stack it grew parsing the request, ends, and the
// connection lives on a small stack of its own. That goroutine is the connection's only one
// while it has nothing to send.
func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		s.refuse(w, r, metrics.RejectDraining, drainRetryAfter)
		return
	}
	if ok, retry := s.d.Admission.Allow(); !ok {
		s.refuse(w, r, metrics.RejectCPU, retry)
		return
	}
	if !s.enter() {
		s.refuse(w, r, metrics.RejectDraining, drainRetryAfter)
		return
	}
	handedOff := false
	defer func() {
		if !handedOff {
			s.handlers.Done()
		}
	}()

	// The slot is taken before the upgrade completes, so a client whose handshake succeeded
	// is already counted when the next one arrives: the over-capacity one is the last in.
	overCapacity := s.active.Add(1) > s.maxConns
	uw := &upgradeWriter{ResponseWriter: w, corks: &s.corks, timeout: s.cfg.WriteTimeout}
	conn, err := websocket.Accept(uw, r, &websocket.AcceptOptions{
		OriginPatterns: s.cfg.AllowedOrigins,
		// Messages are encoded once and shared by every client; per-connection compression
		// would undo that and costs tens of KB of flate state per connection.
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		s.active.Add(-1)
		if uw.status == http.StatusForbidden {
			s.d.Metrics.ConnectionsRejected.WithLabelValues(metrics.RejectOrigin).Inc()
			s.audit(r, metrics.RejectOrigin, err)
		}
		return // Accept answered (403, 426, ...)
	}
	if overCapacity {
		s.active.Add(-1)
		s.d.Metrics.ConnectionsRejected.WithLabelValues(metrics.RejectMaxConnections).Inc()
		s.audit(r, metrics.RejectMaxConnections, nil)
		_ = conn.Close(websocket.StatusTryAgainLater, "over_capacity")
		return
	}
	conn.SetReadLimit(s.cfg.ReadLimit)
	handedOff = true
	go s.serveConn(corkedConn{Conn: conn, cork: uw.cork}, r.RemoteAddr)
}

// serveConn runs one accepted connection to its end. The server's handlers group owns it.
func (s *Server) serveConn(conn corkedConn, remote string) {
	defer s.handlers.Done()
	m := s.d.Metrics
	m.ConnectionsAccepted.Inc()
	m.Connections.Inc()
	c := s.d.Hub.Register(conn)
	reason := s.readLoop(conn.Conn, c)
	switch reason {
	case hub.ReasonBinary, hub.ReasonRateLimit, hub.ReasonReadLimit:
		c.Kill(reason)
	}
	reason = c.Finish(reason)
	conn.cork.wait() // the socket is closed: a drain of left-over control frames ends
	s.active.Add(-1) // before the gauge: once ws_connections drops, the slot is free
	m.Connections.Dec()
	m.Disconnects.WithLabelValues(reason.String()).Inc()
	if ce := s.d.Audit.Check(zap.DebugLevel, "disconnect"); ce != nil {
		ce.Write(zap.Uint64("conn", c.ID()), zap.String("reason", reason.String()), zap.String("remote", remote))
	}
}

// readLoop reads client frames until the connection ends and returns why it ended.
func (s *Server) readLoop(conn *websocket.Conn, c *hub.Client) hub.Reason {
	limiter := rate.NewLimiter(rate.Limit(s.cfg.RateLimit), s.cfg.RateBurst)
	m := s.d.Metrics
	for {
		typ, data, err := conn.Read(s.connCtx)
		if err != nil {
			if errors.Is(err, websocket.ErrMessageTooBig) {
				return hub.ReasonReadLimit
			}
			// A close frame from the peer, EOF or a reset: the client left. When the server
			// ended the connection (slow, shutdown, ...), that reason was recorded first and
			// wins in Finish.
			return hub.ReasonClient
		}
		if typ != websocket.MessageText {
			return hub.ReasonBinary
		}
		if !limiter.Allow() {
			return hub.ReasonRateLimit
		}
		req, perr := protocol.Parse(data)
		if perr != nil {
			m.ProtocolErrors.WithLabelValues(perr.Code).Inc()
			c.Reply(protocol.ErrorReply(req.ID, req.HasID, perr.Code, perr.Message))
			continue
		}
		c.Request(req)
	}
}

// refuse answers an upgrade with 503 and Retry-After, counts it and audits it.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, reason string, retry time.Duration) {
	s.d.Metrics.ConnectionsRejected.WithLabelValues(reason).Inc()
	s.audit(r, reason, nil)
	secs := int(math.Ceil(retry.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	http.Error(w, "service unavailable: "+reason, http.StatusServiceUnavailable)
}

// audit writes one entry per refused upgrade; the logger is sampled, so a rejection storm
// cannot flood the logs.
func (s *Server) audit(r *http.Request, reason string, err error) {
	if ce := s.d.Audit.Check(zap.InfoLevel, "upgrade refused"); ce != nil {
		fields := []zap.Field{
			zap.String("reason", reason),
			zap.String("remote", r.RemoteAddr),
			zap.String("origin", r.Header.Get("Origin")),
			zap.String("user_agent", r.UserAgent()),
		}
		if err != nil {
			fields = append(fields, zap.Error(err))
		}
		ce.Write(fields...)
	}
}
