package conform

// Checks of the auth contract (issue 15): what a connection without a token may do, the
// auth op and its failures, the auth timeout.

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/coder/websocket"

	"github.com/adred-codev/ws_poc/loadtest/internal/token"
)

// authChecks lists the auth checks that cfg allows, in the order they run.
func authChecks(cfg Config) []check {
	a := cfg.Auth
	public := publicPattern(a, cfg.Topic) != ""
	cs := []check{
		{name: "auth: without a token a private channel is unauthorized, naming it; the connection stays open", run: checkAuthNoToken},
	}
	if a.Mode == authRequired {
		if public {
			cs = append(cs, check{name: "auth: required, without a valid token even a public channel is unauthorized", run: checkAuthRequiredPublic})
		}
		cs = append(cs, check{name: "auth: required, no valid token within WS_AUTH_TIMEOUT closes 4002 auth_timeout", run: checkAuthTimeout, budget: authTimeoutBudget})
	}
	if a.Mode == authOptional && public {
		cs = append(cs, check{name: "auth: optional, a public channel is subscribed without a token and delivers", run: checkAuthPublicNoToken})
	}
	if public {
		cs = append(cs, check{name: "auth: a token adds its channels to the public ones; a public channel it does not list delivers", run: checkAuthPublicWithToken})
	}
	cs = append(cs,
		check{name: "auth: a valid HS256 token is authed with its exp, in request order; its channels deliver", run: checkAuthValid},
		check{name: "auth: invalid tokens answer invalid_token, an expired one token_expired; the connection stays open", run: checkAuthInvalid},
		check{name: "auth: an auth op without a non-empty string token is invalid_request", run: checkAuthBadRequest},
		check{name: "auth: the third failed auth closes 4003 auth_failed; the grant stays until then", run: checkAuthThreeFailures},
	)
	if a.JWKSKeyFile != "" {
		cs = append(cs,
			check{name: "auth: JWKS, a token signed with the served key under its kid is authed", run: checkJWKSValid},
			check{name: "auth: JWKS, HS256 keyed with the public key (PEM, DER) is invalid_token", run: checkJWKSConfusion},
			check{name: "auth: JWKS, another key under the same kid, an unknown kid, an alg not allowed are invalid_token", run: checkJWKSWrongKey},
		)
	}
	cs = append(cs,
		check{name: "auth: forbidden names the channel the token does not allow; subscribe stays all-or-nothing", run: checkAuthForbidden},
		check{name: "auth: pattern <topic>:* allows the wildcard channel and every key", run: checkAuthTopicPattern},
		check{name: "auth: pattern <topic>:<prefix>* allows keys with the prefix, not others nor the wildcard", run: checkAuthPrefixPattern},
		check{name: "auth: ws.max_subscriptions lowers the channel limit", run: checkAuthMaxSubscriptions},
		check{name: "auth: a refresh with a narrower token unsubscribes (reason forbidden) before its authed reply", run: checkAuthRefreshNarrows},
		check{name: "auth: a refresh before exp keeps the connection past exp + WS_AUTH_EXPIRY_GRACE", run: checkAuthRefreshKeeps, budget: expiryBudget},
		check{name: "auth: without a refresh the connection closes 4001 token_expired at exp + WS_AUTH_EXPIRY_GRACE", run: checkAuthExpiry, budget: expiryBudget},
		check{name: "auth: header, bearer.<jwt> beside ws_poc.v1 upgrades with ws_poc.v1, first line authed", run: checkAuthHeaderValid},
		check{name: "auth: header, a bad bearer token answers 401 before the upgrade", run: checkAuthHeaderRefused},
		check{name: "auth: header, bearer without ws_poc.v1 answers 400; ws_poc.v1 alone is accepted", run: checkAuthHeaderProtocols},
	)
	return cs
}

