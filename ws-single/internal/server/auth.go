// This file is duplicated in ws-multi (internal/server/auth.go) on purpose: the server layer is
// the same for one hub loop and for N shards; they may diverge.

package server

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/adred-codev/ws_poc/ws-single/internal/auth"
	"github.com/adred-codev/ws_poc/ws-single/internal/config"
	"github.com/adred-codev/ws_poc/ws-single/internal/hub"
	"github.com/adred-codev/ws_poc/ws-single/internal/metrics"
	"github.com/adred-codev/ws_poc/ws-single/internal/protocol"
)

// Subprotocol is the WebSocket subprotocol of docs/PROTOCOL.md. A client that offers it gets
// it back; one that sends its token in the handshake must offer it with the token.
const Subprotocol = "ws_poc.v1"

// bearerPrefix marks the subprotocol that carries a token: "bearer.<jwt>". It is never echoed.
const bearerPrefix = "bearer."

// maxAuthFailures is how many auth requests in a row may fail before the connection is
// closed with 4003 auth_failed: a client with a stale token gets to fetch a new one, a
// client guessing tokens does not get to burn verifications on one connection.
const maxAuthFailures = 3

// connAuth is a connection's authentication state, allocated only when auth is on. The
// reader goroutine owns grant and failures; the timers' callbacks read only the atomics.
type connAuth struct {
	grant    *auth.Grant // nil until a valid token
	failures int         // failed auth requests in a row

	authed   atomic.Bool  // a valid token came (the auth timeout does nothing then)
	deadline atomic.Int64 // unix nanoseconds of exp + grace: the expiry close

	timeout *time.Timer // WS_AUTH=required: the auth timeout; nil otherwise
	expiry  *time.Timer // the expiry close, from the first valid token
}

// bearerToken reads a token offered as the "bearer.<jwt>" subprotocol. offered reports that
// one was, and withProtocol that Subprotocol was offered too.
func bearerToken(h http.Header) (token string, offered, withProtocol bool) {
	for _, v := range h.Values("Sec-WebSocket-Protocol") {
		for p := range strings.SplitSeq(v, ",") {
			p = strings.TrimSpace(p)
			switch {
			case p == Subprotocol:
				withProtocol = true
			case strings.HasPrefix(p, bearerPrefix) && !offered:
				token, offered = p[len(bearerPrefix):], true
			}
		}
	}
	return token, offered, withProtocol
}

// handshakeToken verifies a token offered in Sec-WebSocket-Protocol before the upgrade. It
// returns the grant (nil when none was offered or auth is off) and false after answering the
// request itself: 400 for a token offered without Subprotocol, 401 for a bad token.
func (s *Server) handshakeToken(w http.ResponseWriter, r *http.Request) (*auth.Grant, bool) {
	if s.verifier == nil {
		return nil, true // auth is off: a bearer protocol is ignored, never echoed
	}
	token, offered, withProtocol := bearerToken(r.Header)
	if !offered {
		return nil, true
	}
	if !withProtocol {
		s.reject(r, RejectAuth)
		w.Header().Set("Connection", "close")
		http.Error(w, "offer the "+Subprotocol+" subprotocol with the bearer token", http.StatusBadRequest)
		return nil, false
	}
	g, err := s.verifier.Verify(r.Context(), token)
	if err != nil {
		f := auth.AsFailure(err)
		s.authFailed(metrics.AuthSourceHeader, r.RemoteAddr, f)
		s.reject(r, RejectAuth)
		w.Header().Set("Connection", "close")
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		http.Error(w, failureCode(f)+": "+f.Message, http.StatusUnauthorized)
		return nil, false
	}
	s.m.Auth.WithLabelValues(metrics.AuthSourceHeader, metrics.ResultOK).Inc()
	return g, true
}

// failureCode is the error code of a refused token.
func failureCode(f *auth.Failure) string {
	if f.Expired() {
		return protocol.CodeTokenExpired
	}
	return protocol.CodeInvalidToken
}

// authFailed counts a refused token and writes it to the audit log, never the token.
func (s *Server) authFailed(source, remote string, f *auth.Failure) {
	s.m.Auth.WithLabelValues(source, metrics.ResultFailed).Inc()
	s.m.AuthFailures.WithLabelValues(f.Reason).Inc()
	if ce := s.audit.Check(zap.InfoLevel, "auth failed"); ce != nil {
		fields := []zap.Field{zap.String("reason", f.Reason), zap.String("source", source), zap.String("remote", remote)}
		if f.Subject != "" {
			fields = append(fields, zap.String("sub", trimLog(f.Subject)))
		}
		if f.Err != nil {
			fields = append(fields, zap.String("detail", trimLog(f.Err.Error())))
		}
		ce.Write(fields...)
	}
}

// trimLog cuts client-controlled text for a log line.
func trimLog(s string) string {
	if len(s) > 128 {
		return s[:128] + "..."
	}
	return s
}

