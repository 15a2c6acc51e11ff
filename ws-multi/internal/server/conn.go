package server

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"github.com/adred-codev/ws_poc/ws-multi/internal/hub"
)

// lingerTimeout bounds how long a close handshake reads and discards the client's frames
// while it waits for the client's close frame: coder/websocket bounds each of its reads by
// 5 s, and the read deadline set before Close bounds them all, the rest of a long frame's
// payload included.
const lingerTimeout = 5 * time.Second

// conn is one accepted WebSocket connection as the server sees it: the coder/websocket
// connection, the cork under its write buffer, the raw socket, its hub client, and the read
// side's rate limiter, which WebSocket pings share with requests. It implements hub.Conn.
type conn struct {
	*websocket.Conn
	cork    *corkWriter
	raw     net.Conn
	client  *hub.Client // set by serveConn before the first read
	limiter *rate.Limiter
	// limited is set once the bucket ran dry: no more requests are handled and no more
	// pongs sent, and the rate-limit close has started. Read by the reader and by
	// OnPingReceived, which coder/websocket calls while reading (on the reader goroutine,
	// or the close handshake's).
	limited atomic.Bool
	ctx     context.Context // the server's connCtx
	timeout time.Duration   // WS_WRITE_TIMEOUT: how long the rate-limit close waits for owed replies
	bg      sync.WaitGroup  // the rate-limit close; serveConn waits for it
	// cutReason is the hub.Reason of a cut by the cork (slow, write_timeout), ReasonNone
	// before: the cork dropped the socket, so the reader's read fails, and this is why.
	cutReason atomic.Uint32

	// lingering is set when the close handshake starts: the reader's read deadlines no
	// longer apply (mu orders them with the handshake's) and pings start nothing.
	mu        sync.Mutex
	lingering atomic.Bool
}

// newConn returns a connection's state before its upgrade; accepted fills in the rest.
func (s *Server) newConn() *conn {
	return &conn{
		limiter: rate.NewLimiter(rate.Limit(s.cfg.RateLimit), s.cfg.RateBurst),
		ctx:     s.connCtx,
		timeout: s.cfg.WriteTimeout,
	}
}

// accepted completes c once Accept hijacked the socket.
func (c *conn) accepted(ws *websocket.Conn, uw *upgradeWriter) {
	c.Conn, c.cork, c.raw = ws, uw.cork, uw.raw
}

// onPing is the connection's AcceptOptions.OnPingReceived: a client's ping frame takes a
// token like a request. A ping past the limit gets no pong and starts the rate-limit close.
func (c *conn) onPing(context.Context, []byte) bool {
	if c.limited.Load() || c.lingering.Load() {
		return false // a close is under way: no pong
	}
	if c.limiter.Allow() {
		return true
	}
	c.rateLimit()
	return false
}

// rateLimit starts, once, the close of a client whose rate limit ran dry: on its own
// goroutine it waits (at most WS_WRITE_TIMEOUT) until every reply owed to the client, every
// message queued for it before now, has been handed to its connection (Client.Sync), then
// closes with 1008 rate_limit (the reason is recorded at once). Meanwhile the reader goes on
// reading and discards what it reads: the close handshake needs the reader's reads, and a
// ping flood holds the reader inside coder/websocket, which only returns on a data frame.
func (c *conn) rateLimit() {
	if !c.limited.CompareAndSwap(false, true) {
		return
	}
	// The reason is decided now, before the wait: a flush that times out meanwhile
	// (write_timeout) may drop the socket, but the connection ends as rate_limit. A cut by
	// the cork that came first keeps its reason: the first reason decided wins.
	r := hub.ReasonRateLimit
	if cut := hub.Reason(c.cutReason.Load()); cut != hub.ReasonNone {
		r = cut
	}
	c.client.Decide(r)
	c.bg.Go(func() {
		ctx, cancel := context.WithTimeout(c.ctx, c.timeout)
		defer cancel()
		_ = c.client.Sync(ctx) // past the timeout the close goes anyway
		c.client.Kill(hub.ReasonRateLimit)
	})
}

// setReadDeadline sets the raw socket's read deadline for the reader (the zero time clears
// it), unless the close handshake set its own.
func (c *conn) setReadDeadline(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.lingering.Load() {
		_ = c.raw.SetReadDeadline(t)
	}
}

// Close implements hub.Conn: coder/websocket's Close writes the close frame, then reads and
// discards the client's frames until its close frame, so a client still sending receives
// the code instead of a reset; lingerTimeout bounds that.
func (c *conn) Close(code websocket.StatusCode, reason string) error {
	c.mu.Lock()
	c.lingering.Store(true)
	_ = c.raw.SetReadDeadline(time.Now().Add(lingerTimeout))
	c.mu.Unlock()
	return c.Conn.Close(code, reason)
}

// Cork implements hub.Conn.
func (c *conn) Cork() { c.cork.cork() }

// TryUncork implements hub.Conn.
func (c *conn) TryUncork() (bool, error) { return c.cork.tryUncork() }

// Uncork implements hub.Conn.
func (c *conn) Uncork(timeout time.Duration) error { return c.cork.uncork(timeout) }

// Buffered implements hub.Conn.
func (c *conn) Buffered() int { return c.cork.waiting() }

// cut is the cork's: it cut the client, because more than WS_SEND_QUEUE_BYTES of control
// frames waited for its socket (slow) or its socket took nothing for WS_WRITE_TIMEOUT
// (write_timeout). The cork dropped the socket; the reader's read fails and serveConn ends
// the connection with this reason, without a close frame. The first cut counts.
func (c *conn) cut(err error) {
	r := hub.ReasonWriteTimeout
	if errors.Is(err, errCorkFull) {
		r = hub.ReasonSlow
	}
	c.cutReason.CompareAndSwap(uint32(hub.ReasonNone), uint32(r))
}

// readErrReason is why a failed read ends the connection: read_limit for a frame over
// WS_READ_LIMIT; client when the peer left (its close frame, EOF, a reset, a closed
// socket); read_timeout for a payload that did not arrive in time: a data frame's past our
// payload deadline (os.ErrDeadlineExceeded), or a control frame's past coder/websocket's own
// 5 s read context inside Reader or Read (context.DeadlineExceeded; the library has closed
// the socket then); protocol for a framing error coder/websocket found (a bad opcode, an
// unmasked frame, a bad continuation, a fragmented or oversized control frame, bad rsv
// bits), which carries no I/O error.
func readErrReason(err error) hub.Reason {
	switch {
	case errors.Is(err, websocket.ErrMessageTooBig):
		return hub.ReasonReadLimit
	case websocket.CloseStatus(err) != -1:
		return hub.ReasonClient
	case timedOut(err):
		return hub.ReasonReadTimeout
	case ioError(err):
		return hub.ReasonClient
	default:
		return hub.ReasonProtocol
	}
}

func ioError(err error) bool {
	var ne net.Error
	var errno syscall.Errno
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) ||
		errors.Is(err, context.Canceled) || errors.As(err, &ne) || errors.As(err, &errno)
}

func timedOut(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded) || errors.Is(err, context.DeadlineExceeded)
}
