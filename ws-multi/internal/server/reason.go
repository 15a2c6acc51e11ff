package server

import "github.com/coder/websocket"

// Reason is why a connection ended.
type Reason uint8

// Disconnect reasons; reasons below is their one table.
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

// reasons is the disconnect table of docs/PROTOCOL.md: for each Reason, its
// ws_disconnects_total label and the close frame the server ends the connection with. Every
// close frame is sent with coder/websocket's Close, which then reads and discards the
// client's frames until its close frame (the linger, at most lingerTimeout): a client still
// sending receives the code instead of a reset.
var reasons = [...]struct {
	label string               // ws_disconnects_total{reason}
	code  websocket.StatusCode // 0: no close frame (the peer is gone or its socket takes nothing)
	text  string
}{
	ReasonNone:         {"none", 0, ""},
	ReasonClient:       {"client", 0, ""},
	ReasonSlow:         {"slow", websocket.StatusPolicyViolation, "slow"},
	ReasonWriteTimeout: {"write_timeout", 0, ""},
	ReasonReadTimeout:  {"read_timeout", websocket.StatusPolicyViolation, "read_timeout"},
	// The library wrote 1009 with its own text already; Close only lingers.
	ReasonReadLimit:   {"read_limit", websocket.StatusMessageTooBig, "read_limit"},
	ReasonRateLimit:   {"rate_limit", websocket.StatusPolicyViolation, "rate_limit"},
	ReasonBinary:      {"binary", websocket.StatusUnsupportedData, "binary"},
	ReasonInvalidUTF8: {"invalid_utf8", websocket.StatusInvalidFramePayloadData, "invalid_utf8"},
	// The library wrote 1002 with its own text for most framing errors (then Close only
	// lingers); for the others (an unmasked frame, a negative length) this is the frame.
	ReasonProtocol:    {"protocol", websocket.StatusProtocolError, "protocol"},
	ReasonPingTimeout: {"ping_timeout", 0, ""},
	ReasonShutdown:    {"shutdown", websocket.StatusGoingAway, "shutdown"},
	ReasonError:       {"error", websocket.StatusInternalError, "internal"},
}

// String returns the metric label of the reason.
func (r Reason) String() string {
	if int(r) < len(reasons) {
		return reasons[r].label
	}
	return "unknown"
}

// closeFrame returns the close code and text of r; ok is false when no close frame can or
// need be sent (the socket is dead or the peer already closed it).
func (r Reason) closeFrame() (code websocket.StatusCode, text string, ok bool) {
	if int(r) >= len(reasons) || reasons[r].code == 0 {
		return 0, "", false
	}
	return reasons[r].code, reasons[r].text, true
}

// ReasonLabels returns every label but none's, in table order: the label values of
// ws_disconnects_total (metrics.Labels.Disconnects).
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
	RejectIPLimit        = "ip_limit" // closed at accept past WS_HTTP_MAX_CONNS_PER_IP
)

// RejectReasons are the label values of ws_connections_rejected_total
// (metrics.Labels.Rejects). Read-only.
var RejectReasons = []string{RejectMaxConnections, RejectCPU, RejectOrigin, RejectDraining, RejectIPLimit}
