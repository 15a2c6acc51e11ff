// This file is duplicated in ws-single (internal/server/reason.go) on purpose: the server layer is
// the same for one hub loop and for N shards; they may diverge.

package server

import (
	"time"

	"github.com/coder/websocket"
)

// Reason is why a connection ended.
type Reason uint8

// Disconnect reasons, in the order of the reasons table.
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
	ReasonTokenExpired
	ReasonAuthTimeout
	ReasonAuthFailed
)

// Close codes of the auth reasons, in the private-use range (RFC 6455 §7.4.2).
const (
	StatusTokenExpired websocket.StatusCode = 4001
	StatusAuthTimeout  websocket.StatusCode = 4002
	StatusAuthFailed   websocket.StatusCode = 4003
)

// reasons is the disconnect table of docs/PROTOCOL.md, the one place that maps
// a Reason to its ws_disconnects_total label and to the close frame the server
// ends the connection with. Every close frame is sent with coder/websocket's
// Close, lingering (conn.sendClose).
var reasons = [...]struct {
	label string               // ws_disconnects_total{reason}
	code  websocket.StatusCode // 0: no close frame (the peer is gone or its socket takes nothing)
	text  string
}{
	ReasonNone:   {label: "none"},
	ReasonClient: {label: "client"}, // the client closed or vanished
	// slow: or the socket is dropped when it cannot be written (the cork's cut).
	ReasonSlow:         {label: "slow", code: websocket.StatusPolicyViolation, text: "slow"},
	ReasonWriteTimeout: {label: "write_timeout"}, // the socket is dropped
	ReasonReadTimeout:  {label: "read_timeout", code: websocket.StatusPolicyViolation, text: "read_timeout"},
	// read_limit: the library wrote 1009 with its own text; Close only lingers.
	ReasonReadLimit:   {label: "read_limit", code: websocket.StatusMessageTooBig, text: "read_limit"},
	ReasonRateLimit:   {label: "rate_limit", code: websocket.StatusPolicyViolation, text: "rate_limit"},
	ReasonBinary:      {label: "binary", code: websocket.StatusUnsupportedData, text: "binary"},
	ReasonInvalidUTF8: {label: "invalid_utf8", code: websocket.StatusInvalidFramePayloadData, text: "invalid_utf8"},
	// protocol: the library wrote 1002 with its text for most framing errors;
	// then Close only lingers.
	ReasonProtocol:    {label: "protocol", code: websocket.StatusProtocolError, text: "protocol"},
	ReasonPingTimeout: {label: "ping_timeout"},
	ReasonShutdown:    {label: "shutdown", code: websocket.StatusGoingAway, text: "shutdown"},
	ReasonError:       {label: "error", code: websocket.StatusInternalError, text: "internal"},
	// The token expired and no refresh came within WS_AUTH_EXPIRY_GRACE.
	ReasonTokenExpired: {label: "token_expired", code: StatusTokenExpired, text: "token_expired"},
	// WS_AUTH=required and no valid token within WS_AUTH_TIMEOUT.
	ReasonAuthTimeout: {label: "auth_timeout", code: StatusAuthTimeout, text: "auth_timeout"},
	// maxAuthFailures auth requests in a row failed.
	ReasonAuthFailed: {label: "auth_failed", code: StatusAuthFailed, text: "auth_failed"},
}

// String returns the reason's ws_disconnects_total label.
func (r Reason) String() string {
	if int(r) < len(reasons) {
		return reasons[r].label
	}
	return "unknown"
}

// closeFrame is the close frame the server ends a connection with for r, and
// false when it sends none.
func (r Reason) closeFrame() (websocket.StatusCode, string, bool) {
	if int(r) >= len(reasons) || reasons[r].code == 0 {
		return 0, "", false
	}
	return reasons[r].code, reasons[r].text, true
}

// ReasonLabels are the labels of every reason but none, in table order: the
// values of ws_disconnects_total (metrics.Labels.Disconnects).
func ReasonLabels() []string {
	labels := make([]string, 0, len(reasons)-1)
	for _, r := range reasons[ReasonNone+1:] {
		labels = append(labels, r.label)
	}
	return labels
}

// Reasons an upgrade is refused (label "reason" of ws_connections_rejected_total).
const (
	RejectMaxConnections = "max_connections"
	RejectCPU            = "cpu"
	RejectOrigin         = "origin"
	RejectDraining       = "draining"
	RejectIPLimit        = "ip_limit" // closed at accept: WS_HTTP_MAX_CONNS_PER_IP
	RejectAuth           = "auth"     // 401: a bad token in Sec-WebSocket-Protocol
)

// RejectReasons are every reject reason (metrics.Labels.Rejects). Read-only.
var RejectReasons = []string{RejectMaxConnections, RejectCPU, RejectOrigin, RejectDraining, RejectIPLimit, RejectAuth}

// lingerTimeout bounds a server-initiated close: after its close frame the connection reads
// and discards the client's frames until the client's close frame, for at most this long
// (coder/websocket's own bound; the raw socket's read deadline enforces it even inside a frame
// the library discards byte by byte).
const lingerTimeout = 5 * time.Second
