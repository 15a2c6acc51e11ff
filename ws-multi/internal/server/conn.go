// This file is duplicated in ws-single (internal/server/conn.go) on purpose: the server layer is
// the same for one hub loop and for N shards; they may diverge.

package server

import (
	"context"
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"github.com/adred-codev/ws_poc/ws-multi/internal/auth"
	"github.com/adred-codev/ws_poc/ws-multi/internal/hub"
)

// conn is one WebSocket connection. Its reader goroutine is started by the HTTP
// handler that upgraded it (read.go); the hub goroutine that owns its client
// (ws-single's loop, or one of ws-multi's shards) writes to it (write.go), and
// starts a flusher goroutine only while its socket is full.
// Idle, it holds no goroutine but the reader: pings and write deadlines are
// runtime timers whose callbacks run only when they fire.
type conn struct {
	s       *Server
	ws      *websocket.Conn
	cork    *corkWriter // the socket under ws's write buffer
	client  *hub.Client
	limiter *rate.Limiter // client messages, WebSocket pings included; made before Accept
	auth    *connAuth     // nil with auth off (auth.go)
	remote  string        // the peer's address, for logs

	// reason is why the connection ends (a Reason; ReasonNone while open), the
	// first one set wins. Once it is set the connection is ending: the reader
	// discards what it reads and pings get no pong.
	reason atomic.Uint32

	// mu guards finished, lingering and the goroutines counted in bg: close
	// handshakes, the rate-limit close, ping and write-timeout callbacks. After
	// finish, none starts.
	mu        sync.Mutex
	finished  bool
	lingering bool // a close lingers: the socket's read deadline is the linger's
	bg        sync.WaitGroup

	pingTimer  *time.Timer
	writeTimer *time.Timer // used by the flusher goroutine only
}

// newConn returns a connection before its upgrade: the ping callback and the
// cork need it during Accept. attach completes it.
func newConn(s *Server, remote string) *conn {
	c := &conn{s: s, remote: remote, limiter: rate.NewLimiter(rate.Limit(s.cfg.RateLimit), s.cfg.RateBurst)}
	if s.verifier != nil {
		c.auth = &connAuth{}
	}
	c.client = hub.NewClient(c)
	return c
}

// attach sets the upgraded connection and its cork.
func (c *conn) attach(ws *websocket.Conn, cork *corkWriter) {
	c.ws, c.cork = ws, cork
}

// setReason records why the connection ends; it reports false when a reason
// was already set.
func (c *conn) setReason(r Reason) bool {
	return c.reason.CompareAndSwap(uint32(ReasonNone), uint32(r))
}

// why is the reason set, ReasonNone while none is.
func (c *conn) why() Reason { return Reason(c.reason.Load()) }

// ending reports whether a reason is set: the connection is being closed.
func (c *conn) ending() bool { return c.why() != ReasonNone }

// goBackground counts a background goroutine in bg unless the connection is
// finished; callers run the work only when it returns true, then call bg.Done.
func (c *conn) goBackground() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.finished {
		return false
	}
	c.bg.Add(1)
	return true
}

// closeWith ends the connection with reason's close frame (reason.go) in the
// background, as the hub and the drain must not wait for a peer; the reader
// sees the end.
func (c *conn) closeWith(reason Reason) {
	if !c.setReason(reason) || !c.goBackground() {
		return
	}
	go func() {
		defer c.bg.Done()
		c.sendClose(reason)
	}()
}

// drainWith is the drain's close: in the background, the client's positions and reconnect
// delay go out after everything queued for it (Hub.Drain, then Hub.Sync), then 1001
// "shutdown", all bounded by the shutdown timeout (after it the drain drops the socket).
func (c *conn) drainWith(after time.Duration) {
	if !c.setReason(ReasonShutdown) || !c.goBackground() {
		return
	}
	go func() {
		defer c.bg.Done()
		ctx, cancel := context.WithTimeout(c.s.base, c.s.cfg.ShutdownTimeout)
		if c.s.hub.Drain(ctx, c.client, after) == nil {
			_ = c.s.hub.Sync(ctx, c.client) // on timeout the close goes anyway
		}
		cancel()
		c.sendClose(ReasonShutdown)
	}()
}

// sendClose writes reason's close frame (reason.go) with coder/websocket's Close, which
// then reads and discards the client's frames until the client's close frame
// (the linger): a client still sending receives the code, not a reset from a
// socket closed on its unread data. Never CloseNow right after a frame. The
// linger is bounded by lingerTimeout.
func (c *conn) sendClose(reason Reason) {
	code, text, ok := reason.closeFrame()
	if !ok {
		c.dropSocket()
		return
	}
	c.linger()
	_ = c.ws.Close(code, text)
}

// linger bounds every read from now on by lingerTimeout: the raw socket's read
// deadline, which the reader no longer moves (payloadDeadline).
func (c *conn) linger() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lingering = true
	if c.cork.raw != nil {
		_ = c.cork.raw.SetReadDeadline(time.Now().Add(lingerTimeout))
	}
}

// forceClose drops the socket (the drain deadline passed). It closes the
// socket itself: coder/websocket's CloseNow only waits while a close
// handshake is under way, and that handshake is what we are cutting short.
// Must not block: the drain calls it under the live set's lock.
func (c *conn) forceClose() {
	c.setReason(ReasonShutdown)
	c.dropSocket()
}

// corkCut is the cork's cut: the cork dropped the socket because more than the
// client's queue bytes would wait in it (errCorkFull: slow) or its drain
// outlived the write timeout (write_timeout). It runs under the cork's lock.
func (c *conn) corkCut(err error) {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.setReason(ReasonWriteTimeout)
		return
	}
	c.setReason(ReasonSlow)
}

// serve runs the connection until it ends and returns the disconnect reason; g is the
// grant of a token from the handshake, nil if none.
func (c *conn) serve(ctx context.Context, g *auth.Grant) Reason {
	if err := c.s.hub.Register(ctx, c.client); err != nil {
		// The hub has stopped: 1011, and the cork's drain of the close frame is waited
		// for, as for a connection that ran.
		c.closeFromReader(ReasonError)
		c.cork.wait()
		return c.why()
	}
	if c.s.track(c) {
		// Tracked after the drain closed everyone: close this one too.
		c.closeWith(ReasonShutdown)
	}
	defer c.s.untrack(c)
	c.startPings()
	if err := c.startAuth(ctx, g); err != nil {
		c.closeFromReader(ReasonError)
	}

	c.setReason(c.read(ctx))

	c.mu.Lock()
	c.finished = true
	c.pingTimer.Stop()
	c.stopAuth()
	c.mu.Unlock()
	// Unblocks a writer stuck on the socket; a no-op wait if a close
	// handshake already finished.
	_ = c.ws.CloseNow()
	_ = c.s.hub.Unregister(ctx, c.client)
	c.client.Wait()
	c.bg.Wait()
	c.cork.wait() // the socket is closed: a drain of left-over control frames ends
	return c.why()
}

// dropSocket closes the socket under coder/websocket: every blocked read and
// write returns at once. (CloseNow would only wait while a close handshake is
// under way, and that handshake may be what is stuck.) It never blocks.
func (c *conn) dropSocket() {
	if c.cork.raw != nil {
		_ = c.cork.raw.Close()
		return
	}
	_ = c.ws.CloseNow()
}
