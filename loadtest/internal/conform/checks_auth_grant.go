package conform

// Checks of what a token allows: forbidden channels, its patterns, its subscription limit,
// and a refresh that narrows it.

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// checkAuthForbidden: a token allowing trades:<k1> only; subscribing to <k1> and <k2>
// together is forbidden naming <k2> and subscribes neither (a record on <k1> does not
// arrive); <k1> alone then works. A token without a ws claim allows no private channel.
func checkAuthForbidden(ctx context.Context, s *suite) (string, error) {
	keys, err := s.privateKeys("forbid", 2)
	if err != nil {
		return "", err
	}
	k1, k2 := s.channel(keys[0]), s.channel(keys[1])
	c, err := s.authed(ctx, k1)
	if err != nil {
		return "", err
	}
	defer c.close()
	if err := c.subscribeDenied(ctx, "f1", "forbidden", k2, k1, k2); err != nil {
		return "", err
	}
	witness, err := s.authedSubscribed(ctx, k1)
	if err != nil {
		return "", fmt.Errorf("the witness: %w", err)
	}
	defer witness.close()
	if err := s.notDelivered(ctx, c, witness, keys[0]); err != nil {
		return "", fmt.Errorf("a forbidden subscribe must subscribe none of its channels: %w", err)
	}
	if err := c.subscribe(ctx, "f2", k1); err != nil {
		return "", fmt.Errorf("the allowed channel alone: %w", err)
	}
	if _, err := s.deliver(ctx, c, keys[0]); err != nil {
		return "", err
	}

	bare, err := s.authed(ctx)
	if err != nil {
		return "", fmt.Errorf("a token without a ws claim: %w", err)
	}
	defer bare.close()
	if err := bare.subscribeDenied(ctx, "f3", "forbidden", k1, k1); err != nil {
		return "", fmt.Errorf("a token without a ws claim: %w", err)
	}
	return "", pingAfter(ctx, bare, "forbidden")
}

// checkAuthTopicPattern: "<topic>:*" allows the wildcard channel and any key of the topic,
// not another topic's channels.
func checkAuthTopicPattern(ctx context.Context, s *suite) (string, error) {
	key, err := s.privateKey("topicpat")
	if err != nil {
		return "", err
	}
	wild := s.cfg.Topic + ":*"
	c, err := s.authed(ctx, wild)
	if err != nil {
		return "", err
	}
	defer c.close()
	if err := c.subscribe(ctx, "t1", s.channel(key)); err != nil {
		return "", fmt.Errorf("a key under %s: %w", wild, err)
	}
	if _, err := s.deliver(ctx, c, key); err != nil {
		return "", err
	}
	if err := c.subscribe(ctx, "t2", wild); err != nil {
		return "", fmt.Errorf("the wildcard channel under %s: %w", wild, err)
	}
	other := s.cfg.Topic + "x:" + key
	if err := c.subscribeDenied(ctx, "t3", "forbidden", other, other); err != nil {
		return "", fmt.Errorf("another topic: %w", err)
	}
	return "", nil
}

// checkAuthPrefixPattern: "<topic>:<prefix>*" allows keys starting with prefix (the
// prefix itself too), forbids other keys and the wildcard channel.
func checkAuthPrefixPattern(ctx context.Context, s *suite) (string, error) {
	prefix, err := s.privateKey("pfx")
	if err != nil {
		return "", err
	}
	prefix += "-"
	other, err := s.privateKey("nopfx")
	if err != nil {
		return "", err
	}
	c, err := s.authed(ctx, s.channel(prefix)+"*")
	if err != nil {
		return "", err
	}
	defer c.close()
	inside := prefix + "a"
	if err := c.subscribe(ctx, "p1", s.channel(inside)); err != nil {
		return "", fmt.Errorf("a key with the prefix: %w", err)
	}
	if _, err := s.deliver(ctx, c, inside); err != nil {
		return "", err
	}
	if err := c.subscribe(ctx, "p2", s.channel(prefix)); err != nil {
		return "", fmt.Errorf("the prefix itself as the key: %w", err)
	}
	if err := c.subscribeDenied(ctx, "p3", "forbidden", s.channel(other), s.channel(other)); err != nil {
		return "", fmt.Errorf("a key without the prefix: %w", err)
	}
	wild := s.cfg.Topic + ":*"
	if err := c.subscribeDenied(ctx, "p4", "forbidden", wild, wild); err != nil {
		return "", fmt.Errorf("the wildcard channel under a prefix pattern: %w", err)
	}
	return "", pingAfter(ctx, c, "forbidden")
}