func checkAuthNoToken(ctx context.Context, s *suite) (string, error) {
	key, err := s.privateKey("noauth")
	if err != nil {
		return "", err
	}
	ch := s.channel(key)
	c, _, err := s.dial(ctx, dialOptions{})
	if err != nil {
		return "", err
	}
	defer c.close()
	if err := c.subscribeDenied(ctx, "n1", "unauthorized", ch, ch); err != nil {
		return "", err
	}
	if err := pingAfter(ctx, c, "unauthorized"); err != nil {
		return "", err
	}
	if s.cfg.Auth.Mode != authOptional || publicPattern(s.cfg.Auth, s.cfg.Topic) == "" {
		return "", nil
	}
	// A public channel beside a private one: the private one is named, and the public
	// one is not subscribed either (all-or-nothing).
	pkey, pch, err := s.publicKey("noauth-pub")
	if err != nil {
		return "", err
	}
	if err := c.subscribeDenied(ctx, "n2", "unauthorized", ch, pch, ch); err != nil {
		return "", err
	}
	witness, err := s.subscribed(ctx, pch)
	if err != nil {
		return "", fmt.Errorf("the witness, without a token: %w", err)
	}
	defer witness.close()
	if err := s.notDelivered(ctx, c, witness, pkey); err != nil {
		return "", fmt.Errorf("a subscribe refused as unauthorized must subscribe none of its channels: %w", err)
	}
	return "also with a public channel beside it, which stays unsubscribed", nil
}

func checkAuthRequiredPublic(ctx context.Context, s *suite) (string, error) {
	_, pch, err := s.publicKey("req-pub")
	if err != nil {
		return "", err
	}
	c, _, err := s.dial(ctx, dialOptions{})
	if err != nil {
		return "", err
	}
	defer c.close()
	if err := c.subscribeDenied(ctx, "r1", "unauthorized", pch, pch); err != nil {
		return "", fmt.Errorf("before any token: %w", err)
	}
	bad, err := s.otherSecretToken()
	if err != nil {
		return "", err
	}
	r, err := c.auth(ctx, "bad", bad)
	if err != nil {
		return "", err
	}
	if err := expectDenial(r, "bad", "invalid_token", ""); err != nil {
		return "", fmt.Errorf("auth with another secret's token: %w", err)
	}
	if err := c.subscribeDenied(ctx, "r2", "unauthorized", pch, pch); err != nil {
		return "", fmt.Errorf("after a failed auth: %w", err)
	}
	return "", pingAfter(ctx, c, "unauthorized")
}

// otherSecretToken is a token valid in every way but signed with another secret.
func (s *suite) otherSecretToken() (string, error) {
	return token.Mint(s.claims(), token.Signer{Alg: "HS256", Key: []byte("another-secret-" + s.run + "-0123456789abcdef")})
}

func authTimeoutBudget(c Config) time.Duration { return c.CheckTimeout + c.Auth.Timeout }

// checkAuthTimeout opens a silent connection, one whose only auth fails and one that
// authenticates: the first two must be closed with 4002 auth_timeout after WS_AUTH_TIMEOUT
// (not much earlier, not much later), the third must stay.
func checkAuthTimeout(ctx context.Context, s *suite) (string, error) {
	timeout := s.cfg.Auth.Timeout
	type conn struct {
		name  string
		c     *client
		since time.Time // when the upgrade completed on our side
	}
	var conns []conn
	defer func() {
		for _, c := range conns {
			c.c.close()
		}
	}()
	bad, err := s.otherSecretToken()
	if err != nil {
		return "", err
	}
	for _, name := range []string{"silent", "failed auth", "authed"} {
		c, _, err := s.dial(ctx, dialOptions{})
		if err != nil {
			return "", err
		}
		conns = append(conns, conn{name: name, c: c, since: time.Now()})
		switch name {
		case "failed auth":
			r, err := c.auth(ctx, "bad", bad)
			if err != nil {
				return "", fmt.Errorf("%s: %w", name, err)
			}
			if err := expectDenial(r, "bad", "invalid_token", ""); err != nil {
				return "", fmt.Errorf("%s: %w", name, err)
			}
		case "authed":
			tok, exp, err := s.validToken()
			if err != nil {
				return "", err
			}
			if err := c.authWith(ctx, "ok", tok, exp); err != nil {
				return "", fmt.Errorf("%s: %w", name, err)
			}
		}
	}
	var details []string
	for _, c := range conns[:2] {
		wctx, cancel := context.WithTimeout(ctx, timeout+3*time.Second)
		code, reason, err := c.c.waitClose(wctx)
		cancel()
		after := time.Since(c.since)
		switch {
		case err != nil:
			return "", fmt.Errorf("%s: want close 4002 auth_timeout after %v: %w", c.name, timeout, err)
		case code != 4002 || reason != "auth_timeout":
			return "", fmt.Errorf("%s: closed with %d %q after %v, want 4002 \"auth_timeout\"", c.name, code, reason, after.Round(time.Millisecond))
		case after < timeout-100*time.Millisecond:
			return "", fmt.Errorf("%s: closed with 4002 after %v, before WS_AUTH_TIMEOUT %v", c.name, after.Round(time.Millisecond), timeout)
		case after > timeout+2*time.Second:
			return "", fmt.Errorf("%s: closed with 4002 after %v, long after WS_AUTH_TIMEOUT %v", c.name, after.Round(time.Millisecond), timeout)
		}
		details = append(details, fmt.Sprintf("%s after %v", c.name, after.Round(time.Millisecond)))
	}
	authed := conns[2]
	if err := sleepUntil(ctx, authed.since.Add(timeout+300*time.Millisecond)); err != nil {
		return "", err
	}
	if err := authed.c.ping(ctx, "late"); err != nil {
		return "", fmt.Errorf("an authed connection must outlive WS_AUTH_TIMEOUT: %w", err)
	}
	return strings.Join(details, ", ") + "; the authed one stays", nil
}

