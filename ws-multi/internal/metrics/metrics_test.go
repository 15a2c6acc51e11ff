// This file is part of package metrics, duplicated in ws-single on purpose; they may diverge.

package metrics

import (
	"os"
	"reflect"
	"regexp"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

const variant = "ws-multi"

// readmeMetric is one row of the README metrics table.
type readmeMetric struct {
	name, typ string
	labels    []string            // label names
	values    map[string][]string // documented values per label, when listed
}

func readmeMetrics(t *testing.T) map[string]readmeMetric {
	t.Helper()
	b, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatalf("read README: %v", err)
	}
	row := regexp.MustCompile("(?m)^\\| `(ws_[a-z_]+)` \\| ([a-z]+) \\|([^|]*)\\|(.*)\\|$")
	label := regexp.MustCompile("`([a-z0-9_]+)`(: ([^;]*))?")
	quoted := regexp.MustCompile("`([a-z0-9_]+)`")
	out := map[string]readmeMetric{}
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		if strings.Contains(m[4], "ws-multi only") && variant != "ws-multi" {
			continue
		}
		rm := readmeMetric{name: m[1], typ: m[2], values: map[string][]string{}}
		// The labels column reads "`a`, `b`", "`reason`: `x`, `y`",
		// "`topic`, `reason`: `x`, `y`" or groups of those separated by ";": in a
		// group the values belong to its last label.
		for _, group := range strings.Split(m[3], ";") {
			i := strings.Index(group, ":")
			if i < 0 {
				for _, l := range label.FindAllStringSubmatch(group, -1) {
					rm.labels = append(rm.labels, l[1])
				}
				continue
			}
			var name string
			for _, l := range quoted.FindAllStringSubmatch(group[:i], -1) {
				name = l[1]
				rm.labels = append(rm.labels, name)
			}
			for _, v := range quoted.FindAllStringSubmatch(group[i:], -1) {
				rm.values[name] = append(rm.values[name], v[1])
			}
		}
		out[rm.name] = rm
	}
	if len(out) < 20 {
		t.Fatalf("found only %d ws_ metrics in README", len(out))
	}
	return out
}

func gather(t *testing.T, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	out := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		out[mf.GetName()] = mf
	}
	return out
}

// TestEveryREADMEMetricIsGathered fails when a metric is renamed, retyped or
// relabelled on either side of the README contract.
func TestEveryREADMEMetricIsGathered(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, BuildInfo{Variant: variant, Version: "v1.2.3", Commit: "abc1234"}, testLabels(readmeMetrics(t)))
	// Vectors keyed by Kafka topic or partition have no series until used.
	m.KafkaRecords.WithLabelValues("trades").Inc()
	m.KafkaSkipped.WithLabelValues("trades", "too_large").Inc()
	m.KafkaLag.WithLabelValues("trades", "0").Set(3)
	m.HistoryRecords.WithLabelValues("trades", "0").Set(1)
	m.HistoryBytes.WithLabelValues("trades", "0").Set(1)
	m.HistoryOldestAge.WithLabelValues("trades", "0").Set(1)
	m.LiveGaps.WithLabelValues("trades", "offset_reset").Inc()
	touchVariantOnly(m)

	got := gather(t, reg)
	want := readmeMetrics(t)
	for name, rm := range want {
		mf, ok := got[name]
		if !ok {
			t.Errorf("README metric %s is not gathered", name)
			continue
		}
		if typ := strings.ToLower(mf.GetType().String()); typ != rm.typ {
			t.Errorf("%s: type %s, README says %s", name, typ, rm.typ)
		}
		var labels []string
		for _, lp := range mf.GetMetric()[0].GetLabel() {
			labels = append(labels, lp.GetName())
		}
		sort.Strings(labels)
		wantLabels := slices.Clone(rm.labels)
		sort.Strings(wantLabels)
		if !slices.Equal(labels, wantLabels) {
			t.Errorf("%s: labels %v, README says %v", name, labels, wantLabels)
		}
	}
	for name := range got {
		if strings.HasPrefix(name, "ws_") {
			if _, ok := want[name]; !ok {
				t.Errorf("metric %s is gathered but not in the README table", name)
			}
		}
	}
	for _, prefix := range []string{"go_", "process_"} {
		found := false
		for name := range got {
			found = found || strings.HasPrefix(name, prefix)
		}
		if !found {
			t.Errorf("no %s* metrics gathered", prefix)
		}
	}
}

