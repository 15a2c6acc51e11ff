// Package latency records latencies in an HDR histogram (github.com/HdrHistogram/hdrhistogram-go)
// and summarises them as the percentiles the load-test reports print. Histograms travel
// between worker processes in their compressed HDR encoding and merge without loss of
// precision, so percentiles over many processes are exact to the histogram's resolution.
package latency

import (
	"fmt"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Resolution: values are recorded in microseconds, from 1 µs to 10 minutes, with three
// significant digits (0.1% relative error). Larger values are clamped to the maximum so a
// stalled run still counts every message.
const (
	lowest  = 1
	highest = int64(10 * time.Minute / time.Microsecond)
	digits  = 3
)

// Histogram is a latency histogram in microseconds. It is not safe for concurrent use; the
// load generator shards histograms per connection group and merges them.
type Histogram struct {
	h *hdrhistogram.Histogram
}

// New returns an empty histogram.
func New() *Histogram {
	return &Histogram{h: hdrhistogram.New(lowest, highest, digits)}
}

// Record adds one latency. Negative values (clock steps) count as zero, values above ten
// minutes as ten minutes.
func (h *Histogram) Record(d time.Duration) {
	h.RecordMicros(int64(d / time.Microsecond))
}

// RecordMicros adds one latency given in microseconds.
func (h *Histogram) RecordMicros(us int64) {
	switch {
	case us < lowest:
		us = lowest
	case us > highest:
		us = highest
	}
	// The value is inside the trackable range, so RecordValue cannot fail.
	_ = h.h.RecordValue(us)
}

// Merge adds every value of other into h.
func (h *Histogram) Merge(other *Histogram) {
	if other == nil {
		return
	}
	h.h.Merge(other.h)
}

// Count is the number of recorded values.
func (h *Histogram) Count() int64 { return h.h.TotalCount() }

// Reset empties the histogram.
func (h *Histogram) Reset() { h.h.Reset() }

// Quantile returns the value at quantile q (0..1).
func (h *Histogram) Quantile(q float64) time.Duration {
	return time.Duration(h.h.ValueAtQuantile(q*100)) * time.Microsecond
}

// MarshalJSON encodes the histogram in the compressed HDR V2 format (base64 in JSON), the
// form worker processes stream back to their parent.
func (h *Histogram) MarshalJSON() ([]byte, error) {
	b, err := h.h.Encode(hdrhistogram.V2CompressedEncodingCookieBase)
	if err != nil {
		return nil, fmt.Errorf("latency: encode histogram: %w", err)
	}
	return []byte(`"` + string(b) + `"`), nil
}

// UnmarshalJSON decodes what MarshalJSON produced.
func (h *Histogram) UnmarshalJSON(b []byte) error {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return fmt.Errorf("latency: histogram is not a JSON string")
	}
	d, err := hdrhistogram.Decode(b[1 : len(b)-1])
	if err != nil {
		return fmt.Errorf("latency: decode histogram: %w", err)
	}
	h.h = d
	return nil
}

// Summary is the set of percentiles every report prints, in milliseconds so a JSON reader
// needs no unit conversion.
type Summary struct {
	Count  int64   `json:"count"`
	MeanMs float64 `json:"mean_ms"`
	P50Ms  float64 `json:"p50_ms"`
	P90Ms  float64 `json:"p90_ms"`
	P99Ms  float64 `json:"p99_ms"`
	P999Ms float64 `json:"p999_ms"`
	MaxMs  float64 `json:"max_ms"`
}

// Summarize computes the report percentiles. An empty histogram gives a zero Summary.
func (h *Histogram) Summarize() Summary {
	if h.Count() == 0 {
		return Summary{}
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	return Summary{
		Count:  h.Count(),
		MeanMs: h.h.Mean() / 1000,
		P50Ms:  ms(h.h.ValueAtQuantile(50)),
		P90Ms:  ms(h.h.ValueAtQuantile(90)),
		P99Ms:  ms(h.h.ValueAtQuantile(99)),
		P999Ms: ms(h.h.ValueAtQuantile(99.9)),
		MaxMs:  ms(h.h.Max()),
	}
}
