// This file is duplicated from ws-single (internal/protocol/request.go) on purpose: the
// variants share the protocol, the same requests, error codes and texts in both.

package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Op is a client operation, as named on the wire.
type Op string

// The client operations of docs/PROTOCOL.md.
const (
	OpSubscribe   Op = "subscribe"
	OpUnsubscribe Op = "unsubscribe"
	OpPing        Op = "ping"
	OpAuth        Op = "auth"
)

// Error codes of an "error" reply, as in docs/PROTOCOL.md.
const (
	CodeInvalidJSON          = "invalid_json"
	CodeInvalidRequest       = "invalid_request"
	CodeUnknownOp            = "unknown_op"
	CodeInvalidChannel       = "invalid_channel"
	CodeTooManySubscriptions = "too_many_subscriptions"
	CodeAlreadySubscribed    = "already_subscribed"
	CodeUnauthorized         = "unauthorized"
	CodeForbidden            = "forbidden"
	CodeInvalidToken         = "invalid_token"
	CodeTokenExpired         = "token_expired"
)

// ErrorCodes are every error code, the label values of ws_protocol_errors_total
// (metrics.Labels.Errors). Read-only.
var ErrorCodes = []string{CodeInvalidJSON, CodeInvalidRequest, CodeUnknownOp, CodeInvalidChannel, CodeTooManySubscriptions,
	CodeAlreadySubscribed, CodeUnauthorized, CodeForbidden, CodeInvalidToken, CodeTokenExpired}

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

// TooManyWaiting is the invalid_request error for a request read while more than limit
// requests wait behind the client's resume.
func TooManyWaiting(limit int, id string, hasID bool) *Error {
	return &Error{
		Code:    CodeInvalidRequest,
		Message: fmt.Sprintf("more than %d requests wait behind a resume", limit),
		ID:      id, HasID: hasID,
	}
}

// SinceTooOld is the invalid_request error for a time replay older than maxAge
// (WS_RESUME_MAX_AGE).
func SinceTooOld(maxAge time.Duration, id string, hasID bool) *Error {
	return &Error{
		Code:    CodeInvalidRequest,
		Message: "resume.since_ts is older than the maximum age of " + maxAge.String(),
		ID:      id, HasID: hasID,
	}
}

// Unauthorized is the unauthorized error for a subscribe to channel, which needs a token
// the client has not presented.
func Unauthorized(channel string, id string, hasID bool) *Error {
	return &Error{
		Code:    CodeUnauthorized,
		Message: "channel " + quoteEcho(channel) + " needs a token",
		ID:      id, HasID: hasID, Channel: channel,
	}
}

// Forbidden is the forbidden error for a subscribe to channel, which the client's token does
// not allow.
func Forbidden(channel string, id string, hasID bool) *Error {
	return &Error{
		Code:    CodeForbidden,
		Message: "the token does not allow channel " + quoteEcho(channel),
		ID:      id, HasID: hasID, Channel: channel,
	}
}

// ChannelTokenExpired is the token_expired error for a subscribe to channel, which needs the
// client's token, after that token's exp: the client must refresh first.
func ChannelTokenExpired(channel string, id string, hasID bool) *Error {
	return &Error{
		Code:    CodeTokenExpired,
		Message: "the token has expired; refresh it to subscribe to " + quoteEcho(channel),
		ID:      id, HasID: hasID, Channel: channel,
	}
}

// AuthOff is the invalid_request error for an auth request to a server without
// authentication.
func AuthOff(id string, hasID bool) *Error {
	return &Error{Code: CodeInvalidRequest, Message: "authentication is off on this server", ID: id, HasID: hasID}
}

// Request is one parsed, valid client request.
type Request struct {
	// Op is OpSubscribe, OpUnsubscribe, OpPing or OpAuth.
	Op Op
	// ID is the request id; HasID tells an absent id from an empty one.
	ID    string
	HasID bool
	// Channels are the valid channels of a subscribe or unsubscribe, de-duplicated,
	// in request order. Nil for ping.
	Channels []string
	// Positioned asks a subscribe's reply for epochs and positions, and periodic marks
	// for its topics; a resume implies it.
	Positioned bool
	// Resume, on a subscribe, asks for a replay before live; nil otherwise.
	Resume *Resume
	// Token is an auth request's token; empty otherwise.
	Token string
	// Conflate is a subscribe's conflation (conflate.go); the zero value delivers every record.
	Conflate Conflate
}

