// This file is duplicated in ws-single (internal/server/reason_test.go) on purpose: the server layer is
// the same for one hub loop and for N shards; they may diverge.

package server

import (
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/adred-codev/ws_poc/ws-multi/internal/auth"
	"github.com/adred-codev/ws_poc/ws-multi/internal/config"
	"github.com/adred-codev/ws_poc/ws-multi/internal/metrics"
	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
	"github.com/adred-codev/ws_poc/ws-multi/internal/readme"
)

// TestReasonsTieMetrics fails when the metrics' series and the owners' lists
// diverge: metrics.New on a fresh registry with the lists main passes, then the
// label values gathered must be exactly ReasonLabels(), RejectReasons and
// protocol.ErrorCodes.
func TestReasonsTieMetrics(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewRegistry()
	metrics.New(reg, metrics.BuildInfo{Variant: config.Variant}, metrics.Labels{
		Rejects: RejectReasons, Disconnects: ReasonLabels(), Errors: protocol.ErrorCodes, AuthFailures: auth.Reasons,
	})
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]string{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				got[mf.GetName()] = append(got[mf.GetName()], l.GetValue())
			}
		}
	}
	tests := []struct {
		name   string
		metric string
		want   []string
	}{
		{name: "disconnect reasons", metric: "ws_disconnects_total", want: ReasonLabels()},
		{name: "reject reasons", metric: "ws_connections_rejected_total", want: RejectReasons},
		{name: "protocol error codes", metric: "ws_protocol_errors_total", want: protocol.ErrorCodes},
		{name: "auth failure reasons", metric: "ws_auth_failures_total", want: auth.Reasons},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			have := slices.Sorted(slices.Values(got[tt.metric]))
			want := slices.Sorted(slices.Values(tt.want))
			if !slices.Equal(have, want) {
				t.Errorf("%s series %v, want %v", tt.metric, have, want)
			}
		})
	}
}

// TestReasonTable: every Reason constant has a row with a unique label, none
// is the "none" row, and the labels are the README's list, in its order.
func TestReasonTable(t *testing.T) {
	t.Parallel()
	if len(reasons) != int(ReasonAuthFailed)+1 {
		t.Fatalf("the table has %d rows for %d reasons", len(reasons), ReasonAuthFailed+1)
	}
	seen := map[string]Reason{}
	for r := ReasonNone; r <= ReasonAuthFailed; r++ {
		label := r.String()
		if label == "" || label == "unknown" {
			t.Errorf("Reason %d has no row", r)
		}
		if prev, ok := seen[label]; ok {
			t.Errorf("Reasons %d and %d share the label %q", prev, r, label)
		}
		seen[label] = r
	}
	if slices.Contains(ReasonLabels(), ReasonNone.String()) {
		t.Errorf("ReasonLabels() = %v lists none", ReasonLabels())
	}
	readme := readme.LabelValues(t)
	if want := readme["ws_disconnects_total"]; !slices.Equal(ReasonLabels(), want) {
		t.Errorf("ReasonLabels() = %v, README lists %v", ReasonLabels(), want)
	}
	if want := readme["ws_connections_rejected_total"]; !slices.Equal(RejectReasons, want) {
		t.Errorf("RejectReasons = %v, README lists %v", RejectReasons, want)
	}
}

// TestCloseFrames is the disconnect table of docs/PROTOCOL.md, as the server
// sends it.
func TestCloseFrames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		reason Reason
		code   int
		text   string
	}{
		{ReasonNone, 0, ""},
		{ReasonClient, 0, ""},
		{ReasonSlow, 1008, "slow"},
		{ReasonWriteTimeout, 0, ""},
		{ReasonReadTimeout, 1008, "read_timeout"},
		{ReasonReadLimit, 1009, "read_limit"},
		{ReasonRateLimit, 1008, "rate_limit"},
		{ReasonBinary, 1003, "binary"},
		{ReasonInvalidUTF8, 1007, "invalid_utf8"},
		{ReasonProtocol, 1002, "protocol"},
		{ReasonPingTimeout, 0, ""},
		{ReasonShutdown, 1001, "shutdown"},
		{ReasonError, 1011, "internal"},
		{ReasonTokenExpired, 4001, "token_expired"},
		{ReasonAuthTimeout, 4002, "auth_timeout"},
		{ReasonAuthFailed, 4003, "auth_failed"},
	}
	for _, tt := range tests {
		t.Run(tt.reason.String(), func(t *testing.T) {
			t.Parallel()
			code, text, ok := tt.reason.closeFrame()
			if int(code) != tt.code || text != tt.text || ok != (tt.code != 0) {
				t.Errorf("closeFrame() = %d %q %v, want %d %q", code, text, ok, tt.code, tt.text)
			}
		})
	}
}
