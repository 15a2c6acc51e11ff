package load

// A failover client's reconnect and resume: once A's connection ends it waits its delay,
// dials B and resumes there with one subscribe carrying its epochs and positions.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/coder/websocket"
)

// dialAttempts bounds a failover client's handshakes with B; between attempts it waits
// attempt x dialBackoff (jittered by nothing: B is up, a refusal is a finding).
const (
	dialAttempts = 3
	dialBackoff  = 250 * time.Millisecond
)

// failover is an A client's life after A's connection ended (left, as the read loop saw
// it): wait, dial B, resume, read on until the run ends.
func (g *group) failover(ctx context.Context, k, idx int, cs *connState, left error) {
	fo := cs.fo
	now := time.Now()
	fo.stage, fo.leftNs = stageLeft, now.UnixNano()
	at := now.Add(g.sc.Failover.jitter(g.sc.Seed, idx))
	if fo.drainNs > 0 {
		at = time.Unix(0, fo.drainNs).Add(fo.drainAfter)
	}
	g.mu.Lock()
	g.fo.left[closeCause(ctx, left)]++
	g.fo.delay.Record(at.Sub(now))
	g.mu.Unlock()
	g.left.Add(1)
	if !sleepUntil(ctx, at) {
		return
	}

	var c *websocket.Conn
	var start time.Time
	for attempt := 1; ; attempt++ {
		start = time.Now()
		hctx, cancel := context.WithTimeout(ctx, g.sc.HandshakeTimeout.D())
		var resp *http.Response
		var err error
		c, resp, err = websocket.Dial(hctx, g.sc.Failover.URL, &websocket.DialOptions{HTTPClient: g.dialers.pick(idx, dialFast)})
		cancel()
		if err == nil {
			break
		}
		if ctx.Err() != nil {
			return
		}
		if attempt == dialAttempts {
			g.resumeFailed(cs, "dial_"+dialCause(ctx, resp, err))
			return
		}
		g.mu.Lock()
		g.fo.retries++
		g.mu.Unlock()
		if !sleepUntil(ctx, time.Now().Add(time.Duration(attempt)*dialBackoff)) {
			return
		}
	}
	defer c.CloseNow()
	if !g.track(c) {
		return
	}
	defer g.untrack(c)
	c.SetReadLimit(readLimit)

	resumeStart := time.Now()
	fo.stage, fo.resumeNs = stageResuming, resumeStart.UnixNano()
	g.mu.Lock()
	g.fo.handshake.Record(resumeStart.Sub(start))
	g.fo.resumes++
	if g.fo.firstResume == 0 || fo.resumeNs < g.fo.firstResume {
		g.fo.firstResume = fo.resumeNs
	}
	g.mu.Unlock()
	if err := g.sendResume(ctx, c, cs); err != nil {
		g.resumeFailed(cs, "send_"+closeCause(ctx, err))
		return
	}
	code, err := g.read(ctx, c, k, cs, resumeStart)
	switch {
	case code != "":
		g.resumeFailed(cs, "error_"+code)
	case err == nil || ctx.Err() != nil:
		// The run ended; a resume still under way counts as unfinished in the result.
	case fo.stage == stageLive || fo.stage == stageFailed:
		g.ended(ctx, cs, err)
	default:
		g.resumeFailed(cs, "closed_"+closeCause(ctx, err))
	}
}

// sendResume sends one subscribe of all the client's channels with its epochs and
// positions. A client without positions (its subscribed reply carried none) subscribes
// plainly: its resume cannot be made, which the missing recovered line will show.
func (g *group) sendResume(ctx context.Context, c *websocket.Conn, cs *connState) error {
	type resume struct {
		Epochs    map[string]string           `json:"epochs,omitempty"`
		Positions map[string]map[string]int64 `json:"positions"`
	}
	req := struct {
		Op       string   `json:"op"`
		ID       string   `json:"id"`
		Channels []string `json:"channels"`
		Resume   *resume  `json:"resume,omitempty"`
	}{Op: "subscribe", ID: subscribeID}
	for _, ch := range cs.channels {
		req.Channels = append(req.Channels, g.names[ch])
	}
	if len(cs.fo.pos) > 0 {
		req.Resume = &resume{Epochs: cs.fo.epochs, Positions: cs.fo.pos.wire()}
	}
	b, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("encode resume: %w", err)
	}
	wctx, cancel := context.WithTimeout(ctx, g.sc.SubscribeTimeout.D())
	defer cancel()
	return c.Write(wctx, websocket.MessageText, b)
}

// sleepUntil waits until t; false when ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
