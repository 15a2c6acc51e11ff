package server

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"
)

// handleWS admits and upgrades a client, then hands the connection to a fresh goroutine and
// returns: net/http's goroutine, with the stack it grew parsing the request, ends, and the
// connection lives on a small stack of its own. That goroutine is the connection's only one
// while it has nothing to send. Every answer but 101 closes the socket (Connection: close).
func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		s.refuse(w, r, RejectDraining, drainRetryAfter)
		return
	}
	if ok, retry := s.d.Admission.Allow(); !ok {
		s.refuse(w, r, RejectCPU, retry)
		return
	}
	if !s.enter() {
		s.refuse(w, r, RejectDraining, drainRetryAfter)
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
		OnPingReceived:  c.pingReceived,
	})
	if err != nil {
		s.active.Add(-1)
		if uw.status == http.StatusForbidden {
			s.d.Metrics.ConnectionsRejected.WithLabelValues(RejectOrigin).Inc()
			s.logRefusal(r, RejectOrigin, err)
		}
		return // Accept answered (403, 426, ...)
	}
	if overCapacity {
		s.active.Add(-1)
		s.d.Metrics.ConnectionsRejected.WithLabelValues(RejectMaxConnections).Inc()
		s.logRefusal(r, RejectMaxConnections, nil)
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
	start := time.Now()
	reason := c.serve()
	s.active.Add(-1) // before the gauge: once ws_connections drops, the slot is free
	m.Connections.Dec()
	m.Disconnects.WithLabelValues(reason.String()).Inc()
	if ce := s.connLog.Check(zap.DebugLevel, "connection closed"); ce != nil {
		ce.Write(zap.String("reason", reason.String()), zap.String("remote", remote), zap.Duration("duration", time.Since(start)))
	}
}

// refuse answers an upgrade with 503, Retry-After and Connection: close, counts it and audits
// it.
func (s *Server) refuse(w http.ResponseWriter, r *http.Request, reason string, retry time.Duration) {
	s.d.Metrics.ConnectionsRejected.WithLabelValues(reason).Inc()
	s.logRefusal(r, reason, nil)
	secs := int(math.Ceil(retry.Seconds()))
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	w.Header().Set("Connection", "close")
	http.Error(w, "service unavailable: "+reason, http.StatusServiceUnavailable)
}

// logRefusal writes one entry per refused upgrade; the logger is sampled, so a rejection storm
// cannot flood the logs.
func (s *Server) logRefusal(r *http.Request, reason string, err error) {
	if ce := s.audit.Check(zap.InfoLevel, "upgrade refused"); ce != nil {
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

// The upgradeWriter below is the same as ws-single's (its internal/server/upgrade.go): both
// variants must spend the same memory per idle connection.

// Socket buffer sizes of an upgraded connection. net/http hands over a hijacked connection
// with 4 KiB read and write buffers, which coder/websocket keeps for the connection's life:
// 8 KiB of every idle connection. Client frames are small and rare, so a 512-byte read buffer
// costs nothing; a 1 KiB write buffer still carries a typical message and its header in one
// syscall, and bufio writes larger payloads straight through.
const (
	connReadBuffer  = 512
	connWriteBuffer = 1024
)

// upgradeWriter remembers the status Accept answered with, so a 403 for a bad Origin can be
// counted, closes the connection after any other answer than 101, and hijacks with small
// buffers.
type upgradeWriter struct {
	http.ResponseWriter
	status int
	corks  *sync.Pool // cork buffers shared by every connection
	// timeout bounds every socket write (WS_WRITE_TIMEOUT; see corkWriter).
	timeout time.Duration
	// limit bounds the bytes of control frames waiting for the socket (WS_SEND_QUEUE_BYTES).
	limit int
	cut   func(error) // told when the cork cuts the client (see corkWriter)
	cork  *corkWriter // set by Hijack: the socket under coder/websocket's write buffer
	raw   net.Conn    // set by Hijack: the socket
}

// WriteHeader implements http.ResponseWriter. A refused upgrade (403, 426, ...) carries
// Connection: close, so net/http closes the socket after the answer instead of keeping it
// for another request.
func (w *upgradeWriter) WriteHeader(code int) {
	w.status = code
	if code != http.StatusSwitchingProtocols {
		w.Header().Set("Connection", "close")
	}
	w.ResponseWriter.WriteHeader(code)
}

// Hijack implements http.Hijacker, which coder/websocket looks for.
func (w *upgradeWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	// Bytes the client sent right behind its handshake may already sit in net/http's read
	// buffer; they must stay buffered in ours, since coder/websocket only keeps what is
	// buffered when it re-points the reader at the raw connection.
	br := bufio.NewReaderSize(conn, connReadBuffer)
	if n := brw.Reader.Buffered(); n > 0 {
		ahead, _ := brw.Reader.Peek(n)
		br = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(ahead)), conn), max(n, connReadBuffer))
		if _, err := br.Peek(n); err != nil {
			conn.Close()
			return nil, nil, fmt.Errorf("server: keep read-ahead bytes: %w", err)
		}
	}
	w.cork = newCorkWriter(conn, w.corks, w.timeout, w.limit, w.cut)
	w.raw = conn
	return conn, bufio.NewReadWriter(br, bufio.NewWriterSize(w.cork, connWriteBuffer)), nil
}
