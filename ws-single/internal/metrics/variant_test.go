package metrics

// touchVariantOnly creates a series of each variant-only vector; ws-single has none.
func touchVariantOnly(*Metrics) {}
