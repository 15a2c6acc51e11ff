// This file is duplicated from ws-single (internal/kafka/ready.go) on purpose: the variants share the consumer.

package kafka

// Reasons Ready gives for not being ready (the body of a 503 /readyz).
const (
	NotReadyDetached = "kafka not attached"
	NotReadyCatchUp  = "catching up"
	NotReadyLagging  = "lagging"
)

// Ready reports whether the instance should get clients, and why not: Kafka attached, every
// partition once consumed up to the high-water mark read when the consumer first attached
// (the warm start has loaded the history, so a client reconnecting here after a deploy is
// served from memory), and the summed lag at most Config.ReadyMaxLag (0: no bound).
func (c *Consumer) Ready() (bool, string) {
	if !c.Attached() {
		return false, NotReadyDetached
	}
	if !c.caughtUp.Load() {
		if !c.reachedTargets() {
			return false, NotReadyCatchUp
		}
		c.caughtUp.Store(true) // once caught up, only the lag counts
	}
	if limit := c.cfg.ReadyMaxLag; limit > 0 && c.lag.Load() > int64(limit) {
		return false, NotReadyLagging
	}
	return true, ""
}

// reachedTargets reports whether every partition's next offset reached its target.
func (c *Consumer) reachedTargets() bool {
	c.readyMu.Lock()
	defer c.readyMu.Unlock()
	if c.targets == nil {
		return false
	}
	for k, target := range c.targets {
		if c.nextOffset(k).Load() < target {
			return false
		}
	}
	return true
}

// setTargets sets the catch-up targets at the first attach only: later sessions resume,
// and a restart must not make a serving instance unready.
func (c *Consumer) setTargets(hwms map[partitionKey]int64) {
	c.readyMu.Lock()
	defer c.readyMu.Unlock()
	if c.targets == nil {
		c.targets = hwms
	}
}

// dropTarget forgets k's target: a partition restarted elsewhere (offset reset, new epoch)
// may never reach a high-water mark of its old log.
func (c *Consumer) dropTarget(k partitionKey) {
	c.readyMu.Lock()
	defer c.readyMu.Unlock()
	delete(c.targets, k)
}
