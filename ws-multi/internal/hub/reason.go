package hub

import "github.com/coder/websocket"

// Reason is why a connection ended. Each maps to one ws_disconnects_total label and one way
// of closing the socket, so every disconnect path is counted and closed the same way.
type Reason uint8

// Disconnect reasons; the names are the README's ws_disconnects_total labels.
const (
	ReasonNone Reason = iota
	ReasonClient
	ReasonSlow
	ReasonWriteTimeout
	ReasonReadLimit
	ReasonRateLimit
	ReasonBinary
	ReasonPingTimeout
	ReasonShutdown
	ReasonError
)

var reasonLabels = [...]string{
	ReasonNone:         "none",
	ReasonClient:       "client",
	ReasonSlow:         "slow",
	ReasonWriteTimeout: "write_timeout",
	ReasonReadLimit:    "read_limit",
	ReasonRateLimit:    "rate_limit",
	ReasonBinary:       "binary",
	ReasonPingTimeout:  "ping_timeout",
	ReasonShutdown:     "shutdown",
	ReasonError:        "error",
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
func (r Reason) closeFrame() (code websocket.StatusCode, text string, ok bool) {
	switch r {
	case ReasonShutdown:
		return websocket.StatusGoingAway, "shutdown", true
	case ReasonSlow:
		return websocket.StatusPolicyViolation, "slow", true
	case ReasonRateLimit:
		return websocket.StatusPolicyViolation, "rate_limit", true
	case ReasonBinary:
		return websocket.StatusUnsupportedData, "binary", true
	case ReasonReadLimit:
		// The library already sent 1009; Close finishes the handshake so that frame is read
		// before the socket goes away.
		return websocket.StatusMessageTooBig, "", true
	case ReasonError:
		return websocket.StatusInternalError, "internal", true
	default:
		return 0, "", false
	}
}
