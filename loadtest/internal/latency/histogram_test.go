package latency

import (
	"encoding/json"
	"math"
	"testing"
	"time"
)

func TestSummarizePercentiles(t *testing.T) {
	t.Parallel()
	h := New()
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	s := h.Summarize()
	tests := []struct {
		name      string
		got, want float64
	}{
		{"p50", s.P50Ms, 500},
		{"p90", s.P90Ms, 900},
		{"p99", s.P99Ms, 990},
		{"p99.9", s.P999Ms, 999},
		{"max", s.MaxMs, 1000},
		{"mean", s.MeanMs, 500.5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			// Three significant digits: 0.1% relative error at most.
			if math.Abs(tt.got-tt.want) > tt.want*0.001+0.001 {
				t.Errorf("%s = %v, want %v ±0.1%%", tt.name, tt.got, tt.want)
			}
		})
	}
	if s.Count != 1000 {
		t.Errorf("count = %d, want 1000", s.Count)
	}
}

func TestMergeEqualsRecordingIntoOne(t *testing.T) {
	t.Parallel()
	a, b, all := New(), New(), New()
	for i := range 5000 {
		d := time.Duration(i*i%7919) * time.Microsecond * 13
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	a.Merge(b)
	if a.Summarize() != all.Summarize() {
		t.Errorf("merged %+v, want %+v", a.Summarize(), all.Summarize())
	}
}

func TestJSONRoundTrip(t *testing.T) {
	t.Parallel()
	h := New()
	for i := range 100 {
		h.RecordMicros(int64(i * 37))
	}
	b, err := json.Marshal(struct{ H *Histogram }{h})
	if err != nil {
		t.Fatal(err)
	}
	var out struct{ H *Histogram }
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if out.H.Summarize() != h.Summarize() {
		t.Errorf("round trip %+v, want %+v", out.H.Summarize(), h.Summarize())
	}
}

func TestClampAndEmpty(t *testing.T) {
	t.Parallel()
	h := New()
	if s := h.Summarize(); s != (Summary{}) {
		t.Errorf("empty summary %+v, want zero", s)
	}
	h.Record(-time.Second)
	h.Record(time.Hour)
	if h.Count() != 2 {
		t.Fatalf("count = %d, want 2 (out-of-range values are clamped, not dropped)", h.Count())
	}
	if max := h.Summarize().MaxMs; max < 599_000 || max > 601_000 {
		t.Errorf("max = %vms, want about 10 minutes", max)
	}
}
