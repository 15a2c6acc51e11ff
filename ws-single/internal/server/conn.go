package server

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"

	"github.com/adred-codev/ws_poc/ws-single/internal/hub"
	"github.com/adred-codev/ws_poc/ws-single/internal/metrics"
	"github.com/adred-codev/ws_poc/ws-single/internal/protocol"
)

// errWriteTimeout reports a socket write that outlived WS_WRITE_TIMEOUT.
var errWriteTimeout = errors.New("server: write timed out")

// conn is one WebSocket connection. Its reader goroutine is the HTTP handler
// that upgraded it; the hub loop writes to it, and starts a flusher goroutine
// only while its socket is full.
// Idle, it holds no goroutine but the reader: pings and write deadlines are
// runtime timers whose callbacks run only when they fire.
type conn struct {
	s       *Server
	ws      *websocket.Conn
	cork    *corkWriter // the socket under ws's write buffer
	client  *hub.Client
	limiter *rate.Limiter

	// reason is why the connection ends, the first one set wins; it is the
	// ws_disconnects_total label.
	reason atomic.Pointer[string]

	// mu guards finished and the goroutines counted in bg: close handshakes,
	// ping and write-timeout callbacks. After finish, none starts.
	mu       sync.Mutex
	finished bool
	bg       sync.WaitGroup

	pingTimer  *time.Timer
	writeTimer *time.Timer // used by the flusher goroutine only
	owed       written     // the write being flushed; hub loop, then flusher (hub.Conn)
}

func newConn(s *Server, ws *websocket.Conn, cork *corkWriter) *conn {
	c := &conn{
		s:       s,
		ws:      ws,
		cork:    cork,
		limiter: rate.NewLimiter(rate.Limit(s.cfg.RateLimit), s.cfg.RateBurst),
	}
	c.client = hub.NewClient(c)
	return c
}

// setReason records why the connection ends; it reports false when a reason
// was already set.
func (c *conn) setReason(reason string) bool {
	return c.reason.CompareAndSwap(nil, &reason)
}

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

// closeWith starts the close handshake (code, text) in the background, as the
// hub and the drain must not wait for a peer; the reader sees the end.
func (c *conn) closeWith(code websocket.StatusCode, reason string) {
	if !c.setReason(reason) || !c.goBackground() {
		return
	}
	go func() {
		defer c.bg.Done()
		// Close waits for the peer's close frame, bounded by the library (5s + 5s).
		_ = c.ws.Close(code, reason)
	}()
}

// forceClose drops the socket (the drain deadline passed). It closes the
// socket itself: coder/websocket's CloseNow only waits while a close
// handshake is under way, and that handshake is what we are cutting short.
// Must not block: it runs in the hub loop.
func (c *conn) forceClose() {
	c.setReason(metrics.DisconnectShutdown)
	if c.cork.raw != nil {
		_ = c.cork.raw.Close()
	}
}

// Overflow implements hub.Conn: the send queue passed a limit.
func (c *conn) Overflow() { c.closeWith(websocket.StatusPolicyViolation, metrics.DisconnectSlow) }

// serve runs the connection until it ends and returns the disconnect reason.
func (c *conn) serve(ctx context.Context) string {
	if err := c.s.hub.Register(ctx, c.client); err != nil {
		c.setReason(metrics.DisconnectError)
		_ = c.ws.Close(websocket.StatusInternalError, "internal")
		return *c.reason.Load()
	}
	if c.s.draining.Load() {
		// Registered after the drain closed everyone: close this one too.
		c.closeWith(websocket.StatusGoingAway, metrics.DisconnectShutdown)
	}
	c.mu.Lock() // the callback reads pingTimer under mu
	c.pingTimer = time.AfterFunc(c.s.cfg.PingInterval, c.ping)
	c.mu.Unlock()

	readReason := c.read(ctx)
	c.setReason(readReason)

	c.mu.Lock()
	c.finished = true
	c.pingTimer.Stop()
	c.mu.Unlock()
	// Unblocks a writer stuck on the socket; a no-op wait if a close
	// handshake already finished.
	_ = c.ws.CloseNow()
	_ = c.s.hub.Unregister(ctx, c.client)
	c.client.Wait()
	c.bg.Wait()
	c.cork.wait() // the socket is closed: a drain of left-over control frames ends
	return *c.reason.Load()
}

// read is the reader loop: requests go to the hub, abuse closes the
// connection. It returns the reason the connection ended as seen from here.
func (c *conn) read(ctx context.Context) string {
	for {
		// No deadline: a connection may idle for as long as it answers pings;
		// whoever ends it (peer, ping, drain) closes the socket, which ends Read.
		typ, data, err := c.ws.Read(context.Background())
		if err != nil {
			return readErrReason(err)
		}
		if typ == websocket.MessageBinary {
			c.setReason(metrics.DisconnectBinary)
			_ = c.ws.Close(websocket.StatusUnsupportedData, metrics.DisconnectBinary)
			return metrics.DisconnectBinary
		}
		if !c.limiter.Allow() {
			c.setReason(metrics.DisconnectRateLimit)
			_ = c.ws.Close(websocket.StatusPolicyViolation, metrics.DisconnectRateLimit)
			return metrics.DisconnectRateLimit
		}
		req, err := protocol.Parse(data)
		if err != nil {
			var pe *protocol.Error
			errors.As(err, &pe) // Parse returns only *protocol.Error
			err = c.s.hub.Reject(ctx, c.client, pe)
		} else {
			err = c.s.hub.Handle(ctx, c.client, req)
		}
		if err != nil {
			c.setReason(metrics.DisconnectError)
			_ = c.ws.Close(websocket.StatusInternalError, "internal")
			return metrics.DisconnectError
		}
	}
}

