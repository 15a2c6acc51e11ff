package metrics

// touchVariantOnly creates a series of each ws-multi-only vector: shard labels
// are only known once the hub has started.
func touchVariantOnly(m *Metrics) {
	m.ShardQueueDepth.WithLabelValues("0").Set(1)
	m.ShardFanout.WithLabelValues("0").Observe(0.0001)
}
