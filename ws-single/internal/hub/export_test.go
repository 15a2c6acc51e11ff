package hub

// Test hooks: they read state the hub loop owns. Call them only inside a
// synctest bubble right after synctest.Wait: the loop is idle then, and Wait
// orders its writes before these reads.

// queued is how many messages wait in c's queue (not the write in flight).
func queued(c *Client) int { return len(c.pending) }

// syncing is how many Sync callers wait for c.
func syncing(c *Client) int { return len(c.syncs) }

// inFlight reports whether c has a write in flight (a flusher).
func inFlight(c *Client) bool { return c.flushing }
