// This file is duplicated in ws-single (internal/server/ping.go) on purpose: the server layer is
// the same for one hub loop and for N shards; they may diverge.

package server

import (
	"context"
	"errors"
	"net"
	"time"
)

// Keep-alive pings: a per-connection runtime timer (no goroutine while idle)
// whose callback pings, waits for the pong within the write timeout, and
// re-arms; no pong in time ends the connection as ping_timeout, without a
// close frame (the peer is not answering). A peer whose socket took bytes while
// the pong was awaited is reading, only slowly (a mobile link behind a backlog:
// the ping waits behind what it has to read), so it is pinged and waited for
// again; one that stops reading is cut by the next wait, or by the write timeout.

// maxPingFrame is the largest ping frame (a control frame's 125-byte payload and its
// header): a socket that took no more than the ping itself took nothing its peer read.
const maxPingFrame = 2 + 125

// startPings arms the ping timer.
func (c *conn) startPings() {
	c.mu.Lock() // the callback reads pingTimer under mu
	c.pingTimer = time.AfterFunc(c.s.cfg.PingInterval, c.ping)
	c.mu.Unlock()
}

// ping runs when the ping timer fires: ping, wait for the pong within the
// write timeout, re-arm.
func (c *conn) ping() {
	if !c.goBackground() {
		return
	}
	defer c.bg.Done()
	for {
		sent := c.cork.sent.Load()
		ctx, cancel := context.WithTimeout(context.Background(), c.s.cfg.WriteTimeout)
		err := c.ws.Ping(ctx)
		cancel()
		if err == nil {
			break
		}
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if c.cork.sent.Load()-sent <= maxPingFrame {
			if c.setReason(ReasonPingTimeout) {
				c.dropSocket()
			}
			return
		}
	}
	c.mu.Lock()
	if !c.finished {
		c.pingTimer.Reset(c.s.cfg.PingInterval)
	}
	c.mu.Unlock()
}
