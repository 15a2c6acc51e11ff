package load

// The failover scenario, client side (docs/PROTOCOL.md "Positions and resume"): clients
// subscribe positioned on instance A and keep, per topic and partition, the highest offset
// they have processed; when A's connection ends (A killed, or drained with a draining line
// and a 1001 close) each reconnects to instance B after a jittered delay and resumes with
// one subscribe of all its channels carrying its epochs and positions. Its sequence
// trackers carry on across the reconnect, so a record B replays twice, misses or reorders
// counts as a duplicate, a loss or out of order on the channel, as on any other run.

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"time"
)

// How instance A is ended (Failover.Signal).
const (
	SignalKill = "SIGKILL" // no warning: the clients see their sockets end
	SignalTerm = "SIGTERM" // drain: a draining line with positions and a delay, then 1001
)

// Failover describes a failover run. The scenario's Conns clients connect to URL
// (instance A) and subscribe positioned; Standby more connect to Failover.URL (instance B)
// and stay there for the whole run. At At into the (single) publishing step the runner's
// hook ends A; its clients reconnect to B and resume. The step goes on until every A
// client has its recovered line (or Deadline has passed since A's end), then Tail more,
// and ends there (its duration is only the bound).
type Failover struct {
	// Signal is SignalKill or SignalTerm; the runner's hook sends it to A.
	Signal string `json:"signal"`
	// URL is instance B's WebSocket URL (the bench fills it in).
	URL string `json:"url,omitempty"`
	// Standby is the number of clients on B from the start (B's already-connected
	// clients), indexes Conns to Conns+Standby-1.
	Standby int `json:"standby_conns"`
	// At is how long into the publishing step A is ended.
	At Duration `json:"at"`
	// Window spreads the reconnects of clients that got no draining line (all of them
	// after a SIGKILL) uniformly over [0, Window) after their connection ended. A client
	// that got a draining line waits its reconnect_after_ms instead.
	Window Duration `json:"reconnect_window"`
	// Tail is how long the load goes on once every A client has resumed.
	Tail Duration `json:"tail"`
	// Deadline bounds the wait, from A's end, for every A client to resume.
	Deadline Duration `json:"deadline"`
}

func (f *Failover) validate(s *Scenario) error {
	switch {
	case f.Signal != SignalKill && f.Signal != SignalTerm:
		return fmt.Errorf("failover signal %q: want %s or %s", f.Signal, SignalKill, SignalTerm)
	case s.Mode != ModeBroadcast:
		return errors.New("failover needs broadcast mode (records to count across the reconnect)")
	case len(s.Steps) != 1:
		return fmt.Errorf("failover runs one publishing step (A is ended within it), not %d", len(s.Steps))
	case s.Generic() || len(s.Send) > 0:
		return errors.New("failover speaks this repository's protocol: no send texts or ts-path")
	case s.SlowFraction > 0:
		return errors.New("failover has no slow consumers")
	case f.Standby < 0:
		return fmt.Errorf("failover standby clients %d: need >= 0", f.Standby)
	case f.At <= 0 || f.At >= s.Steps[0].Duration:
		return fmt.Errorf("failover at %s: need inside the step (0, %s)", f.At.D(), s.Steps[0].Duration.D())
	case f.Window < 0 || f.Tail < 0:
		return errors.New("failover reconnect window and tail must be >= 0")
	case f.Deadline <= 0:
		return errors.New("failover deadline must be positive")
	}
	u, err := url.Parse(f.URL)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return fmt.Errorf("failover url %q: want ws://host:port/path", f.URL)
	}
	if !s.AllowRemote {
		if err := requireLoopback(u.Hostname()); err != nil {
			return fmt.Errorf("failover url %q: %w (pass --allow-remote to permit)", f.URL, err)
		}
	}
	return nil
}

// jitter is client idx's reconnect delay after a connection ended without a draining line:
// uniform over [0, Window), the same for the same seed and index on every run.
func (f *Failover) jitter(seed uint64, idx int) time.Duration {
	if f.Window <= 0 {
		return 0
	}
	r := rand.New(rand.NewPCG(seed^0x6661696c6f766572, uint64(idx)))
	return time.Duration(r.Int64N(int64(f.Window)))
}
