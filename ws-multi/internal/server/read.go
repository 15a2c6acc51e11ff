package server

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// read reads client frames until the connection ends and returns why it ended. A frame
// whose header has arrived must deliver its payload within WS_WRITE_TIMEOUT (a read deadline
// from the header on), so a client cannot hold the connection by declaring a huge length and
// sending nothing. A text frame must be valid UTF-8 (coder/websocket does not check; the
// reasons of close frames are parsed inside coder/websocket and left to it). Once the rate
// limit ran dry (rateLimit), frames are read and discarded until the rate-limit close ends
// the connection.
func (c *conn) read() Reason {
	s := c.s
	for {
		// Reader returns once a data frame's header is read; a control frame before it whose
		// payload stalls fails it with coder/websocket's 5 s deadline: read_timeout.
		typ, r, err := c.ws.Reader(s.connCtx)
		if err != nil {
			if c.limited.Load() {
				return ReasonRateLimit
			}
			return readErrReason(err)
		}
		c.setReadDeadline(time.Now().Add(s.cfg.WriteTimeout))
		data, err := io.ReadAll(r) // at most WS_READ_LIMIT bytes
		c.setReadDeadline(time.Time{})
		switch {
		case c.limited.Load() && err != nil:
			return ReasonRateLimit
		case c.limited.Load():
			continue // not handled: the rate-limit close is under way
		case err != nil:
			return readErrReason(err) // past the payload deadline: read_timeout
		case typ != websocket.MessageText:
			return ReasonBinary
		case !c.limiter.Allow():
			c.rateLimit()
			continue
		case !utf8.Valid(data):
			return ReasonInvalidUTF8
		}
		req, perr := protocol.Parse(data)
		if perr != nil {
			err = s.d.Hub.Reject(context.Background(), c.client, perr)
		} else {
			err = s.d.Hub.Handle(context.Background(), c.client, req)
		}
		if err != nil {
			return ReasonError // the hub stopped
		}
	}
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

// pingReceived is the connection's AcceptOptions.OnPingReceived: a client's ping frame
// takes a token like a request. A ping past the limit gets no pong and starts the
// rate-limit close; once a close is under way no pong goes out.
func (c *conn) pingReceived(context.Context, []byte) bool {
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
// message queued for it before now, has been handed to its connection (Hub.Sync), then
// closes with 1008 rate_limit (the reason is decided at once). Meanwhile the reader goes on
// reading and discards what it reads: the close handshake needs the reader's reads, and a
// ping flood holds the reader inside coder/websocket, which only returns on a data frame.
func (c *conn) rateLimit() {
	if !c.limited.CompareAndSwap(false, true) {
		return
	}
	// The reason is decided now, before the wait: a flush that times out meanwhile
	// (write_timeout) may drop the socket, but the connection ends as rate_limit. A cut by
	// the cork that came first keeps its reason: the first reason decided wins.
	r := ReasonRateLimit
	if cut := Reason(c.cutReason.Load()); cut != ReasonNone {
		r = cut
	}
	c.decide(r)
	c.limit.Go(func() {
		ctx, cancel := context.WithTimeout(c.s.connCtx, c.s.cfg.WriteTimeout)
		defer cancel()
		_ = c.s.d.Hub.Sync(ctx, c.client) // past the timeout the close goes anyway
		c.close(ReasonRateLimit)
	})
}

// readErrReason is why a failed read ends the connection: read_limit for a frame over
// WS_READ_LIMIT; client when the peer left (its close frame, EOF, a reset, a closed
// socket); read_timeout for a payload that did not arrive in time: a data frame's past our
// payload deadline (os.ErrDeadlineExceeded), or a control frame's past coder/websocket's own
// 5 s read context inside Reader or Read (context.DeadlineExceeded; the library has closed
// the socket then); protocol for a framing error coder/websocket found (a bad opcode, an
// unmasked frame, a bad continuation, a fragmented or oversized control frame, bad rsv
// bits), which carries no I/O error.
func readErrReason(err error) Reason {
	switch {
	case errors.Is(err, websocket.ErrMessageTooBig):
		return ReasonReadLimit
	case websocket.CloseStatus(err) != -1:
		return ReasonClient
	case timedOut(err):
		return ReasonReadTimeout
	case ioError(err):
		return ReasonClient
	default:
		return ReasonProtocol
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
