// This file is part of package metrics, duplicated in ws-multi on purpose; they may diverge.

package metrics

// touchVariantOnly creates a series of each variant-only vector; ws-single has none.
func touchVariantOnly(*Metrics) {}
