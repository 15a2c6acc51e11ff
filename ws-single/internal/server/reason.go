package server

import (
	"time"

	"github.com/coder/websocket"

	"github.com/adred-codev/ws_poc/ws-single/internal/metrics"
)

// lingerTimeout bounds a server-initiated close: after its close frame the connection reads
// and discards the client's frames until the client's close frame, for at most this long
// (coder/websocket's own bound; the raw socket's read deadline enforces it even inside a frame
// the library discards byte by byte).
const lingerTimeout = 5 * time.Second

// closeFrame is the disconnect table of docs/PROTOCOL.md: for a ws_disconnects_total reason,
// the close frame the server ends the connection with, and false when it sends none (the
// client closed or vanished; the socket is dropped because nothing can be written to it).
//
//	client        -> none
//	slow          -> 1008 "slow" (or the socket dropped when it cannot be written: the cork)
//	write_timeout -> none, socket dropped
//	read_timeout  -> 1008 "read_timeout"
//	read_limit    -> 1009, the library's text (it wrote the frame; Close only lingers)
//	rate_limit    -> 1008 "rate_limit"
//	binary        -> 1003 "binary"
//	invalid_utf8  -> 1007 "invalid_utf8"
//	protocol      -> 1002 "protocol" (the library wrote 1002 with its text for most framing
//	                 errors; then Close only lingers)
//	ping_timeout  -> none
//	shutdown      -> 1001 "shutdown"
//	error         -> 1011 "internal"
func closeFrame(reason string) (code websocket.StatusCode, text string, ok bool) {
	switch reason {
	case metrics.DisconnectSlow:
		return websocket.StatusPolicyViolation, "slow", true
	case metrics.DisconnectReadTimeout:
		return websocket.StatusPolicyViolation, "read_timeout", true
	case metrics.DisconnectReadLimit:
		return websocket.StatusMessageTooBig, "read_limit", true
	case metrics.DisconnectRateLimit:
		return websocket.StatusPolicyViolation, "rate_limit", true
	case metrics.DisconnectBinary:
		return websocket.StatusUnsupportedData, "binary", true
	case metrics.DisconnectInvalidUTF8:
		return websocket.StatusInvalidFramePayloadData, "invalid_utf8", true
	case metrics.DisconnectProtocol:
		return websocket.StatusProtocolError, "protocol", true
	case metrics.DisconnectShutdown:
		return websocket.StatusGoingAway, "shutdown", true
	case metrics.DisconnectError:
		return websocket.StatusInternalError, "internal", true
	default: // client, write_timeout, ping_timeout
		return 0, "", false
	}
}