// checkAuthMaxSubscriptions: a token with ws.max_subscriptions 2 refuses a subscribe of
// three channels, takes two, then refuses a third.
func checkAuthMaxSubscriptions(ctx context.Context, s *suite) (string, error) {
	prefix, err := s.privateKey("maxsub")
	if err != nil {
		return "", err
	}
	pattern := s.channel(prefix) + "-*"
	c0 := s.claims(pattern)
	c0.MaxSubscriptions = 2
	tok, err := s.hs256(c0)
	if err != nil {
		return "", err
	}
	c, _, err := s.dial(ctx, dialOptions{})
	if err != nil {
		return "", err
	}
	defer c.close()
	if err := c.authWith(ctx, "a", tok, c0.ExpiresAt.Unix()); err != nil {
		return "", err
	}
	ch := func(i int) string { return fmt.Sprintf("%s-%d", s.channel(prefix), i) }
	const want = "subscribe would pass the limit of 2 channels per client"
	tooMany := func(id string, channels ...string) error {
		r, err := c.request(ctx, id, map[string]any{"op": "subscribe", "id": id, "channels": channels})
		if err != nil {
			return err
		}
		if r.Op != "error" || r.Code != "too_many_subscriptions" || r.Message != want || !r.IDIs(id) {
			return fmt.Errorf("subscribe %q: reply %s, want error too_many_subscriptions %q", channels, r.Raw, want)
		}
		return nil
	}
	if err := tooMany("m1", ch(1), ch(2), ch(3)); err != nil {
		return "", err
	}
	if err := c.subscribe(ctx, "m2", ch(1), ch(2)); err != nil {
		return "", fmt.Errorf("two channels under max_subscriptions 2 (none taken by the refused three): %w", err)
	}
	if err := tooMany("m3", ch(3)); err != nil {
		return "", err
	}
	return "", pingAfter(ctx, c, "too_many_subscriptions")
}

// checkAuthRefreshNarrows: subscribed to A and B (and a public channel when there is
// one), a refresh with the same grant unsubscribes nothing; a refresh allowing only A
// sends {"op":"unsubscribed","channels":[B],"reason":"forbidden"} before its authed reply,
// then B's records stop and A's (and the public one's) flow.
func checkAuthRefreshNarrows(ctx context.Context, s *suite) (string, error) {
	keys, err := s.privateKeys("narrow", 2)
	if err != nil {
		return "", err
	}
	a, b := s.channel(keys[0]), s.channel(keys[1])
	c, err := s.authed(ctx, a, b)
	if err != nil {
		return "", err
	}
	defer c.close()
	subs := []string{a, b}
	pkey, pch := "", ""
	if publicPattern(s.cfg.Auth, s.cfg.Topic) != "" {
		if pkey, pch, err = s.publicKey("narrow-pub"); err != nil {
			return "", err
		}
		subs = append(subs, pch)
	}
	if err := c.subscribe(ctx, "s1", subs...); err != nil {
		return "", err
	}
	refresh := func(id string, patterns ...string) ([]item, error) {
		tok, exp, err := s.validToken(patterns...)
		if err != nil {
			return nil, err
		}
		from := len(c.items())
		if err := c.authWith(ctx, id, tok, exp); err != nil {
			return nil, err
		}
		return c.items()[from:], nil
	}
	unsubscribedLines := func(items []item) []item {
		var out []item
		for _, it := range items {
			if it.env.Op == "unsubscribed" {
				out = append(out, it)
			}
		}
		return out
	}
	same, err := refresh("r1", a, b)
	if err != nil {
		return "", fmt.Errorf("refresh with the same grant: %w", err)
	}
	if u := unsubscribedLines(same); len(u) > 0 {
		return "", fmt.Errorf("refresh with the same grant: %s", u[0].env.Raw)
	}
	items, err := refresh("r2", a)
	if err != nil {
		return "", fmt.Errorf("refresh allowing %s only: %w", a, err)
	}
	want := fmt.Sprintf(`{"op":"unsubscribed","channels":[%q],"reason":"forbidden"}`, b)
	authedAt := slices.IndexFunc(items, func(it item) bool { return it.env.IDIs("r2") })
	u := unsubscribedLines(items)
	switch {
	case len(u) == 0:
		return "", fmt.Errorf("refresh allowing %s only: no unsubscribed line for %s (got %d lines up to authed)", a, b, authedAt+1)
	case len(u) > 1 || string(u[0].env.Raw) != want:
		return "", fmt.Errorf("refresh allowing %s only: %s, want only %s", a, u[0].env.Raw, want)
	case slices.IndexFunc(items, func(it item) bool { return it.env.Op == "unsubscribed" }) > authedAt:
		return "", fmt.Errorf("refresh allowing %s only: the unsubscribed line came after the authed reply, want it before", a)
	}
	witness, err := s.authedSubscribed(ctx, b)
	if err != nil {
		return "", fmt.Errorf("the witness: %w", err)
	}
	defer witness.close()
	if err := s.notDelivered(ctx, c, witness, keys[1]); err != nil {
		return "", fmt.Errorf("after the narrowing refresh %s: %w", b, err)
	}
	if _, err := s.deliver(ctx, c, keys[0]); err != nil {
		return "", fmt.Errorf("after the narrowing refresh %s: %w", a, err)
	}
	if pch != "" {
		if _, err := s.deliver(ctx, c, pkey); err != nil {
			return "", fmt.Errorf("after the narrowing refresh, public %s: %w", pch, err)
		}
		return "the public channel stays", nil
	}
	return "", nil
}

// expiryStart is an exp (whole seconds) at least 2 s ahead.
func expiryStart() time.Time { return time.Now().Truncate(time.Second).Add(3 * time.Second) }
