package conform

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

// smallBufferClient dials with a small socket receive buffer, so a client that stops
// reading stalls the server's writes after little data rather than megabytes.
func smallBufferClient() *http.Client {
	d := &net.Dialer{
		Timeout: 5 * time.Second,
		Control: func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
			})
			return errors.Join(err, serr)
		},
	}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// rawDial opens a connection without the suite's reader: nothing is read until the check
// reads, so the server sees a client that does not read (and does not answer pings).
func (s *suite) rawDial(ctx context.Context) (*websocket.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(dctx, s.cfg.URL, &websocket.DialOptions{HTTPClient: smallBufferClient()})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", s.cfg.URL, err)
	}
	conn.SetReadLimit(64 << 20)
	return conn, nil
}

// slowPause is how long checkSlowClose keeps not reading after its flood: longer than
// the servers' 1 s mark of a write that waits for the socket (a client not draining), and
// well inside WS_WRITE_TIMEOUT (Validate wants 2 s or more).
const slowPause = 1500 * time.Millisecond

func slowBudget(c Config) time.Duration { return c.CheckTimeout + slowPause + 5*time.Second }

// checkSlowClose subscribes, stops reading, floods the channel well past
// WS_SEND_QUEUE_MESSAGES, keeps not reading for slowPause, produces a few more records
// (a client is judged slow only when a message is queued for it while it is past a limit
// and not draining), then reads again: after what was buffered, the server's close must
// be 1008 "slow". It resumes well within WS_WRITE_TIMEOUT, so the close frame can still
// be written.
func checkSlowClose(ctx context.Context, s *suite) (string, error) {
	conn, err := s.rawDial(ctx)
	if err != nil {
		return "", err
	}
	defer conn.CloseNow()
	key := s.key("slow")
	ch := s.channel(key)
	if err := conn.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"op":"subscribe","id":"slow","channels":[%q]}`, ch)); err != nil {
		return "", fmt.Errorf("subscribe: %w", err)
	}
	for subscribed := false; !subscribed; {
		_, frame, err := conn.Read(ctx)
		if err != nil {
			return "", fmt.Errorf("waiting for subscribed: %w", err)
		}
		envs, err := SplitFrame(frame)
		if err != nil {
			return "", err
		}
		for _, e := range envs {
			subscribed = subscribed || (e.Op == "subscribed" && e.IDIs("slow"))
		}
	}
	// Several times the queue limit, and ~10 MB in records of ~2 KB: Linux lets a loopback
	// send buffer grow to 4 MiB (tcp_wmem), and a flood the server's socket absorbs whole
	// never fills its queue, so the cut would depend on the kernel's buffer tuning.
	n := max(4*s.cfg.SendQueueMessages, 5000)
	rs := make([]record, n)
	for i := range rs {
		rs[i] = record{key: &key, value: fmt.Appendf(nil, `{"i":%d,"pad":"%02000d"}`, i, i)}
	}
	start := time.Now()
	if _, err := s.prod.sendBurst(rs); err != nil {
		return "", err
	}
	select {
	case <-time.After(slowPause):
	case <-ctx.Done():
		return "", ctx.Err()
	}
	const more = 5
	for i := range more {
		if _, err := s.prod.send(record{key: &key, value: fmt.Appendf(nil, `{"more":%d}`, i)}); err != nil {
			return "", err
		}
	}
	n += more
	got := 0
	for {
		_, frame, err := conn.Read(ctx)
		if err != nil {
			var ce websocket.CloseError
			switch {
			case errors.As(err, &ce) && ce.Code == websocket.StatusPolicyViolation && ce.Reason == "slow":
				return fmt.Sprintf("%d records sent, %d received, then 1008 slow after %v", n, got, time.Since(start).Round(time.Millisecond)), nil
			case errors.As(err, &ce):
				return "", fmt.Errorf("closed with %d %q after %d of %d messages, want 1008 \"slow\"", ce.Code, ce.Reason, got, n)
			case got >= n:
				return "", fmt.Errorf("all %d messages arrived (%v): the server never judged the client slow, want close 1008 \"slow\"", n, err)
			default:
				return "", fmt.Errorf("after %d of %d messages: %w (want close 1008 \"slow\")", got, n, err)
			}
		}
		envs, err := SplitFrame(frame)
		if err != nil {
			return "", err
		}
		got += len(envs)
	}
}

const burstRecords = 30

// burstRecordBytes is the size of each record of checkDrainingBurst: ~1 MB (under
// sarama's default cap of 1000000 per record), at most a quarter of WS_SEND_QUEUE_BYTES
// so the burst is well past it in total, and never over WS_MAX_RECORD_BYTES.
func burstRecordBytes(c Config) int {
	return min(1000000-1024, c.SendQueueBytes/4, c.MaxRecordBytes)
}

func burstBudget(c Config) time.Duration { return max(c.CheckTimeout, 30*time.Second) }

// checkDrainingBurst subscribes five clients that read at full speed (fewer when
// WS_MAX_CONNECTIONS is lower) and produces 30 records of ~1 MB at once: far past
// WS_SEND_QUEUE_BYTES, but a client that drains its queue must not be cut as slow.
// The clients only count what they receive, so they never fall behind parsing it.
func checkDrainingBurst(ctx context.Context, s *suite) (string, error) {
	nClients := 5
	if s.cfg.MaxConnections > 0 {
		// One slot stays free: the server counts a connection until its handler has
		// returned, a moment after the client has gone, and the next check dials at once.
		nClients = max(1, min(nClients, s.cfg.MaxConnections-1))
	}
	key := s.key("burst")
	ch := s.channel(key)
	size := burstRecordBytes(s.cfg)
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		got int
		err error
	}
	results := make(chan result, nClients)
	var conns []*websocket.Conn
	defer func() {
		cancel()
		for _, c := range conns {
			_ = c.CloseNow()
		}
	}()
	for i := range nClients {
		conn, err := s.fastDial(ctx)
		if err != nil {
			return "", fmt.Errorf("client %d: %w", i+1, err)
		}
		conns = append(conns, conn)
		if err := conn.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"op":"subscribe","id":"burst","channels":[%q]}`, ch)); err != nil {
			return "", fmt.Errorf("client %d: subscribe: %w", i+1, err)
		}
		if err := waitSubscribed(ctx, conn, "burst"); err != nil {
			return "", fmt.Errorf("client %d: %w", i+1, err)
		}
	}
	for _, conn := range conns {
		go func() {
			got, err := countMessages(rctx, conn, ch, burstRecords)
			results <- result{got, err}
		}()
	}
	rs := make([]record, burstRecords)
	for i := range rs {
		v := paddedValue(size)
		copy(v[len(`{"pad":"`):], fmt.Sprintf("%03d", i))
		rs[i] = record{key: &key, value: v}
	}
	start := time.Now()
	if _, err := s.prod.sendBurst(rs); err != nil {
		return "", err
	}
	var failures []string
	for range nClients {
		if r := <-results; r.err != nil {
			failures = append(failures, fmt.Sprintf("a client got %d of %d: %v", r.got, burstRecords, r.err))
		}
	}
	if len(failures) > 0 {
		return "", fmt.Errorf("%d records of %d bytes at once (WS_SEND_QUEUE_BYTES %d) to %d reading clients: %s", burstRecords, size, s.cfg.SendQueueBytes, nClients, strings.Join(failures, "; "))
	}
	return fmt.Sprintf("%d clients each received all %d records of %d bytes in %v", nClients, burstRecords, size, time.Since(start).Round(time.Millisecond)), nil
}

