package conform

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
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
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
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

// checkSlowClose subscribes, stops reading, floods the channel well past
// WS_SEND_QUEUE_MESSAGES, then reads again: after what was buffered, the server's close
// must be 1008 "slow". It starts reading again well within WS_WRITE_TIMEOUT, so the close
// frame can still be written.
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
	// Give the server time to fill its queue, but resume well inside the write timeout.
	time.Sleep(min(300*time.Millisecond, s.cfg.WriteTimeout/4))
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
