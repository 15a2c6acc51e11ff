package e2etest

import (
	"context"
	"errors"
	"fmt"
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