func checkAuthPublicNoToken(ctx context.Context, s *suite) (string, error) {
	key, ch, err := s.publicKey("pub")
	if err != nil {
		return "", err
	}
	c, err := s.subscribed(ctx, ch)
	if err != nil {
		return "", fmt.Errorf("without a token: %w", err)
	}
	defer c.close()
	sent, err := s.deliver(ctx, c, key)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s after %d records", ch, len(sent)), nil
}

func checkAuthPublicWithToken(ctx context.Context, s *suite) (string, error) {
	key, pch, err := s.publicKey("pub-tok")
	if err != nil {
		return "", err
	}
	own, err := s.privateKey("pub-tok-own")
	if err != nil {
		return "", err
	}
	c, err := s.authed(ctx, s.channel(own))
	if err != nil {
		return "", err
	}
	defer c.close()
	if err := c.subscribe(ctx, "s1", pch, s.channel(own)); err != nil {
		return "", err
	}
	if _, err := s.deliver(ctx, c, key); err != nil {
		return "", fmt.Errorf("public %s: %w", pch, err)
	}
	if _, err := s.deliver(ctx, c, own); err != nil {
		return "", fmt.Errorf("the token's %s: %w", s.channel(own), err)
	}
	return "", nil
}

// checkAuthValid pipelines a ping, the auth and a ping (replies keep request order), then
// subscribes to the token's channel and waits for a record on it.
func checkAuthValid(ctx context.Context, s *suite) (string, error) {
	key, err := s.privateKey("valid")
	if err != nil {
		return "", err
	}
	ch := s.channel(key)
	tok, exp, err := s.validToken(ch)
	if err != nil {
		return "", err
	}
	c, _, err := s.dial(ctx, dialOptions{})
	if err != nil {
		return "", err
	}
	defer c.close()
	for _, req := range []map[string]any{
		{"op": "ping", "id": "p1"},
		{"op": "auth", "id": "a1", "token": tok},
		{"op": "ping", "id": "p2"},
	} {
		if err := c.send(ctx, req); err != nil {
			return "", err
		}
	}
	if _, err := c.reply(ctx, "p2"); err != nil {
		return "", err
	}
	var order []string
	var authed Envelope
	for _, it := range c.items() {
		if it.env.Op != "message" && it.env.ID != nil {
			order = append(order, *it.env.ID)
			if *it.env.ID == "a1" {
				authed = it.env
			}
		}
	}
	if want := []string{"p1", "a1", "p2"}; !slices.Equal(order, want) {
		return "", fmt.Errorf("reply ids in order %v, want %v", order, want)
	}
	if err := expectAuthed(authed, "a1", exp); err != nil {
		return "", err
	}
	if err := c.subscribe(ctx, "s1", ch); err != nil {
		return "", err
	}
	sent, err := s.deliver(ctx, c, key)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("exp %d; delivered after %d records", exp, len(sent)), nil
}

// badToken is one token the server must refuse, and the code it must refuse it with.
type badToken struct {
	name  string
	token string
	code  string
}

