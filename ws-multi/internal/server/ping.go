package server

import (
	"context"
	"time"
)

// Keep-alive pings. Each connection has a runtime timer, not a goroutine: its callback runs
// only when it fires, every WS_PING_INTERVAL from the connect (so pings spread over the
// interval as connections arrived), pings, waits for the pong within WS_WRITE_TIMEOUT and
// re-arms. A pong that does not come back in time ends the connection (ping_timeout,
// without a close frame: the peer does not answer). The reader's reads are what receive
// the pong.

// startPings arms the first ping, one interval after the connect.
func (c *conn) startPings() {
	iv := c.s.cfg.PingInterval
	if iv <= 0 {
		return
	}
	c.mu.Lock() // the callback reads pingTimer under mu
	defer c.mu.Unlock()
	if !c.closed {
		c.pingTimer = time.AfterFunc(iv, c.ping)
	}
}

// stopPing stops the timer; called with mu held when the connection finishes.
func (c *conn) stopPing() {
	if c.pingTimer != nil {
		c.pingTimer.Stop()
	}
}

// ping runs when the ping timer fires, on the timer's goroutine, which counts in bg unless
// the connection is closing: ping, wait for the pong, re-arm.
func (c *conn) ping() {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.bg.Add(1)
	c.mu.Unlock()
	defer c.bg.Done()
	ctx, cancel := context.WithTimeout(c.s.connCtx, c.s.cfg.WriteTimeout)
	err := c.ws.Ping(ctx)
	timedOut := ctx.Err() == context.DeadlineExceeded
	cancel()
	if err != nil {
		if timedOut {
			c.close(ReasonPingTimeout)
		}
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.closed {
		c.pingTimer.Reset(c.s.cfg.PingInterval)
	}
}