// testLabels are the README's documented reject and disconnect reasons and
// two error codes (docs/PROTOCOL.md lists those): metrics owns no list.
func testLabels(readme map[string]readmeMetric) Labels {
	return Labels{
		Rejects:      readme["ws_connections_rejected_total"].values["reason"],
		Disconnects:  readme["ws_disconnects_total"].values["reason"],
		Errors:       []string{"invalid_json", "unknown_op"},
		AuthFailures: readme["ws_auth_failures_total"].values["reason"],
	}
}

// TestLabelValuesPreinitialised checks that New gives every label value it is
// handed a series at 0 before anything happens (the README's documented values
// here; the owners' lists are tied to the table by server's reason_test.go).
func TestLabelValuesPreinitialised(t *testing.T) {
	readme := readmeMetrics(t)
	labels := testLabels(readme)
	tests := []struct {
		name   string
		metric string
		label  string
		values []string
	}{
		{name: "reject reasons", metric: "ws_connections_rejected_total", label: "reason", values: labels.Rejects},
		{name: "disconnect reasons", metric: "ws_disconnects_total", label: "reason", values: labels.Disconnects},
		{name: "protocol error codes", metric: "ws_protocol_errors_total", label: "code", values: labels.Errors},
		{name: "auth failure reasons", metric: "ws_auth_failures_total", label: "reason", values: labels.AuthFailures},
	}
	reg := prometheus.NewRegistry()
	New(reg, BuildInfo{Variant: variant}, labels)
	got := gather(t, reg)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			values := tt.values
			if len(values) == 0 {
				t.Fatalf("no %s values of %s", tt.label, tt.metric)
			}
			var seen []string
			for _, s := range got[tt.metric].GetMetric() {
				if v := s.GetCounter().GetValue(); v != 0 {
					t.Errorf("%s %v = %v, want 0", tt.metric, s.GetLabel(), v)
				}
				seen = append(seen, s.GetLabel()[0].GetValue())
			}
			sort.Strings(seen)
			want := slices.Clone(values)
			sort.Strings(want)
			if !slices.Equal(seen, want) {
				t.Errorf("%s series %v, want %v", tt.metric, seen, want)
			}
		})
	}
}

func TestBuildInfo(t *testing.T) {
	reg := prometheus.NewRegistry()
	New(reg, BuildInfo{Variant: variant, Version: "v1.2.3", Commit: "abc1234"}, Labels{})
	mf := gather(t, reg)["ws_build_info"]
	if mf == nil || len(mf.GetMetric()) != 1 {
		t.Fatalf("ws_build_info = %v, want one series", mf)
	}
	s := mf.GetMetric()[0]
	if v := s.GetGauge().GetValue(); v != 1 {
		t.Errorf("ws_build_info = %v, want 1", v)
	}
	labels := map[string]string{}
	for _, lp := range s.GetLabel() {
		labels[lp.GetName()] = lp.GetValue()
	}
	want := map[string]string{"variant": variant, "version": "v1.2.3", "commit": "abc1234", "go_version": runtime.Version()}
	if !reflect.DeepEqual(labels, want) {
		t.Errorf("ws_build_info labels = %v, want %v", labels, want)
	}
}

func TestDeliveryLatencyBuckets(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg, BuildInfo{Variant: variant}, Labels{})
	m.DeliveryLatency.Observe(0.0003) // below the first bucket
	m.DeliveryLatency.Observe(0.002)
	m.DeliveryLatency.Observe(7) // above the last: only +Inf
	h := gather(t, reg)["ws_delivery_latency_seconds"].GetMetric()[0].GetHistogram()
	b := h.GetBucket()
	if first, last := b[0].GetUpperBound(), b[len(b)-1].GetUpperBound(); first != 0.0005 || last != 5 {
		t.Errorf("buckets span %v..%v, want 0.0005..5", first, last)
	}
	if c := b[0].GetCumulativeCount(); c != 1 {
		t.Errorf("0.5 ms bucket count = %d, want 1", c)
	}
	if c := b[len(b)-1].GetCumulativeCount(); c != 2 {
		t.Errorf("5 s bucket count = %d, want 2", c)
	}
	if c := h.GetSampleCount(); c != 3 {
		t.Errorf("sample count = %d, want 3", c)
	}
}

func TestNewTwiceOnOneRegistryPanics(t *testing.T) {
	reg := prometheus.NewRegistry()
	New(reg, BuildInfo{Variant: variant}, Labels{})
	defer func() {
		if recover() == nil {
			t.Fatal("second New on the same registry did not panic")
		}
	}()
	New(reg, BuildInfo{Variant: variant}, Labels{})
}
