package hub

// Test hooks: they read state the hub loop owns. Call them only inside a
// synctest bubble right after synctest.Wait: the loop is idle then, and Wait
// orders its writes before these reads. ws-multi has the same hooks, with the
// same meanings.

// queued is c's queue length: pending plus the write being flushed.
func queued(c *Client) int { return len(c.pending) + c.inflight }

// pending is how many messages wait in c's queue, not the write in flight.
func pending(c *Client) int { return len(c.pending) }

// inFlight is how many messages c's write in flight carries; 0 without a flusher.
func inFlight(c *Client) int { return c.inflight }

// flushing reports whether c has a write in flight (a flusher).
func flushing(c *Client) bool { return c.flushing }

// queuedLive is how many messages wait in c's queue, not counting the holes conflation left.
func queuedLive(c *Client) int {
	n := 0
	for _, m := range c.pending {
		if m != nil {
			n++
		}
	}
	return n
}

// syncing is how many Sync callers wait for c.
func syncing(c *Client) int { return len(c.syncs) }
