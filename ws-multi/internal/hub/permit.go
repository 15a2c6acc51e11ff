package hub

import (
	"context"
	"slices"

	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// RevokedReason is the reason of the unsubscribed line for channels a refreshed token no
// longer allows.
const RevokedReason = "forbidden"

// Permit is what a client's credentials allow, applied in order with its requests (Hub.Permit).
type Permit struct {
	// Allows reports whether the client may keep channel; nil keeps every channel. It runs on
	// the goroutine that owns the client and must be cheap (auth.Patterns.Allows is).
	Allows func(channel string) bool
	// MaxSubscriptions caps the client's channels below Config.MaxSubscriptions; 0 sets no
	// cap of its own. Channels held past a lowered cap stay; new subscribes are refused.
	MaxSubscriptions int
	// Reply, if set, is queued after the unsubscribed line (the "authed" reply).
	Reply *protocol.Message
}

// Permit applies p to c, on c's shard, after the requests sent before it: the channels p no longer allows
// are unsubscribed, announced in one {"op":"unsubscribed","channels":[…],"reason":"forbidden"}
// line, then p.Reply is queued. The caller checks new subscribes against the same
// credentials before Handle; this is for credentials that changed.
func (h *Hub) Permit(ctx context.Context, c *Client, p Permit) error {
	return c.shard.send(ctx, event{kind: evPermit, client: c, permit: p})
}

// permit applies p to c (Hub.Permit).
func (s *shard) permit(c *Client, p Permit) {
	if c.gone {
		return
	}
	c.maxSubs = p.MaxSubscriptions
	if p.Allows != nil {
		var revoked []string
		for ch := range c.subs {
			if !p.Allows(ch) {
				revoked = append(revoked, ch)
			}
		}
		if len(revoked) > 0 {
			for _, ch := range revoked {
				s.unsubscribe(c, ch)
			}
			s.hub.metrics.Subscriptions.Sub(float64(len(revoked)))
			slices.Sort(revoked) // map order is random; the line is easier to read and test sorted
			s.enqueue(c, protocol.EncodeRevoked(revoked, RevokedReason))
		}
	}
	if p.Reply != nil {
		s.enqueue(c, p.Reply)
	}
	s.dropSlow()
}

// subscriptionLimit is how many channels c may hold.
func (s *shard) subscriptionLimit(c *Client) int {
	if c.maxSubs > 0 && c.maxSubs < s.hub.cfg.MaxSubscriptions {
		return c.maxSubs
	}
	return s.hub.cfg.MaxSubscriptions
}