// AlreadySubscribed is the already_subscribed error for a resume naming a channel the
// client holds already: its records are live, a replay would deliver them twice.
func AlreadySubscribed(channel string, id string, hasID bool) *Error {
	return &Error{
		Code:    CodeAlreadySubscribed,
		Message: "resume of channel " + quoteEcho(channel) + ": already subscribed",
		ID:      id, HasID: hasID,
	}
}

// Error is a request the server answers with an "error" reply; the connection stays open.
// ID and HasID carry the request id when it could be read, so the reply can echo it.
// Channel, when set, names the channel a subscribe was refused for (unauthorized, forbidden,
// token_expired).
type Error struct {
	Code    string
	Message string
	ID      string
	HasID   bool
	Channel string
}

// Error implements error.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Parse reads one client text frame. On failure it returns the request as far as it was
// understood (its id, when valid) and an *Error whose Message is one of the texts of
// docs/PROTOCOL.md's error table; client text it quotes is cut to MaxEcho bytes.
func Parse(frame []byte) (Request, *Error) {
	req, err := parseFields(frame)
	if err != nil {
		err.ID, err.HasID = req.ID, req.HasID
	}
	return req, err
}

func parseFields(frame []byte) (Request, *Error) {
	var req Request
	trimmed := bytes.TrimLeft(frame, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return req, &Error{Code: CodeInvalidJSON, Message: "frame is not a JSON object"}
	}
	// A map keeps the field names exact (a struct would match "OP" too) and lets
	// each field's type be checked on its own.
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
	switch Op(op) {
	case OpPing:
		req.Op = OpPing
		return req, nil
	case OpAuth:
		req.Op = OpAuth
		raw, ok := fields["token"]
		if !ok || isNull(raw) || json.Unmarshal(raw, &req.Token) != nil || req.Token == "" {
			return req, &Error{Code: CodeInvalidRequest, Message: "token must be a non-empty string"}
		}
		return req, nil
	case OpSubscribe, OpUnsubscribe:
		req.Op = Op(op)
	default:
		return req, &Error{Code: CodeUnknownOp, Message: "unknown op " + quoteEcho(op)}
	}

	var channels []string
	raw, ok = fields["channels"]
	if !ok || isNull(raw) || json.Unmarshal(raw, &channels) != nil {
		return req, &Error{Code: CodeInvalidRequest, Message: "channels must be an array of strings"}
	}
	if len(channels) == 0 {
		return req, &Error{Code: CodeInvalidRequest, Message: "channels must not be empty"}
	}
	for _, ch := range channels {
		if err := ValidateChannel(ch); err != nil {
			return req, &Error{Code: CodeInvalidChannel, Message: err.Error()}
		}
	}
	req.Channels = dedupe(channels)
	if req.Op != OpSubscribe {
		return req, nil
	}
	if raw, ok := fields["positioned"]; ok && !isNull(raw) {
		if json.Unmarshal(raw, &req.Positioned) != nil {
			return req, &Error{Code: CodeInvalidRequest, Message: "positioned must be a boolean"}
		}
	}
	if raw, ok := fields["conflate"]; ok && !isNull(raw) {
		c, err := parseConflate(raw)
		if err != nil {
			return req, err
		}
		req.Conflate = c
	}
	if raw, ok := fields["resume"]; ok && !isNull(raw) {
		r, err := parseResume(raw)
		if err != nil {
			return req, err
		}
		req.Resume, req.Positioned = r, true
	}
	return req, nil
}

// dedupScanMax is the longest channel list de-duplicated by scanning; longer lists use a set.
const dedupScanMax = 16

// dedupe returns channels without repeats, in order. A request usually names a few channels,
// so a scan beats a map's allocation; WS_READ_LIMIT allows thousands, where the quadratic
// scan would cost real CPU per frame, so a long list goes through a set.
func dedupe(channels []string) []string {
	out := make([]string, 0, len(channels))
	if len(channels) <= dedupScanMax {
		for _, ch := range channels {
			if !slices.Contains(out, ch) {
				out = append(out, ch)
			}
		}
		return out
	}
	set := make(map[string]struct{}, len(channels))
	for _, ch := range channels {
		if _, dup := set[ch]; !dup {
			set[ch] = struct{}{}
			out = append(out, ch)
		}
	}
	return out
}

func isNull(raw json.RawMessage) bool {
	return string(bytes.TrimSpace(raw)) == "null"
}
