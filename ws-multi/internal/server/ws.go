package server

import (
	"io"
	"math"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/adred-codev/ws_poc/ws-multi/internal/hub"
	"github.com/adred-codev/ws_poc/ws-multi/internal/metrics"
	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// handleWS admits and upgrades a client, then hands the connection to a fresh goroutine and
// returns: net/http's goroutine, with the stack it grew parsing the request, ends, and the
// connection lives on a small stack of its own. That goroutine is the connection's only one
// while it has nothing to send. Every answer but 101 closes the socket (Connection: close).
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
	c := s.newConn()
	uw := &upgradeWriter{ResponseWriter: w, corks: &s.corks, timeout: s.cfg.WriteTimeout, limit: s.cfg.SendQueueBytes, cut: c.cut}
	ws, err := websocket.Accept(uw, r, &websocket.AcceptOptions{
		OriginPatterns: s.cfg.AllowedOrigins,
		// Messages are encoded once and shared by every client; per-connection compression
		// would undo that and costs tens of KB of flate state per connection.
		CompressionMode: websocket.CompressionDisabled,
		OnPingReceived:  c.onPing,
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
		// The 1013 frame goes out and the socket is released at once: with the read deadline
		// passed, the close handshake's wait for the client's close fails immediately.
		c.lingering.Store(true) // a ping read meanwhile starts nothing
		_ = uw.raw.SetReadDeadline(time.Now())
		_ = ws.Close(websocket.StatusTryAgainLater, "over_capacity")
		uw.cork.wait()
		return
	}
	ws.SetReadLimit(s.cfg.ReadLimit)
	c.accepted(ws, uw)
	handedOff = true
	go s.serveConn(c, r.RemoteAddr)
}

// serveConn runs one accepted connection to its end. The server's handlers group owns it.
func (s *Server) serveConn(c *conn, remote string) {
	defer s.handlers.Done()
	m := s.d.Metrics
	m.ConnectionsAccepted.Inc()
	m.Connections.Inc()
	hc := s.d.Hub.Register(c)
	c.client = hc
	reason := s.readLoop(c)
	if r := hub.Reason(c.cutReason.Load()); r != hub.ReasonNone {
		reason = r // the cork dropped the socket under the reader: no close frame
	}
	switch reason {
	case hub.ReasonBinary, hub.ReasonReadLimit, hub.ReasonReadTimeout, hub.ReasonInvalidUTF8, hub.ReasonProtocol:
		hc.Kill(reason) // its close frame, then the linger
	}
	c.bg.Wait() // a rate-limit close has killed the client (rate_limit) once its replies went
	reason = hc.Finish(reason)
	c.cork.wait()    // the socket is closed: a drain of left-over control frames ends
	s.active.Add(-1) // before the gauge: once ws_connections drops, the slot is free
	m.Connections.Dec()
	m.Disconnects.WithLabelValues(reason.String()).Inc()
	if ce := s.d.Audit.Check(zap.DebugLevel, "disconnect"); ce != nil {
		ce.Write(zap.Uint64("conn", hc.ID()), zap.String("reason", reason.String()), zap.String("remote", remote))
	}
}

// readLoop reads client frames until the connection ends and returns why it ended. A frame
// whose header has arrived must deliver its payload within WS_WRITE_TIMEOUT (a read
// deadline from the header on), so a client cannot hold the connection by declaring a huge
// length and sending nothing. A text frame must be valid UTF-8 (coder/websocket does not
// check; the reasons of close frames are parsed inside coder/websocket and left to it).
// Once the rate limit ran dry (conn.rateLimit), frames are read and discarded until the
// rate-limit close ends the connection.
func (s *Server) readLoop(c *conn) hub.Reason {
	m := s.d.Metrics
	for {
		// Reader returns once a data frame's header is read; a control frame before it whose
		// payload stalls fails it with coder/websocket's 5 s deadline: read_timeout.
		typ, r, err := c.Reader(s.connCtx)
		if err != nil {
			if c.limited.Load() {
				return hub.ReasonRateLimit
			}
			return readErrReason(err)
		}
		c.setReadDeadline(time.Now().Add(s.cfg.WriteTimeout))
		data, err := io.ReadAll(r) // at most WS_READ_LIMIT bytes
		c.setReadDeadline(time.Time{})
		switch {
		case c.limited.Load() && err != nil:
			return hub.ReasonRateLimit
		case c.limited.Load():
			continue // not handled: the rate-limit close is under way
		case err != nil:
			return readErrReason(err) // past the payload deadline: read_timeout
		case typ != websocket.MessageText:
			return hub.ReasonBinary
		case !c.limiter.Allow():
			c.rateLimit()
			continue
		case !utf8.Valid(data):
			return hub.ReasonInvalidUTF8
		}
		req, perr := protocol.Parse(data)
		if perr != nil {
			m.ProtocolErrors.WithLabelValues(perr.Code).Inc()
			c.client.Reply(protocol.ErrorReply(req.ID, req.HasID, perr.Code, perr.Message))
			continue
		}
		c.client.Request(req)
	}
}

// refuse answers an upgrade with 503, Retry-After and Connection: close, counts it and audits
// it.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, reason string, retry time.Duration) {
	s.d.Metrics.ConnectionsRejected.WithLabelValues(reason).Inc()
	s.audit(r, reason, nil)
	secs := int(math.Ceil(retry.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	w.Header().Set("Connection", "close")
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
