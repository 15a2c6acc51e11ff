package conform

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

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

// checkRateLimitClose sends one request more than the burst at once on a fresh
// connection: the server must answer every request it accepted before the limit (at least
// WS_RATE_BURST pongs, in order, none missing) and then close with 1008 rate_limit.
func checkRateLimitClose(ctx context.Context, s *suite) (string, error) {
	c, _, err := s.dial(ctx, dialOptions{})
	if err != nil {
		return "", err
	}
	defer c.close()
	n := s.cfg.RateBurst + 1
	for i := range n {
		if err := c.write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"op":"ping","id":"flood-%d"}`, i)); err != nil {
			// The server may already have closed; the close code tells.
			break
		}
	}
	if err := expectClose(ctx, c, websocket.StatusPolicyViolation, "rate_limit"); err != nil {
		return "", fmt.Errorf("after %d pings at once (WS_RATE_BURST %d): %w", n, s.cfg.RateBurst, err)
	}
	var ids []string
	for _, it := range c.items() {
		if it.env.Op == "pong" && it.env.ID != nil {
			ids = append(ids, *it.env.ID)
		} else if it.env.Op != "message" {
			return "", fmt.Errorf("unexpected reply %s", it.env.Raw)
		}
	}
	for i, id := range ids {
		if want := fmt.Sprintf("flood-%d", i); id != want {
			return "", fmt.Errorf("pongs %v: pong %d is for %q, want %q (a reply owed was lost or reordered)", ids, i, id, want)
		}
	}
	if len(ids) < s.cfg.RateBurst {
		return "", fmt.Errorf("%d pings at once: %d pongs before the 1008 rate_limit close, want the %d the burst allows", n, len(ids), s.cfg.RateBurst)
	}
	return fmt.Sprintf("%d pings sent at once, %d answered, then 1008 rate_limit", n, len(ids)), nil
}

func floodBudget(c Config) time.Duration { return c.WriteTimeout + 5*time.Second }

// checkPingFlood sends WebSocket ping frames (control frames, not requests) unpaced: they
// count against the rate limit like requests, so the flood must end with 1008 rate_limit.
func checkPingFlood(ctx context.Context, s *suite) (string, error) {
	r, err := s.rawUpgrade(ctx, 0)
	if err != nil {
		return "", err
	}
	n := 2*s.cfg.RateBurst + int(s.cfg.RateLimit)
	// Unsolicited pongs do not count: after as many, a request is still answered.
	var b []byte
	for i := range n {
		b = appendFrame(b, opPong, fmt.Appendf(nil, "pong-%d", i))
	}
	b = appendFrame(b, opText, []byte(`{"op":"ping","id":"after-pongs"}`))
	if err := r.write(b, 5*time.Second); err != nil {
		r.conn.Close()
		return "", fmt.Errorf("write %d pong frames: %w", n, err)
	}
	if e, err := r.readReply("after-pongs", closeDeadline(ctx, 5*time.Second)); err != nil {
		r.conn.Close()
		return "", fmt.Errorf("after %d unsolicited pong frames (they do not count against the rate limit): %w", n, err)
	} else if e.Op != "pong" {
		r.conn.Close()
		return "", fmt.Errorf("after %d unsolicited pong frames: reply %s, want pong", n, e.Raw)
	}
	b = b[:0]
	for i := range n {
		b = appendFrame(b, opPing, fmt.Appendf(nil, "flood-%d", i))
	}
	if err := r.write(b, 5*time.Second); err != nil {
		r.conn.Close()
		return "", fmt.Errorf("write %d ping frames: %w", n, err)
	}
	res := r.readUntilClose(closeDeadline(ctx, s.cfg.WriteTimeout+3*time.Second))
	r.finish(res)
	pongs := res.count(opPong)
	switch {
	case res.code != int(websocket.StatusPolicyViolation) || res.reason != "rate_limit":
		return "", fmt.Errorf("%d ping frames at once (%d answered): %v, want close 1008 \"rate_limit\"", n, pongs, res)
	case pongs >= n:
		return "", fmt.Errorf("all %d ping frames were answered before the close; pings over the limit get no pong", n)
	}
	return fmt.Sprintf("%d pong frames ignored; %d ping frames at once, %d answered, then 1008 rate_limit", n, n, pongs), nil
}

// closeDeadline is now+d, or ctx's deadline when that comes first.
func closeDeadline(ctx context.Context, d time.Duration) time.Time {
	t := time.Now().Add(d)
	if dl, ok := ctx.Deadline(); ok && dl.Before(t) {
		return dl
	}
	return t
}

// checkInvalidUTF8 sends a text frame that is not valid UTF-8: RFC 6455 requires 1007.
// (Invalid UTF-8 in a close frame's reason is parsed inside the servers' WebSocket
// library and is not checked here.)
func checkInvalidUTF8(ctx context.Context, s *suite) (string, error) {
	c, _, err := s.dial(ctx, dialOptions{})
	if err != nil {
		return "", err
	}
	defer c.close()
	if err := c.ping(ctx, "utf8-before"); err != nil {
		return "", err
	}
	if err := c.sendRaw(ctx, websocket.MessageText, []byte("{\"op\":\"ping\",\"id\":\"a\xff\xfeb\"}")); err != nil {
		return "", err
	}
	return "", expectClose(ctx, c, websocket.StatusInvalidFramePayloadData, "invalid_utf8")
}

const lingerTries = 5

func lingerBudget(c Config) time.Duration {
	return lingerTries*(2*c.WriteTimeout+12*time.Second) + 5*time.Second
}

// checkReadLimitLinger: a client that has messages still to read sends a 4 MiB frame and
// reads only once the frame is written, as a simple client does. The server stops reading
// at WS_READ_LIMIT and closes with 1009: it must then read and discard the rest (linger)
// until the client's close frame. Closing the socket on unread data instead resets the
// connection, and the reset discards what the server had not sent yet: the messages and
// the close frame behind them (the client sees 1006). Several tries, since it is a race.
func checkReadLimitLinger(ctx context.Context, s *suite) (string, error) {
	const size = 4 << 20
	for try := 1; try <= lingerTries; try++ {
		res, err := sendHugeFrame(ctx, s, size)
		if err != nil {
			return "", fmt.Errorf("try %d: %w", try, err)
		}
		if res.code != int(websocket.StatusMessageTooBig) {
			return "", fmt.Errorf("try %d of %d: a client sending a %d-byte frame, with messages unread, got %v (after %d frames), want close 1009", try, lingerTries, size, res, len(res.frames))
		}
	}
	return fmt.Sprintf("1009 received %d of %d times after a %d-byte frame", lingerTries, lingerTries, size), nil
}

// sendHugeFrame subscribes a raw connection with a small receive buffer, has records of
// its channel queued at the server (a second client tells when they are routed), writes
// one text frame of size bytes and only then reads everything up to the close frame,
// which it answers.
func sendHugeFrame(ctx context.Context, s *suite, size int) (rawClose, error) {
	key := s.key("linger")
	ch := s.channel(key)
	witness, err := s.subscribed(ctx, ch)
	if err != nil {
		return rawClose{}, err
	}
	defer witness.close()
	r, err := s.rawUpgrade(ctx, 4096)
	if err != nil {
		return rawClose{}, err
	}
	defer r.conn.Close()
	if err := r.write(appendFrame(nil, opText, fmt.Appendf(nil, `{"op":"subscribe","id":"linger","channels":[%q]}`, ch)), 5*time.Second); err != nil {
		return rawClose{}, fmt.Errorf("subscribe: %w", err)
	}
	if e, err := r.readReply("linger", closeDeadline(ctx, 5*time.Second)); err != nil {
		return rawClose{}, err
	} else if e.Op != "subscribed" {
		return rawClose{}, fmt.Errorf("subscribe: reply %s", e.Raw)
	}
	// Far more than the client's receive buffer takes, so the rest waits at the server,
	// and far less than WS_SEND_QUEUE_BYTES, so the client is never judged slow.
	const records = 16
	recordBytes := min(16<<10, max(4096, s.cfg.SendQueueBytes/64), s.cfg.MaxRecordBytes)
	rs := make([]record, records)
	for i := range rs {
		rs[i] = record{key: &key, value: paddedValue(recordBytes)}
	}
	if _, err := s.prod.sendBurst(rs); err != nil {
		return rawClose{}, err
	}
	if _, err := witness.waitMessages(ctx, "messages on "+ch, records, channelIs(ch)); err != nil {
		return rawClose{}, fmt.Errorf("the witness client: %w", err)
	}
	time.Sleep(100 * time.Millisecond) // the raw client's copies are queued by now
	h, mkey := frameHeader(opText, uint64(size))
	_ = r.conn.SetWriteDeadline(closeDeadline(ctx, s.cfg.WriteTimeout+5*time.Second))
	_, werr := r.conn.Write(h)
	chunk := make([]byte, 64<<10)
	for off := 0; werr == nil && off < size; off += len(chunk) {
		p := chunk[:min(len(chunk), size-off)]
		for i := range p {
			p[i] = 'x'
		}
		if off == 0 {
			copy(p, `{"op":"ping","id":"huge","pad":"`)
		}
		maskBytes(p, mkey, off)
		_, werr = r.conn.Write(p)
	}
	res := r.readUntilClose(closeDeadline(ctx, s.cfg.WriteTimeout+5*time.Second))
	if res.code == -1 && werr != nil {
		res.err = fmt.Errorf("%w (writing the frame: %v)", res.err, werr)
	}
	r.finish(res)
	return res, nil
}

