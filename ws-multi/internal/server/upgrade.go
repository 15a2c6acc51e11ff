// This file is duplicated in ws-single (internal/server/upgrade.go) on purpose: the server layer is
// the same for one hub loop and for N shards; they may diverge.

package server

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/zap"

	"github.com/adred-codev/ws_poc/ws-multi/internal/auth"
)

// drainRetryAfter is the Retry-After of an upgrade refused while draining:
// the client should reconnect, to another instance, soon.
const drainRetryAfter = time.Second

// Socket buffer sizes of an upgraded connection. net/http hands a hijacked
// connection 4 KiB read and write buffers, which coder/websocket keeps for the
// connection's life: 8 KiB of every idle connection's ~20 KiB budget. Client
// frames are small and rare, so a small read buffer costs nothing; a 1 KiB
// write buffer still carries a typical message with its header in one
// syscall, and frames above it take two either way (bufio writes large
// payloads straight through).
const (
	connReadBuffer  = 512
	connWriteBuffer = 1024
)

// upgradeWriter wraps the ResponseWriter for websocket.Accept: it remembers
// the status Accept answers with (to count 403s), closes the connection after
// a refusal, and hijacks with smaller buffers and the connection's cork.
type upgradeWriter struct {
	http.ResponseWriter
	corks   *sync.Pool
	timeout time.Duration // the cork's drain deadline (WS_WRITE_TIMEOUT)
	limit   int           // the cork's byte bound (WS_SEND_QUEUE_BYTES)
	cut     func(error)   // the cork's cut (conn.corkCut)
	cork    *corkWriter   // set by Hijack
	status  int
}

// WriteHeader implements http.ResponseWriter, remembering the status. Every
// answer but 101 (403, 426, 400, ...) carries Connection: close, so net/http
// releases the socket right after it.
func (w *upgradeWriter) WriteHeader(code int) {
	w.status = code
	if code != http.StatusSwitchingProtocols {
		w.Header().Set("Connection", "close")
	}
	w.ResponseWriter.WriteHeader(code)
}

// Hijack implements http.Hijacker, which coder/websocket looks for first.
func (w *upgradeWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	// The 101 response is already flushed. Bytes the client sent right after
	// its handshake may sit in net/http's read buffer: they must be in ours,
	// buffered, because coder/websocket re-points the reader at the raw
	// connection and keeps only what is buffered.
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
	return conn, bufio.NewReadWriter(br, bufio.NewWriterSize(w.cork, connWriteBuffer)), nil
}

func (s *Server) reject(r *http.Request, reason string, fields ...zap.Field) {
	s.m.ConnectionsRejected.WithLabelValues(reason).Inc()
	s.audit.Info("upgrade rejected", append(fields,
		zap.String("reason", reason),
		zap.String("remote", r.RemoteAddr),
		zap.String("origin", r.Header.Get("Origin")),
		zap.String("user_agent", r.UserAgent()))...)
}

// unavailable answers 503 with Retry-After in whole seconds (at least 1) and
// Connection: close.
func unavailable(w http.ResponseWriter, retryAfter time.Duration, msg string) {
	secs := int((retryAfter + time.Second - 1) / time.Second)
	w.Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
	w.Header().Set("Connection", "close")
	http.Error(w, msg, http.StatusServiceUnavailable)
}

// handleWS admits and upgrades one WebSocket connection and starts its reader
// goroutine. The handler returns right away so that net/http's goroutine, its
// grown stack and the request's objects are freed; the reader starts on a
// fresh small stack.
func (s *Server) handleWS(w http.ResponseWriter, r *http.Request) {
	if s.draining.Load() {
		s.reject(r, RejectDraining)
		unavailable(w, drainRetryAfter, "draining")
		return
	}
	if ok, retry := s.d.Admission.Allow(); !ok {
		s.reject(r, RejectCPU, zap.Duration("retry_after", retry))
		unavailable(w, retry, "cpu over threshold")
		return
	}
	grant, ok := s.handshakeToken(w, r)
	if !ok {
		return // answered 400 or 401
	}
	if !s.enter() {
		s.reject(r, RejectDraining)
		unavailable(w, drainRetryAfter, "draining")
		return
	}
	// The slot is taken before the 101 goes out, so a client that has its
	// upgrade answered holds its slot before the next client can take it.
	over := s.active.Add(1) > s.maxConns
	// The connection exists before Accept: its ping callback (the rate limit)
	// and its cork's cut are set up by Accept.
	c := newConn(s, r.RemoteAddr)
	uw := &upgradeWriter{ResponseWriter: w, corks: &s.corks,
		timeout: s.cfg.WriteTimeout, limit: s.cfg.SendQueueBytes, cut: c.corkCut}
	opts := *s.accept
	opts.OnPingReceived = c.pingReceived
	ws, err := websocket.Accept(uw, r, &opts)
	if err != nil {
		s.active.Add(-1)
		s.leave()
		if uw.status == http.StatusForbidden {
			s.reject(r, RejectOrigin)
		}
		return // Accept has answered (403, 426, ...)
	}
	ws.SetReadLimit(s.cfg.ReadLimit)
	if over {
		s.active.Add(-1)
		s.reject(r, RejectMaxConnections, zap.Int64("max_connections", s.maxConns))
		go func() {
			defer s.leave()
			// c is never attached (no ws, no cork): it must start nothing. Its
			// reason set, a ping that Close reads meanwhile gets no pong and
			// no rate-limit close (pingReceived). The reason is never counted
			// (the refusal is, as max_connections) and sends nothing: the 1013
			// below is this close's frame.
			c.setReason(ReasonShutdown)
			// The 1013 frame goes out and the socket closes at once: with the
			// read deadline passed, Close's wait for the client's close frame
			// fails right away (the one close that does not linger).
			_ = uw.cork.raw.SetReadDeadline(time.Now())
			_ = ws.Close(websocket.StatusTryAgainLater, "over_capacity")
			uw.cork.wait() // a background drain of the close frame ends (write timeout)
		}()
		return
	}
	c.attach(ws, uw.cork)
	// Owned by the server: counted by enter/leave, which the drain waits for.
	go s.serveConn(c, grant)
}

// serveConn runs one accepted connection to its end; g is the grant of a token from the
// handshake, nil if none.
func (s *Server) serveConn(c *conn, g *auth.Grant) {
	defer s.leave()
	s.m.ConnectionsAccepted.Inc()
	s.m.Connections.Inc()

	start := time.Now()
	reason := c.serve(s.base, g)
	s.active.Add(-1) // before the gauge: once ws_connections drops, the slot is free
	s.m.Connections.Dec()
	s.m.Disconnects.WithLabelValues(reason.String()).Inc()
	s.connLog.Debug("connection closed", zap.Stringer("reason", reason),
		zap.String("remote", c.remote), zap.Duration("duration", time.Since(start)))
}