// invalidTokens are the HS256-keyed tokens the server must refuse.
func (s *suite) invalidTokens() ([]badToken, error) {
	a := s.cfg.Auth
	now := time.Now()
	secret := []byte(a.Secret)
	var out []badToken
	var errs []error
	add := func(name, code string, c token.Claims, sg token.Signer) {
		tok, err := token.Mint(c, sg)
		errs = append(errs, err)
		out = append(out, badToken{name: name, token: tok, code: code})
	}
	hs := token.Signer{Alg: "HS256", Key: secret}
	edit := func(f func(*token.Claims)) token.Claims {
		c := s.claims()
		f(&c)
		return c
	}
	add("signed with another secret", "invalid_token", s.claims(), token.Signer{Alg: "HS256", Key: []byte("another-secret-" + s.run + "-0123456789abcdef")})
	add("expired an hour ago (past the leeway)", "token_expired", edit(func(c *token.Claims) {
		c.ExpiresAt = now.Add(-a.Leeway - time.Hour)
		c.IssuedAt = c.ExpiresAt.Add(-time.Hour)
	}), hs)
	add("another issuer", "invalid_token", edit(func(c *token.Claims) { c.Issuer += "-other" }), hs)
	add("another audience", "invalid_token", edit(func(c *token.Claims) { c.Audience += "-other" }), hs)
	add("alg none", "invalid_token", s.claims(), token.Signer{Alg: "none"})
	for _, alg := range []string{"HS384", "HS512"} {
		if !slices.Contains(a.Algs, alg) {
			add(alg+", not in WS_JWT_ALGS", "invalid_token", s.claims(), token.Signer{Alg: alg, Key: secret})
			break
		}
	}
	add("no exp", "invalid_token", edit(func(c *token.Claims) { c.ExpiresAt = time.Time{} }), hs)
	add("no sub", "invalid_token", edit(func(c *token.Claims) { c.Subject = "" }), hs)
	add("nbf an hour ahead (past the leeway)", "invalid_token", edit(func(c *token.Claims) { c.NotBefore = now.Add(a.Leeway + time.Hour) }), hs)
	add("a '*' inside a ws.subscribe pattern", "invalid_token", edit(func(c *token.Claims) { c.Channels = []string{s.cfg.Topic + ":a*b"} }), hs)
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	// The payload of one valid token under the signature of another.
	t1, err := s.hs256(s.claims(s.cfg.Topic + ":a"))
	if err != nil {
		return nil, err
	}
	t2, err := s.hs256(s.claims(s.cfg.Topic + ":*"))
	if err != nil {
		return nil, err
	}
	p1, p2 := strings.Split(t1, "."), strings.Split(t2, ".")
	out = append(out,
		badToken{name: "payload swapped under a valid signature", token: p1[0] + "." + p2[1] + "." + p1[2], code: "invalid_token"},
		badToken{name: "malformed: not a JWT", token: "not-a-jwt", code: "invalid_token"},
		badToken{name: "malformed: three segments of junk", token: "e30.!!!.###", code: "invalid_token"},
	)
	return out, nil
}

// refuseEach sends each token on a connection of its own (the third failure would close a
// shared one) and expects its error, then a pong. It reports every case that fails.
func (s *suite) refuseEach(ctx context.Context, cases []badToken) (string, error) {
	var failed []string
	for _, tc := range cases {
		if err := s.refuseOne(ctx, tc); err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", tc.name, err))
		}
	}
	if len(failed) > 0 {
		return "", fmt.Errorf("%d of %d cases: %s", len(failed), len(cases), strings.Join(failed, "; "))
	}
	return fmt.Sprintf("%d cases", len(cases)), nil
}

func (s *suite) refuseOne(ctx context.Context, tc badToken) error {
	c, _, err := s.dial(ctx, dialOptions{})
	if err != nil {
		return err
	}
	defer c.close()
	r, err := c.auth(ctx, "bad", tc.token)
	if err != nil {
		return err
	}
	if err := expectDenial(r, "bad", tc.code, ""); err != nil {
		return err
	}
	return pingAfter(ctx, c, tc.code)
}

func checkAuthInvalid(ctx context.Context, s *suite) (string, error) {
	cases, err := s.invalidTokens()
	if err != nil {
		return "", err
	}
	return s.refuseEach(ctx, cases)
}