// checkFramingErrors sends, each on a connection of its own, a frame RFC 6455 forbids a
// client: the server (its WebSocket library) closes with 1002. The reason text is the
// library's and is not checked.
func checkFramingErrors(ctx context.Context, s *suite) (string, error) {
	cases := []struct {
		name  string
		frame []byte
	}{
		{"an unmasked frame", appendBadFrame(nil, 0x80|opText, []byte(`{"op":"ping"}`), false)},
		{"a reserved opcode", appendBadFrame(nil, 0x80|0x3, nil, true)},
		{"a reserved bit without an extension", appendBadFrame(nil, 0x80|0x40|opText, []byte(`{"op":"ping"}`), true)},
		{"a fragmented ping", appendBadFrame(nil, opPing, nil, true)},
		{"a ping of 126 bytes", appendBadFrame(nil, 0x80|opPing, bytes.Repeat([]byte("p"), 126), true)},
		{"a continuation without a first frame", appendBadFrame(nil, 0x80, []byte("x"), true)},
	}
	for _, tc := range cases {
		r, err := s.rawUpgrade(ctx, 0)
		if err != nil {
			return "", err
		}
		if err := r.write(tc.frame, 5*time.Second); err != nil {
			r.conn.Close()
			return "", fmt.Errorf("%s: write: %w", tc.name, err)
		}
		res := r.readUntilClose(closeDeadline(ctx, s.cfg.WriteTimeout+2*time.Second))
		r.finish(res)
		if res.code != int(websocket.StatusProtocolError) {
			return "", fmt.Errorf("%s: %v, want close 1002", tc.name, res)
		}
	}
	return fmt.Sprintf("%d framing errors closed with 1002", len(cases)), nil
}

