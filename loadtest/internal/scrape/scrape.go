// Package scrape reads a server's own figures from its Prometheus /metrics endpoint
// (text exposition format, parsed with github.com/prometheus/common/expfmt), so a load-test
// report can set what the clients saw beside what the server counted.
package scrape

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Sample is one series: its labels and value. Histograms contribute their _count and _sum.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Snapshot is every series of one scrape, by metric name.
type Snapshot map[string][]Sample

// Fetch scrapes url once.
func Fetch(ctx context.Context, client *http.Client, url string) (Snapshot, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	// Ask for the classic text format: it is what expfmt's TextParser reads.
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("scrape %s: status %s", url, resp.Status)
	}
	s, err := Parse(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	return s, nil
}

// Parse reads the text exposition format.
func Parse(r io.Reader) (Snapshot, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	s := make(Snapshot, len(fams))
	for name, f := range fams {
		for _, m := range f.GetMetric() {
			labels := make(map[string]string, len(m.GetLabel()))
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				s[name] = append(s[name], Sample{labels, m.GetCounter().GetValue()})
			case dto.MetricType_GAUGE:
				s[name] = append(s[name], Sample{labels, m.GetGauge().GetValue()})
			case dto.MetricType_HISTOGRAM:
				h := m.GetHistogram()
				s[name+"_count"] = append(s[name+"_count"], Sample{labels, float64(h.GetSampleCount())})
				s[name+"_sum"] = append(s[name+"_sum"], Sample{labels, h.GetSampleSum()})
			case dto.MetricType_SUMMARY:
				sm := m.GetSummary()
				s[name+"_count"] = append(s[name+"_count"], Sample{labels, float64(sm.GetSampleCount())})
				s[name+"_sum"] = append(s[name+"_sum"], Sample{labels, sm.GetSampleSum()})
			default:
				s[name] = append(s[name], Sample{labels, m.GetUntyped().GetValue()})
			}
		}
	}
	return s, nil
}

// Sum adds every series of name whose labels include all of match (name=value pairs).
// A metric that is absent sums to 0.
func (s Snapshot) Sum(name string, match ...string) float64 {
	var total float64
	for _, smp := range s[name] {
		if matches(smp.Labels, match) {
			total += smp.Value
		}
	}
	return total
}

// Has reports whether the scrape had metric name.
func (s Snapshot) Has(name string) bool { return len(s[name]) > 0 }

// ByLabel sums name per value of label, e.g. rejections per reason.
func (s Snapshot) ByLabel(name, label string) map[string]float64 {
	out := map[string]float64{}
	for _, smp := range s[name] {
		out[smp.Labels[label]] += smp.Value
	}
	return out
}

func matches(labels map[string]string, match []string) bool {
	for i := 0; i+1 < len(match); i += 2 {
		if labels[match[i]] != match[i+1] {
			return false
		}
	}
	return true
}

// Figures are the server figures a load-test report prints.
type Figures struct {
	Connections          float64            `json:"ws_connections"`
	ResidentBytes        float64            `json:"process_resident_memory_bytes"`
	CPUSeconds           float64            `json:"process_cpu_seconds_total"`
	Delivered            float64            `json:"ws_messages_delivered_total"`
	Frames               float64            `json:"ws_frames_written_total"`
	BytesWritten         float64            `json:"ws_bytes_written_total"`
	Accepted             float64            `json:"ws_connections_accepted_total"`
	Rejected             map[string]float64 `json:"ws_connections_rejected_total,omitempty"`
	Disconnects          map[string]float64 `json:"ws_disconnects_total,omitempty"`
	QueueOverflows       float64            `json:"ws_send_queue_overflow_total"`
	RecordsConsumed      float64            `json:"ws_kafka_records_consumed_total"`
	DeliveryLatencyCount float64            `json:"ws_delivery_latency_seconds_count"`
	DeliveryLatencySum   float64            `json:"ws_delivery_latency_seconds_sum"`
	HistoryBytes         float64            `json:"ws_history_bytes"`
}

// Figures extracts the report figures.
func (s Snapshot) Figures() Figures {
	return Figures{
		Connections:          s.Sum("ws_connections"),
		ResidentBytes:        s.Sum("process_resident_memory_bytes"),
		CPUSeconds:           s.Sum("process_cpu_seconds_total"),
		Delivered:            s.Sum("ws_messages_delivered_total"),
		Frames:               s.Sum("ws_frames_written_total"),
		BytesWritten:         s.Sum("ws_bytes_written_total"),
		Accepted:             s.Sum("ws_connections_accepted_total"),
		Rejected:             s.ByLabel("ws_connections_rejected_total", "reason"),
		Disconnects:          s.ByLabel("ws_disconnects_total", "reason"),
		QueueOverflows:       s.Sum("ws_send_queue_overflow_total"),
		RecordsConsumed:      s.Sum("ws_kafka_records_consumed_total"),
		DeliveryLatencyCount: s.Sum("ws_delivery_latency_seconds_count"),
		HistoryBytes:         s.Sum("ws_history_bytes"),
		DeliveryLatencySum:   s.Sum("ws_delivery_latency_seconds_sum"),
	}
}

// Sub returns the counters' increase from earlier to f; gauges keep f's value.
func (f Figures) Sub(earlier Figures) Figures {
	d := f
	d.CPUSeconds -= earlier.CPUSeconds
	d.Delivered -= earlier.Delivered
	d.Frames -= earlier.Frames
	d.BytesWritten -= earlier.BytesWritten
	d.Accepted -= earlier.Accepted
	d.QueueOverflows -= earlier.QueueOverflows
	d.RecordsConsumed -= earlier.RecordsConsumed
	d.DeliveryLatencyCount -= earlier.DeliveryLatencyCount
	d.DeliveryLatencySum -= earlier.DeliveryLatencySum
	d.Rejected = subMap(f.Rejected, earlier.Rejected)
	d.Disconnects = subMap(f.Disconnects, earlier.Disconnects)
	return d
}

func subMap(a, b map[string]float64) map[string]float64 {
	out := map[string]float64{}
	for k, v := range a {
		if d := v - b[k]; d != 0 {
			out[k] = d
		}
	}
	return out
}

// FormatMap renders a label map as "a=1 b=2" in key order, "-" when empty.
func FormatMap[V int64 | float64](m map[string]V) string {
	if len(m) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%v", k, m[k])
	}
	return strings.Join(parts, " ")
}
