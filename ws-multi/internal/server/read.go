// This file is duplicated in ws-single (internal/server/read.go) on purpose: the server layer is
// the same for one hub loop and for N shards; they may diverge.

package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// errReadTimeout reports a client frame whose payload did not arrive within the
// write timeout of its header.
var errReadTimeout = errors.New("server: frame payload timed out")

// read is the reader loop: requests go to the hub, abuse closes the
// connection. It returns the reason the connection ended as seen from here.
func (c *conn) read(ctx context.Context) Reason {
	for {
		typ, data, err := c.readMessage()
		if err != nil {
			return c.readFailed(err)
		}
		if c.ending() {
			continue // a close is under way: read and discard until it ends
		}
		if typ == websocket.MessageBinary {
			return c.closeFromReader(ReasonBinary)
		}
		if !c.limiter.Allow() {
			c.rateLimited()
			continue
		}
		// Text frames must be UTF-8 (RFC 6455 §8.1); coder/websocket does not
		// check. The reason text of a close frame from the client is parsed
		// inside coder/websocket and not checked either: we never use it.
		if !utf8.Valid(data) {
			return c.closeFromReader(ReasonInvalidUTF8)
		}
		// perr stays a *protocol.Error: a nil one put in err (an error) would
		// not be nil.
		req, perr := protocol.Parse(data)
		if perr != nil {
			err = c.s.hub.Reject(ctx, c.client, perr)
		} else {
			err = c.request(ctx, req)
		}
		if err != nil {
			return c.closeFromReader(ReasonError)
		}
	}
}

// request hands a valid request to the hub: an auth request after verifying its token
// here, a subscribe once the connection's credentials cover it (auth.go).
func (c *conn) request(ctx context.Context, req protocol.Request) error {
	switch req.Op {
	case protocol.OpAuth:
		return c.authenticate(ctx, req)
	case protocol.OpSubscribe:
		if e := c.checkSubscribe(req); e != nil {
			return c.s.hub.Reject(ctx, c.client, e)
		}
	}
	return c.s.hub.Handle(ctx, c.client, req)
}

// readMessage reads one message. No deadline waits for a frame header: a
// connection may idle for as long as it answers pings, and whoever ends it
// (peer, ping, drain) closes the socket, which ends the read. Once a header is
// in (Reader returns), the payload, bounded by the read limit, must arrive
// within the write timeout: the raw socket's read deadline, cleared after it.
func (c *conn) readMessage() (websocket.MessageType, []byte, error) {
	typ, r, err := c.ws.Reader(context.Background())
	if err != nil {
		return 0, nil, err
	}
	c.payloadDeadline(time.Now().Add(c.s.cfg.WriteTimeout))
	data, err := io.ReadAll(r)
	c.payloadDeadline(time.Time{})
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		err = fmt.Errorf("%w: %w", errReadTimeout, err)
	}
	return typ, data, err
}

// payloadDeadline sets the raw socket's read deadline for a frame's payload,
// unless a close lingers: then the linger's deadline stays.
func (c *conn) payloadDeadline(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.lingering && c.cork.raw != nil {
		_ = c.cork.raw.SetReadDeadline(t)
	}
}

// readFailed ends the connection after a failed read and returns the reason.
// When a reason is already set, whoever set it closes.
func (c *conn) readFailed(err error) Reason {
	if r := c.why(); r != ReasonNone {
		return r
	}
	reason := readErrReason(err)
	if reason == ReasonClient {
		return reason
	}
	return c.closeFromReader(reason)
}

// closeFromReader ends the connection from the reader goroutine with reason's
// close frame, lingering (sendClose); it returns the reason in effect.
func (c *conn) closeFromReader(reason Reason) Reason {
	if c.setReason(reason) {
		c.sendClose(reason)
	}
	return c.why()
}

// readErrReason classifies a read error: the peer's close frame or a socket
// error is the client's doing; a payload past its deadline, read_timeout, and
// so is a control frame's payload that stalled (coder/websocket reads it under
// its own 5 s context and closes the connection when that expires: the error
// is context.DeadlineExceeded, or os.ErrDeadlineExceeded from the socket; the
// close frame then finds the socket closed); a frame past the read limit,
// read_limit (coder/websocket wrote 1009); anything
// else coder/websocket refused is a protocol error (bad opcode, unmasked frame,
// bad continuation, oversized or fragmented control frame, rsv bits, an
// invalid close payload), for most of which it wrote 1002 itself.
func readErrReason(err error) Reason {
	var (
		errno syscall.Errno
		opErr *net.OpError
	)
	switch {
	case errors.Is(err, errReadTimeout),
		errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return ReasonReadTimeout
	case errors.Is(err, websocket.ErrMessageTooBig):
		return ReasonReadLimit
	case websocket.CloseStatus(err) != -1,
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.As(err, &errno), errors.As(err, &opErr):
		return ReasonClient
	default:
		return ReasonProtocol
	}
}

// pingReceived is coder/websocket's OnPingReceived, on the reader goroutine
// inside Read: a client's ping costs a token like a request. Past the limit it
// gets no pong and starts the rate-limit close. Once the connection is ending
// no pong goes out (one written after the close frame would fail and cut the
// linger short). Pongs and close frames from the client cost nothing.
func (c *conn) pingReceived(context.Context, []byte) bool {
	if c.ending() {
		return false
	}
	if c.limiter.Allow() {
		return true
	}
	c.rateLimited()
	return false
}

// rateLimited starts the rate-limit close once the bucket is dry (closeAfterReplies).
// Pongs already sent were written before this, in order.
func (c *conn) rateLimited() {
	c.closeAfterReplies(ReasonRateLimit)
}

// closeAfterReplies ends the connection with reason's close frame after the replies it owes:
// from now on the reader discards what it reads; in the background, the replies to the
// requests already accepted are handed to the connection first (Hub.Sync, bounded by the
// write timeout), then the close frame goes out, lingering.
func (c *conn) closeAfterReplies(reason Reason) {
	if !c.setReason(reason) || !c.goBackground() {
		return
	}
	go func() {
		defer c.bg.Done()
		ctx, cancel := context.WithTimeout(c.s.base, c.s.cfg.WriteTimeout)
		_ = c.s.hub.Sync(ctx, c.client) // on timeout the close goes anyway
		cancel()
		c.sendClose(reason)
	}()
}
