package hub

import (
	"github.com/coder/websocket"

	"github.com/adred-codev/ws_poc/ws-multi/internal/metrics"
)

// Reason is why a connection ended. Each maps to one ws_disconnects_total label and one way
// of closing the socket, so every disconnect path is counted and closed the same way.
type Reason uint8

// Disconnect reasons; their labels are metrics.DisconnectReasons (the README's list).
const (
	ReasonNone Reason = iota
	ReasonClient
	ReasonSlow
	ReasonWriteTimeout
	ReasonReadTimeout
	ReasonReadLimit
	ReasonRateLimit
	ReasonBinary
	ReasonInvalidUTF8
	ReasonProtocol
	ReasonPingTimeout
	ReasonShutdown
	ReasonError
)

var reasonLabels = [...]string{
	ReasonNone:         "none",
	ReasonClient:       metrics.DisconnectClient,
	ReasonSlow:         metrics.DisconnectSlow,
	ReasonWriteTimeout: metrics.DisconnectWriteTimeout,
	ReasonReadTimeout:  metrics.DisconnectReadTimeout,
	ReasonReadLimit:    metrics.DisconnectReadLimit,
	ReasonRateLimit:    metrics.DisconnectRateLimit,
	ReasonBinary:       metrics.DisconnectBinary,
	ReasonInvalidUTF8:  metrics.DisconnectInvalidUTF8,
	ReasonProtocol:     metrics.DisconnectProtocol,
	ReasonPingTimeout:  metrics.DisconnectPingTimeout,
	ReasonShutdown:     metrics.DisconnectShutdown,
	ReasonError:        metrics.DisconnectError,
}

// String returns the metric label of the reason.
func (r Reason) String() string {
	if int(r) < len(reasonLabels) {
		return reasonLabels[r]
	}
	return "unknown"
}

// closeFrame returns the close code and reason text of PROTOCOL.md for r; ok is false when
// no close frame can or need be sent (the socket is dead or the peer already closed it).
// Every close frame is sent with the connection's Close, which then reads and discards the
// client's frames until its close frame (at most 5 s): a client still sending receives the
// code instead of a reset.
func (r Reason) closeFrame() (code websocket.StatusCode, text string, ok bool) {
	switch r {
	case ReasonShutdown:
		return websocket.StatusGoingAway, "shutdown", true
	case ReasonSlow:
		return websocket.StatusPolicyViolation, "slow", true
	case ReasonRateLimit:
		return websocket.StatusPolicyViolation, "rate_limit", true
	case ReasonReadTimeout:
		return websocket.StatusPolicyViolation, "read_timeout", true
	case ReasonBinary:
		return websocket.StatusUnsupportedData, "binary", true
	case ReasonInvalidUTF8:
		return websocket.StatusInvalidFramePayloadData, "invalid_utf8", true
	case ReasonReadLimit:
		// The library already sent 1009 with its own text; Close finishes the handshake so
		// that frame is read before the socket goes away.
		return websocket.StatusMessageTooBig, "", true
	case ReasonProtocol:
		// The library sent 1002 itself for most framing errors (then this one is not
		// written); for the others (an unmasked frame, a negative length) this is the frame.
		return websocket.StatusProtocolError, "protocol", true
	case ReasonError:
		return websocket.StatusInternalError, "internal", true
	default:
		// client, write_timeout, ping_timeout: the peer is gone or its socket takes nothing.
		return 0, "", false
	}
}