// fastDial opens a connection without the suite's reader, for a check that reads itself.
func (s *suite) fastDial(ctx context.Context) (*websocket.Conn, error) {
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(dctx, s.cfg.URL, &websocket.DialOptions{HTTPClient: s.http})
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", s.cfg.URL, err)
	}
	conn.SetReadLimit(64 << 20)
	return conn, nil
}

// waitSubscribed reads until the subscribed reply with id.
func waitSubscribed(ctx context.Context, conn *websocket.Conn, id string) error {
	for {
		_, frame, err := conn.Read(ctx)
		if err != nil {
			return fmt.Errorf("waiting for subscribed: %w", err)
		}
		envs, err := SplitFrame(frame)
		if err != nil {
			return err
		}
		for _, e := range envs {
			if e.IDIs(id) {
				if e.Op != "subscribed" {
					return fmt.Errorf("subscribe: reply %s", e.Raw)
				}
				return nil
			}
		}
	}
}

// countMessages reads until want messages of channel ch have arrived. It keeps nothing
// and decodes only op and channel, so it keeps up with any server.
func countMessages(ctx context.Context, conn *websocket.Conn, ch string, want int) (int, error) {
	got := 0
	for got < want {
		_, frame, err := conn.Read(ctx)
		if err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				return got, fmt.Errorf("closed with %d %q", ce.Code, ce.Reason)
			}
			return got, err
		}
		for line := range bytes.SplitSeq(frame, []byte{'\n'}) {
			var e struct{ Op, Channel string }
			if err := json.Unmarshal(line, &e); err != nil {
				return got, fmt.Errorf("a line that is not JSON: %w (%s)", err, clip(line))
			}
			if e.Op == "message" && e.Channel == ch {
				got++
			}
		}
	}
	return got, nil
}

func pingBudget(c Config) time.Duration { return 2*c.PingInterval + c.WriteTimeout + 5*time.Second }

// checkPingTimeout keeps one client reading (its library answers pings) and one silent,
// for two ping intervals plus the write timeout: the first must still answer a ping, the
// second must be gone.
func checkPingTimeout(ctx context.Context, s *suite) (string, error) {
	alive, _, err := s.dial(ctx, dialOptions{})
	if err != nil {
		return "", err
	}
	defer alive.close()
	silent, err := s.rawDial(ctx)
	if err != nil {
		return "", err
	}
	defer silent.CloseNow()
	wait := 2*s.cfg.PingInterval + s.cfg.WriteTimeout + 500*time.Millisecond
	select {
	case <-time.After(wait):
	case <-ctx.Done():
		return "", ctx.Err()
	}
	if err := alive.ping(ctx, "alive"); err != nil {
		return "", fmt.Errorf("a client answering pings was dropped within %v: %w", wait, err)
	}
	rctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	_, _, err = silent.Read(rctx)
	switch {
	case err == nil:
		return "", fmt.Errorf("a client silent for %v still receives frames", wait)
	case rctx.Err() != nil:
		return "", fmt.Errorf("a client silent for %v (ping interval %v, write timeout %v) is still connected", wait, s.cfg.PingInterval, s.cfg.WriteTimeout)
	}
	return fmt.Sprintf("silent client dropped within %v (%v)", wait, err), nil
}
