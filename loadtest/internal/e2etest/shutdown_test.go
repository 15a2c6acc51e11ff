package e2etest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// TestShutdownCloses1001: on SIGTERM both variants close every client with 1001
// "shutdown" (docs/PROTOCOL.md, close codes) and exit 0 within WS_SHUTDOWN_TIMEOUT.
func TestShutdownCloses1001(t *testing.T) {
	for _, v := range []struct{ name, envVar string }{{"ws-single", "WS_SINGLE_BIN"}, {"ws-multi", "WS_MULTI_BIN"}} {
		t.Run(v.name, func(t *testing.T) {
			broker := startBroker(t)
			srv := startServer(t, v.name, binary(t, v.envVar, v.name), broker)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var clients []*wsClient
			for i := range 3 {
				c := dialWS(ctx, t, srv.wsURL())
				c.subscribe(ctx, t, fmt.Sprintf("trades:shutdown-%d", i), "tickers:*")
				clients = append(clients, c)
			}
			closed := make(chan error, len(clients))
			for _, c := range clients {
				go func() {
					// Reads until the server closes; the result is the close status.
					for {
						if _, _, err := c.conn.Read(ctx); err != nil {
							var ce websocket.CloseError
							switch {
							case !errors.As(err, &ce):
								closed <- fmt.Errorf("ended without a close frame: %w", err)
							case ce.Code != websocket.StatusGoingAway || ce.Reason != "shutdown":
								closed <- fmt.Errorf("closed with %d %q, want 1001 \"shutdown\"", ce.Code, ce.Reason)
							default:
								closed <- nil
							}
							return
						}
					}
				}()
			}
			start := time.Now()
			exit := make(chan error, 1)
			go func() { exit <- srv.stop(t, syscall.SIGTERM) }()
			for i := range clients {
				if err := <-closed; err != nil {
					t.Errorf("client %d: %v", i, err)
				}
			}
			if err := <-exit; err != nil {
				t.Fatalf("%s exited with %v after SIGTERM, want 0", v.name, err)
			}
			t.Logf("%s closed %d clients and exited in %v", v.name, len(clients), time.Since(start).Round(time.Millisecond))
		})
	}
}

// TestDrainRefusesUpgrade: while draining, a WebSocket upgrade is answered 503 with
// `Retry-After: 1` (both variants alike) and `Connection: close`, so the client goes to
// another instance at once and its socket is released.
func TestDrainRefusesUpgrade(t *testing.T) {
	for _, v := range []struct{ name, envVar string }{{"ws-single", "WS_SINGLE_BIN"}, {"ws-multi", "WS_MULTI_BIN"}} {
		t.Run(v.name, func(t *testing.T) {
			broker := startBroker(t)
			// A long shutdown timeout and a client that never answers the 1001 keep the
			// server draining while the upgrade is tried.
			srv := startServer(t, v.name, binary(t, v.envVar, v.name), broker, "WS_SHUTDOWN_TIMEOUT=10s")
			hold := rawUpgrade(t, srv.addr)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()

			exit := make(chan error, 1)
			go func() { exit <- srv.stop(t, syscall.SIGTERM) }()
			tr := &http.Transport{DisableKeepAlives: true}
			defer tr.CloseIdleConnections()
			hc := &http.Client{Transport: tr}
			for {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+srv.addr+"/readyz", nil)
				resp, err := hc.Do(req)
				if err != nil {
					t.Fatalf("/readyz while draining: %v", err)
				}
				b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
				resp.Body.Close()
				if resp.StatusCode == http.StatusServiceUnavailable && strings.Contains(string(b), "draining") {
					break
				}
				time.Sleep(10 * time.Millisecond)
			}

			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, srv.wsURL(), nil)
			req.URL.Scheme = "http"
			req.Header.Set("Connection", "Upgrade")
			req.Header.Set("Upgrade", "websocket")
			req.Header.Set("Sec-WebSocket-Version", "13")
			req.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatalf("upgrade while draining: %v", err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusServiceUnavailable {
				t.Errorf("upgrade while draining: status %d, want 503", resp.StatusCode)
			}
			if got := resp.Header.Get("Retry-After"); got != "1" {
				t.Errorf("upgrade while draining: Retry-After %q, want \"1\"", got)
			}
			if !resp.Close {
				t.Errorf("upgrade while draining: no `Connection: close` (header %q)", resp.Header.Get("Connection"))
			}

			hold.Close() // the drain can end now
			if err := <-exit; err != nil {
				t.Fatalf("%s exited with %v after SIGTERM, want 0", v.name, err)
			}
		})
	}
}
