package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Client operations.
const (
	OpSubscribe   = "subscribe"
	OpUnsubscribe = "unsubscribe"
	OpPing        = "ping"
)

// Error codes of an "error" reply, as in docs/PROTOCOL.md.
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

// MaxIDLen is the longest request id in bytes.
const MaxIDLen = 64

// TooManySubscriptions is the too_many_subscriptions error for a subscribe that
// would take a client past limit channels.
func TooManySubscriptions(limit int, id string, hasID bool) *Error {
	return &Error{
		Code:    CodeTooManySubscriptions,
		Message: fmt.Sprintf("subscribe would pass the limit of %d channels per client", limit),
		ID:      id, HasID: hasID,
	}
}

// Request is one parsed, valid client request.
type Request struct {
	// Op is OpSubscribe, OpUnsubscribe or OpPing.
	Op string
	// ID is the request id; HasID says whether the request carried one (it may be "").
	ID    string
	HasID bool
	// Channels are the valid channels of a subscribe or unsubscribe, de-duplicated,
	// in request order. Nil for ping.
	Channels []string
}

// Error is a request the server answers with an "error" reply. ID and HasID
// carry the request id when it could be read, so the reply can echo it.
type Error struct {
	Code    string
	Message string
	ID      string
	HasID   bool
}

// Error implements error.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Parse reads one client frame. Every error it returns is an *Error, whose
// Message is one of the texts of PROTOCOL.md's error table.
func Parse(frame []byte) (Request, error) {
	trimmed := bytes.TrimLeft(frame, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return Request{}, &Error{Code: CodeInvalidJSON, Message: "frame is not a JSON object"}
	}
	// A map keeps the field names exact (a struct would match "OP" too) and lets
	// each field's type be checked on its own.
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(frame, &fields); err != nil {
		return Request{}, &Error{Code: CodeInvalidJSON, Message: "frame is not a JSON object"}
	}

	var req Request
	if raw, ok := fields["id"]; ok && !isNull(raw) {
		if err := json.Unmarshal(raw, &req.ID); err != nil {
			return Request{}, &Error{Code: CodeInvalidRequest, Message: "id must be a string"}
		}
		if len(req.ID) > MaxIDLen {
			return Request{}, &Error{Code: CodeInvalidRequest, Message: fmt.Sprintf("id is longer than %d bytes", MaxIDLen)}
		}
		req.HasID = true
	}
	fail := func(code, msg string) (Request, error) {
		return Request{}, &Error{Code: code, Message: msg, ID: req.ID, HasID: req.HasID}
	}

	raw, ok := fields["op"]
	if !ok || isNull(raw) {
		return fail(CodeUnknownOp, "op is missing")
	}
	if json.Unmarshal(raw, &req.Op) != nil {
		return fail(CodeInvalidRequest, "op must be a string")
	}
	switch req.Op {
	case OpPing:
		return req, nil
	case OpSubscribe, OpUnsubscribe:
	default:
		return fail(CodeUnknownOp, "unknown op "+quoteEcho(req.Op))
	}

	var channels []string
	if raw, ok := fields["channels"]; !ok || isNull(raw) || json.Unmarshal(raw, &channels) != nil {
		return fail(CodeInvalidRequest, "channels must be an array of strings")
	}
	if len(channels) == 0 {
		return fail(CodeInvalidRequest, "channels must not be empty")
	}
	seen := make(map[string]struct{}, len(channels))
	req.Channels = channels[:0]
	for _, ch := range channels {
		if err := ValidateChannel(ch); err != nil {
			return fail(CodeInvalidChannel, err.Error())
		}
		if _, dup := seen[ch]; dup {
			continue
		}
		seen[ch] = struct{}{}
		req.Channels = append(req.Channels, ch)
	}
	return req, nil
}

func isNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}