// checkAuthBadRequest sends auth ops whose token is not a non-empty string, each on a
// connection of its own (whether they count as failed auths is not the point here).
func checkAuthBadRequest(ctx context.Context, s *suite) (string, error) {
	const message = "token must be a non-empty string"
	frames := []string{
		`{"op":"auth","id":"q1"}`,
		`{"op":"auth","id":"q1","token":""}`,
		`{"op":"auth","id":"q1","token":null}`,
		`{"op":"auth","id":"q1","token":42}`,
		`{"op":"auth","id":"q1","token":["a.b.c"]}`,
	}
	var failed []string
	for _, f := range frames {
		err := func() error {
			c, _, err := s.dial(ctx, dialOptions{})
			if err != nil {
				return err
			}
			defer c.close()
			if err := c.sendRaw(ctx, websocket.MessageText, []byte(f)); err != nil {
				return err
			}
			r, err := c.reply(ctx, "q1")
			if err != nil {
				return err
			}
			if r.Op != "error" || r.Code != "invalid_request" || r.Message != message {
				return fmt.Errorf("reply %s, want error invalid_request %q", r.Raw, message)
			}
			return pingAfter(ctx, c, "invalid_request")
		}()
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", f, err))
		}
	}
	if len(failed) > 0 {
		return "", fmt.Errorf("%d of %d cases: %s", len(failed), len(frames), strings.Join(failed, "; "))
	}
	return fmt.Sprintf("%d cases", len(frames)), nil
}

// checkAuthThreeFailures: on an authed connection two failed refreshes leave the grant
// (a subscribe it allows works, records flow) and the third closes 4003 auth_failed; a
// connection that never authenticated is closed by its third failure too.
func checkAuthThreeFailures(ctx context.Context, s *suite) (string, error) {
	keys, err := s.privateKeys("fail3", 2)
	if err != nil {
		return "", err
	}
	a, b := s.channel(keys[0]), s.channel(keys[1])
	c, err := s.authed(ctx, a, b)
	if err != nil {
		return "", err
	}
	defer c.close()
	if err := c.subscribe(ctx, "s1", a); err != nil {
		return "", err
	}
	cases, err := s.invalidTokens()
	if err != nil {
		return "", err
	}
	for i, tc := range cases[:2] {
		r, err := c.auth(ctx, fmt.Sprintf("f%d", i+1), tc.token)
		if err != nil {
			return "", fmt.Errorf("failure %d (%s): %w", i+1, tc.name, err)
		}
		if err := expectDenial(r, fmt.Sprintf("f%d", i+1), tc.code, ""); err != nil {
			return "", fmt.Errorf("failure %d (%s): %w", i+1, tc.name, err)
		}
	}
	if err := c.subscribe(ctx, "s2", b); err != nil {
		return "", fmt.Errorf("after two failed refreshes the grant must stay: %w", err)
	}
	if _, err := s.deliver(ctx, c, keys[0]); err != nil {
		return "", fmt.Errorf("after two failed refreshes: %w", err)
	}
	if err := c.send(ctx, map[string]any{"op": "auth", "id": "f3", "token": cases[0].token}); err != nil {
		return "", err
	}
	if err := expectClose(ctx, c, 4003, "auth_failed"); err != nil {
		return "", fmt.Errorf("third failure on an authed connection: %w", err)
	}

	fresh, _, err := s.dial(ctx, dialOptions{})
	if err != nil {
		return "", err
	}
	defer fresh.close()
	for i, tc := range cases[:3] {
		if err := fresh.send(ctx, map[string]any{"op": "auth", "id": fmt.Sprintf("g%d", i+1), "token": tc.token}); err != nil {
			return "", err
		}
	}
	if err := expectClose(ctx, fresh, 4003, "auth_failed"); err != nil {
		return "", fmt.Errorf("three failures without a token: %w", err)
	}
	for i := range 2 {
		id := fmt.Sprintf("g%d", i+1)
		r, err := fresh.waitFor(ctx, "reply "+id, func(e Envelope) bool { return e.IDIs(id) })
		if err == nil {
			err = expectDenial(r, id, cases[i].code, "")
		}
		if err != nil {
			return "", fmt.Errorf("three failures without a token: the first two must be answered before the close: %w", err)
		}
	}
	return "", nil
}
