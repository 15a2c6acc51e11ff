package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// MaxIDLen is the longest request id in bytes.
const MaxIDLen = 64

// Op is a client operation.
type Op uint8

// The client operations of PROTOCOL.md.
const (
	OpSubscribe Op = iota + 1
	OpUnsubscribe
	OpPing
)

// Error codes sent in {"op":"error"} replies.
const (
	CodeInvalidJSON          = "invalid_json"
	CodeInvalidRequest       = "invalid_request"
	CodeUnknownOp            = "unknown_op"
	CodeInvalidChannel       = "invalid_channel"
	CodeTooManySubscriptions = "too_many_subscriptions"
)

// ErrorCodes are every error code, the label values of ws_protocol_errors_total
// (metrics.Labels.Errors). Read-only.
var ErrorCodes = []string{CodeInvalidJSON, CodeInvalidRequest, CodeUnknownOp, CodeInvalidChannel, CodeTooManySubscriptions}

// Request is one parsed client request.
type Request struct {
	Op Op
	// ID is the client's request id; HasID tells an absent id from an empty one.
	ID    string
	HasID bool
	// Channels are the request's channels, validated and de-duplicated in request order.
	Channels []string
}

// Error is a request the server answers with an error reply; the connection stays open.
// ID and HasID carry the request id when it could be read, so the reply can echo it.
type Error struct {
	Code    string
	Message string
	ID      string
	HasID   bool
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Parse parses one client text frame. On failure it returns the request as far as it was
// understood (its id, when valid, so the error reply can echo it) and an *Error, whose
// message is one of docs/PROTOCOL.md's texts, byte for byte as ws-single sends it; client
// text it quotes is cut to MaxEcho bytes.
func Parse(frame []byte) (Request, *Error) {
	req, err := parse(frame)
	if err != nil {
		err.ID, err.HasID = req.ID, req.HasID
	}
	return req, err
}

func parse(frame []byte) (Request, *Error) {
	var req Request
	trimmed := bytes.TrimLeft(frame, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return req, &Error{Code: CodeInvalidJSON, Message: "frame is not a JSON object"}
	}
	// A map keeps field names exact (struct decoding would match "OP" to "op").
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(frame, &fields); err != nil {
		return req, &Error{Code: CodeInvalidJSON, Message: "frame is not a JSON object"}
	}

	if raw, ok := fields["id"]; ok && !isNull(raw) {
		var id string
		if err := json.Unmarshal(raw, &id); err != nil {
			return req, &Error{Code: CodeInvalidRequest, Message: "id must be a string"}
		}
		if len(id) > MaxIDLen {
			return req, &Error{Code: CodeInvalidRequest, Message: fmt.Sprintf("id is longer than %d bytes", MaxIDLen)}
		}
		req.ID, req.HasID = id, true
	}

	raw, ok := fields["op"]
	if !ok || isNull(raw) {
		return req, &Error{Code: CodeUnknownOp, Message: "op is missing"}
	}
	var op string
	if err := json.Unmarshal(raw, &op); err != nil {
		return req, &Error{Code: CodeInvalidRequest, Message: "op must be a string"}
	}
	switch op {
	case "subscribe":
		req.Op = OpSubscribe
	case "unsubscribe":
		req.Op = OpUnsubscribe
	case "ping":
		req.Op = OpPing
		return req, nil
	default:
		return req, &Error{Code: CodeUnknownOp, Message: "unknown op " + quoteEcho(op)}
	}

	raw, ok = fields["channels"]
	var channels []string
	if !ok || isNull(raw) || json.Unmarshal(raw, &channels) != nil {
		return req, &Error{Code: CodeInvalidRequest, Message: "channels must be an array of strings"}
	}
	if len(channels) == 0 {
		return req, &Error{Code: CodeInvalidRequest, Message: "channels must not be empty"}
	}
	req.Channels = channels[:0]
	for _, ch := range channels {
		if err := ValidateChannel(ch); err != nil {
			req.Channels = nil
			return req, &Error{Code: CodeInvalidChannel, Message: err.Error()}
		}
		if !contains(req.Channels, ch) {
			req.Channels = append(req.Channels, ch)
		}
	}
	return req, nil
}

func isNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}

// contains is a linear scan: requests carry few channels (at most WS_MAX_SUBSCRIPTIONS
// useful ones) and it keeps request order without a map allocation.
func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
