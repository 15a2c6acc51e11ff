package conform

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/coder/websocket"
)

func expectClose(ctx context.Context, c *client, code websocket.StatusCode, reason string) error {
	got, gotReason, err := c.waitClose(ctx)
	if err != nil {
		return fmt.Errorf("want close %d %q: %w", code, reason, err)
	}
	if got != code || (reason != "" && gotReason != reason) {
		return fmt.Errorf("closed with %d %q, want %d %q", got, gotReason, code, reason)
	}
	return nil
}

func checkBinaryClose(ctx context.Context, s *suite) (string, error) {
	c, _, err := s.dial(ctx, dialOptions{})
	if err != nil {
		return "", err
	}
	defer c.close()
	if err := c.sendRaw(ctx, websocket.MessageBinary, []byte(`{"op":"ping","id":"bin"}`)); err != nil {
		return "", err
	}
	return "", expectClose(ctx, c, websocket.StatusUnsupportedData, "binary")
}

// paddedPing is a ping request of exactly size bytes.
func paddedPing(id string, size int) []byte {
	head, _ := json.Marshal(map[string]string{"op": "ping", "id": id})
	// head ends with "}"; insert ,"pad":"..." before it.
	pad := size - len(head) - len(`,"pad":""`)
	if pad < 0 {
		pad = 0
	}
	return []byte(string(head[:len(head)-1]) + `,"pad":"` + strings.Repeat("x", pad) + `"}`)
}

func checkReadLimitClose(ctx context.Context, s *suite) (string, error) {
	c, _, err := s.dial(ctx, dialOptions{})
	if err != nil {
		return "", err
	}
	defer c.close()
	limit := s.cfg.ReadLimit
	if err := c.sendRaw(ctx, websocket.MessageText, paddedPing("at-limit", limit)); err != nil {
		return "", err
	}
	if r, err := c.reply(ctx, "at-limit"); err != nil || r.Op != "pong" {
		return "", fmt.Errorf("a frame of exactly %d bytes: reply %s, %v; want pong", limit, r.Raw, err)
	}
	if err := c.sendRaw(ctx, websocket.MessageText, paddedPing("over-limit", limit+1)); err != nil {
		return "", err
	}
	if err := expectClose(ctx, c, websocket.StatusMessageTooBig, ""); err != nil {
		return "", fmt.Errorf("a frame of %d bytes: %w", limit+1, err)
	}
	return fmt.Sprintf("%d bytes answered, %d bytes closed", limit, limit+1), nil
}

func checkRateLimitClose(ctx context.Context, s *suite) (string, error) {
	c, _, err := s.dial(ctx, dialOptions{})
	if err != nil {
		return "", err
	}
	defer c.close()
	// Twice the burst plus a second's worth, unpaced: well past what the bucket allows.
	n := 2*s.cfg.RateBurst + int(s.cfg.RateLimit)
	for i := range n {
		if err := c.write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"op":"ping","id":"flood-%d"}`, i)); err != nil {
			// The server may already have closed; the close code tells.
			break
		}
	}
	if err := expectClose(ctx, c, websocket.StatusPolicyViolation, "rate_limit"); err != nil {
		return "", fmt.Errorf("after %d pings at once: %w", n, err)
	}
	pongs := 0
	for _, it := range c.items() {
		if it.env.Op == "pong" {
			pongs++
		}
	}
	return fmt.Sprintf("%d pings sent at once, %d answered before the close", n, pongs), nil
}

func checkFrames(_ context.Context, s *suite) (string, error) {
	frames, multi, maxLines, oversize, malformed := s.frames.snapshot()
	switch {
	case len(malformed) > 0:
		return "", fmt.Errorf("%d frames; malformed: %s", frames, strings.Join(malformed, "; "))
	case len(oversize) > 0:
		return "", fmt.Errorf("batched frames above %d bytes: %s", s.cfg.BatchMaxBytes, strings.Join(oversize, "; "))
	case !s.cfg.ExpectBatching && multi > 0:
		return "", fmt.Errorf("batching is off but %d of %d frames carried several objects (up to %d)", multi, frames, maxLines)
	case frames == 0:
		return "", fmt.Errorf("no frames received during the run")
	}
	return fmt.Sprintf("%d frames, %d with several objects, up to %d per frame", frames, multi, maxLines), nil
}