func readErrReason(err error) string {
	switch {
	case errors.Is(err, websocket.ErrMessageTooBig):
		return metrics.DisconnectReadLimit
	case websocket.CloseStatus(err) != -1,
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, net.ErrClosed), errors.Is(err, syscall.ECONNRESET):
		return metrics.DisconnectClient
	default:
		return metrics.DisconnectError
	}
}

// ping runs when the ping timer fires: ping, wait for the pong within the
// write timeout, re-arm.
func (c *conn) ping() {
	if !c.goBackground() {
		return
	}
	defer c.bg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), c.s.cfg.WriteTimeout)
	err := c.ws.Ping(ctx)
	cancel()
	if err != nil {
		if !errors.Is(err, net.ErrClosed) && c.setReason(metrics.DisconnectPingTimeout) {
			c.dropSocket()
		}
		return
	}
	c.mu.Lock()
	if !c.finished {
		c.pingTimer.Reset(c.s.cfg.PingInterval)
	}
	c.mu.Unlock()
}

// writeStalled runs when a socket write outlives the write timeout: the
// connection is dropped, which makes the stalled write return.
func (c *conn) writeStalled() {
	if !c.goBackground() {
		return
	}
	defer c.bg.Done()
	c.setReason(metrics.DisconnectWriteTimeout)
	c.dropSocket()
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

// written is what one hub write put in the cork, counted once it is out.
type written struct {
	lines, frames, bytes int
	first                time.Time // the oldest record's timestamp; zero if none
}

// Write implements hub.Conn; it runs in the hub loop and never waits for the
// socket. With batching, consecutive messages share a frame up to
// WS_BATCH_MAX_BYTES. The socket is corked meanwhile: the frames only land in
// memory and are offered to the socket in one non-blocking syscall, so they
// need no per-frame timer. What the socket does not take waits for Flush.
func (c *conn) Write(msgs []*hub.Message) (bool, error) {
	var (
		err error
		w   written
	)
	c.cork.cork()
	for w.lines < len(msgs) {
		n := 1
		if c.s.cfg.Batch {
			n = frameSpan(msgs[w.lines:], c.s.cfg.BatchMaxBytes)
		}
		if n == 1 {
			err = c.writeFrame(msgs[w.lines].Wire)
			w.bytes += len(msgs[w.lines].Wire)
		} else {
			bp := c.s.frames.Get().(*[]byte)
			*bp = appendFrame((*bp)[:0], msgs[w.lines:w.lines+n])
			err = c.writeFrame(*bp)
			w.bytes += len(*bp)
			c.s.frames.Put(bp)
		}
		if err != nil {
			break
		}
		w.lines += n
		w.frames++
	}
	done, uerr := c.cork.tryUncork()
	if err == nil {
		err = uerr
	}
	if err != nil {
		return false, err
	}
	// Once per write, for its oldest record: per message would cost more than
	// the write on a big fan-out, and the oldest is the worst case.
	for _, msg := range msgs {
		if !msg.Time.IsZero() {
			w.first = msg.Time
			break
		}
	}
	if !done {
		c.owed = w
		return false, nil
	}
	c.count(w)
	return true, nil
}

// Flush implements hub.Conn; it runs on the client's flusher goroutine and
// writes what Write left over, under the write timeout: a reusable timer (a
// deadline context would allocate on every flush) that drops the socket when
// it fires, which ends the write.
func (c *conn) Flush() error {
	if c.writeTimer == nil {
		c.writeTimer = time.AfterFunc(c.s.cfg.WriteTimeout, c.writeStalled)
	} else {
		c.writeTimer.Reset(c.s.cfg.WriteTimeout)
	}
	err := c.cork.uncork(0)
	if !c.writeTimer.Stop() {
		return errWriteTimeout
	}
	if err != nil {
		return err
	}
	c.count(c.owed)
	c.owed = written{}
	return nil
}

// count adds a write that is out in full to the metrics; nothing of a write
// counts before the socket took all of it.
func (c *conn) count(w written) {
	m := c.s.m
	m.MessagesDelivered.Add(float64(w.lines))
	m.FramesWritten.Add(float64(w.frames))
	m.BytesWritten.Add(float64(w.bytes))
	if !w.first.IsZero() {
		m.DeliveryLatency.Observe(time.Since(w.first).Seconds())
	}
}

func (c *conn) writeFrame(p []byte) error {
	// Corked, this only copies: the connection's lifetime bounds it (any close
	// makes it return).
	return c.ws.Write(context.Background(), websocket.MessageText, p)
}
