package hub

// Test hooks: they run code on a client's shard goroutine, which owns the client's queue.

// inShard runs fn in c's shard goroutine and waits for it.
func inShard(c *Client, fn func()) {
	_ = c.shard.call(bg, event{fn: fn})
}

// queued returns c's queue length: pending plus the write being flushed.
func queued(c *Client) (n int) {
	inShard(c, func() { n = len(c.pending) + c.inflight })
	return n
}

// flushing reports whether c has a write in flight.
func flushing(c *Client) (f bool) {
	inShard(c, func() { f = c.flushing })
	return f
}

// syncWaits reports whether a Sync of c waits in its shard.
func syncWaits(c *Client) (w bool) {
	inShard(c, func() { w = c.synced != nil })
	return w
}

// shardOf returns the index of c's shard.
func shardOf(c *Client) int { return c.shard.index }