func hugeBudget(c Config) time.Duration { return c.WriteTimeout + 5*time.Second }

// checkHugeLength sends the header of a frame declaring 2^40 bytes and no payload: the
// server must not wait for the payload longer than WS_WRITE_TIMEOUT. The close is 1008
// read_timeout; an end without a close frame within that time passes too.
func checkHugeLength(ctx context.Context, s *suite) (string, error) {
	r, err := s.rawUpgrade(ctx, 0)
	if err != nil {
		return "", err
	}
	h, _ := frameHeader(opText, 1<<40)
	start := time.Now()
	if err := r.write(h, 5*time.Second); err != nil {
		r.conn.Close()
		return "", fmt.Errorf("write the frame header: %w", err)
	}
	limit := s.cfg.WriteTimeout + 2*time.Second
	res := r.readUntilClose(closeDeadline(ctx, limit))
	r.conn.Close() // no close frame of ours: it would be read as payload
	took := res.at.Sub(start).Round(time.Millisecond)
	switch {
	case res.timedOut():
		return "", fmt.Errorf("a frame header declaring 2^40 bytes without its payload: still open after %v (WS_WRITE_TIMEOUT %v)", took, s.cfg.WriteTimeout)
	case res.code == -1:
		return fmt.Sprintf("ended without a close frame after %v (%v)", took, res.err), nil
	case res.code != int(websocket.StatusPolicyViolation) || res.reason != "read_timeout":
		return "", fmt.Errorf("a frame header declaring 2^40 bytes without its payload: %v after %v, want close 1008 \"read_timeout\"", res, took)
	}
	return fmt.Sprintf("1008 read_timeout after %v", took), nil
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
