package hub

// Test hooks: they read state a shard owns. Call them only inside a synctest bubble right
// after synctest.Wait: the shards are idle then, and Wait orders their writes before these
// reads. ws-single has the same hooks, with the same meanings.

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

// syncing is how many Sync callers wait for c: at most one here (a later Sync replaces an
// earlier one that gave up).
func syncing(c *Client) int {
	if c.synced != nil {
		return 1
	}
	return 0
}

// shardOf returns the index of c's shard.
func shardOf(c *Client) int { return c.shard.index }

// registered is the number of registered connections (atomic: readable anywhere).
func registered(h *Hub) int {
	n := 0
	for _, s := range h.shards {
		n += int(s.load.Load())
	}
	return n
}
