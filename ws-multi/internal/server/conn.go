package server

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"github.com/adred-codev/ws_poc/ws-multi/internal/hub"
)

// conn is one accepted WebSocket connection as the server sees it: the coder/websocket
// connection, the cork under its write buffer, the raw socket, its hub client and the read
// side's rate limiter, which WebSocket pings share with requests. Its reader goroutine
// (read.go) is started by the upgrade and owns it; the client's shard writes to it
// (write.go, hub.Conn) and starts a flusher goroutine only while its socket is full. Idle, it
// holds no goroutine but the reader: its pings are a runtime timer (ping.go).
type conn struct {
	s       *Server
	ws      *websocket.Conn
	cork    *corkWriter
	raw     net.Conn
	client  *hub.Client
	limiter *rate.Limiter
	// limited is set once the bucket ran dry: no more requests are handled and no more
	// pongs sent, and the rate-limit close has started. Read by the reader and by
	// OnPingReceived, which coder/websocket calls while reading (on the reader goroutine,
	// or the close handshake's).
	limited atomic.Bool
	limit   sync.WaitGroup // the rate-limit close; serve waits for it
	// cutReason is the Reason of a cut by the cork (slow, write_timeout), ReasonNone before:
	// the cork dropped the socket, so the reader's read fails, and this is why.
	cutReason atomic.Uint32
	// lingering is set when the close handshake starts: the reader's read deadlines no
	// longer apply (mu orders them with the handshake's) and pings start nothing.
	lingering atomic.Bool

	// mu guards the lifecycle below; it is never taken per message.
	mu     sync.Mutex
	closed bool   // a close started (or serve is finishing): no more closes or pings start
	reason Reason // why the connection ends; set once, by decide or with closed
	// bg counts the close and ping goroutines, added under mu while !closed; serve waits
	// for them once it closed the connection.
	bg        sync.WaitGroup
	pingTimer *time.Timer // ping.go
}

// newConn returns a connection's state before its upgrade: its ping callback and its
// cork's cut are set up by Accept. accepted fills in the rest.
func (s *Server) newConn() *conn {
	c := &conn{s: s, limiter: rate.NewLimiter(rate.Limit(s.cfg.RateLimit), s.cfg.RateBurst)}
	c.client = hub.NewClient(c)
	return c
}

// accepted completes c once Accept hijacked the socket.
func (c *conn) accepted(ws *websocket.Conn, uw *upgradeWriter) {
	c.ws, c.cork, c.raw = ws, uw.cork, uw.raw
}

// decide records reason as why the connection ends, unless a reason was recorded already,
// and closes nothing: the reader decides rate_limit when the bucket runs dry, then waits
// (Hub.Sync) before it closes. A close meanwhile (write_timeout from a flusher, slow) still
// closes the socket its own way but does not change the reason: the first reason wins. It
// reports whether reason is the one recorded. Safe from any goroutine.
func (c *conn) decide(reason Reason) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.reason == ReasonNone {
		c.reason = reason
	}
	return c.reason == reason
}

// close ends the connection for reason: the socket is closed with the reason's close frame
// (reason.go) on a goroutine of its own, since a close handshake can take seconds and the
// shard or the drain must not wait for a peer. Only the first reason counts (one recorded
// by decide included); later calls do nothing. Safe from any goroutine.
func (c *conn) close(reason Reason) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	if c.reason == ReasonNone {
		c.reason = reason
	}
	c.bg.Add(1)
	c.mu.Unlock()
	go c.sendClose(reason)
}

func (c *conn) sendClose(reason Reason) {
	defer c.bg.Done()
	if code, text, ok := reason.closeFrame(); ok {
		// Close returns once the peer answers or after the linger; the reader goroutine
		// keeps reading meanwhile, which is what completes the handshake.
		_ = c.linger(code, text)
		return
	}
	_ = c.ws.CloseNow()
}

// linger is every close frame's close: coder/websocket's Close writes the close frame, then
// reads and discards the client's frames until its close frame, so a client still sending
// receives the code instead of a reset; lingerTimeout bounds that (the raw socket's read
// deadline, which the reader no longer moves).
func (c *conn) linger(code websocket.StatusCode, text string) error {
	c.mu.Lock()
	c.lingering.Store(true)
	_ = c.raw.SetReadDeadline(time.Now().Add(lingerTimeout))
	c.mu.Unlock()
	return c.ws.Close(code, text)
}

// cut is the cork's: it cut the client, because more than WS_SEND_QUEUE_BYTES of control
// frames waited for its socket (slow) or its socket took nothing for WS_WRITE_TIMEOUT
// (write_timeout). The cork dropped the socket; the reader's read fails and serve ends the
// connection with this reason, without a close frame. The first cut counts.
func (c *conn) cut(err error) {
	r := ReasonWriteTimeout
	if errors.Is(err, errCorkFull) {
		r = ReasonSlow
	}
	c.cutReason.CompareAndSwap(uint32(ReasonNone), uint32(r))
}

// serve runs the connection, registered with the hub and in the server's live set, until it
// ends, and returns the reason that won.
func (c *conn) serve() Reason {
	s := c.s
	if err := s.d.Hub.Register(context.Background(), c.client); err != nil {
		c.close(ReasonError) // the hub stopped: 1011, and the close handshake reads by itself
		c.bg.Wait()
		c.cork.wait()
		return ReasonError
	}
	if !s.track(c) {
		c.close(ReasonShutdown) // registered after the drain closed everyone
	}
	c.startPings()
	reason := c.read()
	if r := Reason(c.cutReason.Load()); r != ReasonNone {
		reason = r // the cork dropped the socket under the reader: no close frame
	}
	switch reason {
	case ReasonBinary, ReasonReadLimit, ReasonReadTimeout, ReasonInvalidUTF8, ReasonProtocol:
		c.close(reason) // its close frame, then the linger
	}
	c.limit.Wait() // a rate-limit close has closed the connection (rate_limit) once its replies went
	reason = c.finish(reason)
	s.untrack(c)
	c.cork.wait() // the socket is closed: a drain of left-over control frames ends
	return reason
}

// finish ends the connection after its read loop stopped: readReason is why the read loop
// ended and counts only if nothing else ended the connection, or decided its reason, first.
// It takes the client out of the hub and waits for the client's flusher and the
// connection's pings and close handshake.
func (c *conn) finish(readReason Reason) Reason {
	c.mu.Lock()
	c.stopPing()
	if !c.closed {
		c.closed = true
		if c.reason == ReasonNone {
			c.reason = readReason
		}
		c.mu.Unlock()
		// Nobody closed the socket yet: the peer went away or the read failed.
		_ = c.ws.CloseNow()
	} else {
		c.mu.Unlock()
	}
	// Unregister first: the shard starts no flusher afterwards, so the wait cannot miss
	// one, and a waiting flusher ends because the close closed the socket under it.
	_ = c.s.d.Hub.Unregister(context.Background(), c.client)
	c.client.Wait()
	c.bg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.reason
}