// allows is what g (nil: no token) lets a client keep: the public channels and the token's.
func (s *Server) allows(g *auth.Grant) func(string) bool {
	return func(ch string) bool { return s.public.Allows(ch) || (g != nil && g.Allow.Allows(ch)) }
}

// startAuth arms the connection's auth: with a token from the handshake, its expiry and the
// "authed" line; with WS_AUTH=required and none, the auth timeout. Called once registered.
func (c *conn) startAuth(ctx context.Context, g *auth.Grant) error {
	a := c.auth
	if a == nil {
		return nil
	}
	if g != nil {
		return c.granted(ctx, g, protocol.Request{})
	}
	if c.s.cfg.Auth == config.AuthRequired {
		c.mu.Lock()
		a.timeout = time.AfterFunc(c.s.cfg.AuthTimeout, func() {
			if !a.authed.Load() {
				c.closeAfterReplies(ReasonAuthTimeout)
			}
		})
		c.mu.Unlock()
	}
	return nil
}

// authenticate serves an auth request on the reader goroutine: it verifies the token (a JWK
// Set wait bounded by WS_JWT_JWKS_TIMEOUT) and hands the hub the new permit with the
// "authed" reply, or the error reply.
func (c *conn) authenticate(ctx context.Context, req protocol.Request) error {
	if c.auth == nil {
		return c.s.hub.Reject(ctx, c.client, protocol.AuthOff(req.ID, req.HasID))
	}
	g, err := c.s.verifier.Verify(ctx, req.Token)
	if err != nil {
		f := auth.AsFailure(err)
		c.s.authFailed(metrics.AuthSourceMessage, c.remote, f)
		e := &protocol.Error{Code: failureCode(f), Message: f.Message, ID: req.ID, HasID: req.HasID}
		if err := c.s.hub.Reject(ctx, c.client, e); err != nil {
			return err
		}
		if c.auth.failures++; c.auth.failures >= maxAuthFailures {
			c.closeAfterReplies(ReasonAuthFailed)
		}
		return nil
	}
	c.s.m.Auth.WithLabelValues(metrics.AuthSourceMessage, metrics.ResultOK).Inc()
	return c.granted(ctx, g, req)
}

// granted makes g the connection's grant: the expiry moves to g's exp plus the grace, and
// the hub drops the channels g no longer allows, then queues the "authed" reply to req.
func (c *conn) granted(ctx context.Context, g *auth.Grant, req protocol.Request) error {
	a := c.auth
	a.grant, a.failures = g, 0
	a.authed.Store(true)
	deadline := g.Expires.Add(c.s.cfg.AuthExpiryGrace)
	a.deadline.Store(deadline.UnixNano())
	c.mu.Lock()
	if a.timeout != nil {
		// Stopped rather than left to fire and find authed: a connect storm's timeouts
		// would otherwise all fire together, seconds later, one goroutine each.
		a.timeout.Stop()
	}
	if !c.finished {
		if a.expiry == nil {
			a.expiry = time.AfterFunc(time.Until(deadline), c.expire)
		} else {
			a.expiry.Reset(time.Until(deadline))
		}
	}
	c.mu.Unlock()
	return c.s.hub.Permit(ctx, c.client, hub.Permit{
		Allows:           c.s.allows(g),
		MaxSubscriptions: g.MaxSubscriptions,
		Reply:            protocol.EncodeAuthed(req.ID, req.HasID, g.Expires.Unix()),
	})
}

// expire is the expiry timer's callback: the connection closes with 4001 token_expired,
// unless a refresh moved the deadline after the timer was set.
func (c *conn) expire() {
	if time.Now().UnixNano() >= c.auth.deadline.Load() {
		c.closeAfterReplies(ReasonTokenExpired)
	}
}

// stopAuth stops the auth timers; under c.mu, once finished.
func (c *conn) stopAuth() {
	if a := c.auth; a != nil {
		if a.timeout != nil {
			a.timeout.Stop()
		}
		if a.expiry != nil {
			a.expiry.Stop()
		}
	}
}

// checkSubscribe refuses a subscribe the connection's credentials do not cover, naming the
// first channel refused: unauthorized without a token (or, with WS_AUTH=optional, for a
// channel that is not public), forbidden outside the token's patterns, token_expired past
// its exp. Nil when every channel is allowed, and always with auth off.
func (c *conn) checkSubscribe(req protocol.Request) *protocol.Error {
	a := c.auth
	if a == nil {
		return nil
	}
	optional := c.s.cfg.Auth == config.AuthOptional
	var expired bool
	if a.grant != nil {
		expired = time.Now().After(a.grant.Expires)
	}
	for _, ch := range req.Channels {
		public := c.s.public.Allows(ch)
		switch {
		case public && (optional || a.grant != nil):
		case a.grant == nil:
			return protocol.Unauthorized(ch, req.ID, req.HasID)
		case !a.grant.Allow.Allows(ch):
			return protocol.Forbidden(ch, req.ID, req.HasID)
		case expired:
			return protocol.ChannelTokenExpired(ch, req.ID, req.HasID)
		}
	}
	return nil
}
