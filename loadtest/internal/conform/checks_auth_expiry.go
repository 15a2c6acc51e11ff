package conform

// Checks of a token's end: a refresh before exp keeps the connection, none closes it at
// exp + WS_AUTH_EXPIRY_GRACE.

import (
	"context"
	"fmt"
	"time"
)

// expiryBudget covers a token living 2 to 3 s, the grace, and a second past it.
func expiryBudget(c Config) time.Duration { return c.CheckTimeout + 4*time.Second + c.Auth.ExpiryGrace }

// shortToken dials and authenticates with a token allowing patterns that expires at
// expiryStart() (2 to 3 s ahead: exp has whole seconds).
func (s *suite) shortToken(ctx context.Context, patterns ...string) (*client, time.Time, error) {
	cl := s.claims(patterns...)
	cl.ExpiresAt = expiryStart()
	tok, err := s.hs256(cl)
	if err != nil {
		return nil, time.Time{}, err
	}
	c, _, err := s.dial(ctx, dialOptions{})
	if err != nil {
		return nil, time.Time{}, err
	}
	if err := c.authWith(ctx, "short", tok, cl.ExpiresAt.Unix()); err != nil {
		c.close()
		return nil, time.Time{}, err
	}
	return c, cl.ExpiresAt, nil
}

// checkAuthRefreshKeeps refreshes a short token a second before its exp: the connection
// must still answer and deliver a second after the old exp + WS_AUTH_EXPIRY_GRACE.
func checkAuthRefreshKeeps(ctx context.Context, s *suite) (string, error) {
	key, err := s.privateKey("refresh")
	if err != nil {
		return "", err
	}
	ch := s.channel(key)
	c, exp, err := s.shortToken(ctx, ch)
	if err != nil {
		return "", err
	}
	defer c.close()
	if err := c.subscribe(ctx, "s1", ch); err != nil {
		return "", err
	}
	if err := sleepUntil(ctx, exp.Add(-time.Second)); err != nil {
		return "", err
	}
	tok, newExp, err := s.validToken(ch)
	if err != nil {
		return "", err
	}
	if err := c.authWith(ctx, "refresh", tok, newExp); err != nil {
		return "", fmt.Errorf("refresh %v before exp: %w", time.Until(exp).Round(time.Millisecond), err)
	}
	if err := sleepUntil(ctx, exp.Add(s.cfg.Auth.ExpiryGrace+time.Second)); err != nil {
		return "", err
	}
	if err := c.ping(ctx, "late"); err != nil {
		return "", fmt.Errorf("a second past the old exp + grace, the refreshed connection must stay: %w", err)
	}
	if _, err := s.deliver(ctx, c, key); err != nil {
		return "", fmt.Errorf("a second past the old exp + grace: %w", err)
	}
	return "", nil
}

// checkAuthExpiry lets a short token expire. Within the grace (when it is 500 ms or more)
// its subscriptions still deliver, a subscribe needing the token answers token_expired
// naming the channel, and a public channel may still be subscribed; then the connection
// closes with 4001 token_expired at exp + grace, not before.
func checkAuthExpiry(ctx context.Context, s *suite) (string, error) {
	keys, err := s.privateKeys("expiry", 2)
	if err != nil {
		return "", err
	}
	a, b := s.channel(keys[0]), s.channel(keys[1])
	c, exp, err := s.shortToken(ctx, a, b)
	if err != nil {
		return "", err
	}
	defer c.close()
	if err := c.subscribe(ctx, "s1", a); err != nil {
		return "", err
	}
	grace := s.cfg.Auth.ExpiryGrace
	closeAt := exp.Add(grace)
	detail := "grace too short to look inside"
	if grace >= 500*time.Millisecond {
		if err := sleepUntil(ctx, exp.Add(100*time.Millisecond)); err != nil {
			return "", err
		}
		if err := c.subscribeDenied(ctx, "e1", "token_expired", b, b); err != nil {
			return "", fmt.Errorf("after exp, within the grace: %w", err)
		}
		if publicPattern(s.cfg.Auth, s.cfg.Topic) != "" {
			_, pch, err := s.publicKey("expiry-pub")
			if err != nil {
				return "", err
			}
			if err := c.subscribe(ctx, "e2", pch); err != nil {
				return "", fmt.Errorf("after exp, within the grace, a public channel needs no token: %w", err)
			}
		}
		if _, err := s.deliver(ctx, c, keys[0]); err != nil {
			return "", fmt.Errorf("after exp, within the grace, subscriptions keep flowing: %w", err)
		}
		if now := time.Now(); now.After(closeAt) {
			return "", fmt.Errorf("the in-grace steps ended %v after exp + grace: lengthen --auth-expiry-grace", now.Sub(closeAt).Round(time.Millisecond))
		}
		detail = "within the grace: token_expired for a subscribe, records flow"
	}
	wctx, cancel := context.WithTimeout(ctx, time.Until(closeAt)+3*time.Second)
	defer cancel()
	code, reason, err := c.waitClose(wctx)
	at := time.Now()
	switch {
	case err != nil:
		return "", fmt.Errorf("want close 4001 token_expired at exp + %v: %w", grace, err)
	case code != 4001 || reason != "token_expired":
		return "", fmt.Errorf("closed with %d %q %v after exp, want 4001 \"token_expired\"", code, reason, at.Sub(exp).Round(time.Millisecond))
	case at.Before(exp):
		return "", fmt.Errorf("closed with 4001 %v before exp", exp.Sub(at).Round(time.Millisecond))
	case at.Before(closeAt.Add(-250 * time.Millisecond)):
		return "", fmt.Errorf("closed with 4001 %v after exp, before exp + WS_AUTH_EXPIRY_GRACE %v", at.Sub(exp).Round(time.Millisecond), grace)
	case at.After(closeAt.Add(2 * time.Second)):
		return "", fmt.Errorf("closed with 4001 %v after exp, long after exp + WS_AUTH_EXPIRY_GRACE %v", at.Sub(exp).Round(time.Millisecond), grace)
	}
	return fmt.Sprintf("closed %v after exp; %s", at.Sub(exp).Round(time.Millisecond), detail), nil
}
