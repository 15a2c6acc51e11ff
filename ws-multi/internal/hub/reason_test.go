package hub

import (
	"slices"
	"testing"

	"github.com/coder/websocket"

	"github.com/adred-codev/ws_poc/ws-multi/internal/metrics"
)

// TestReasonsAreTheMetricLabels: every Reason but ReasonNone is one documented label of
// ws_disconnects_total, in the README's order, and the other way round.
func TestReasonsAreTheMetricLabels(t *testing.T) {
	t.Parallel()
	var labels []string
	for r := ReasonClient; int(r) < len(reasonLabels); r++ {
		labels = append(labels, r.String())
	}
	if !slices.Equal(labels, metrics.DisconnectReasons) {
		t.Errorf("reasons %v, metrics.DisconnectReasons %v", labels, metrics.DisconnectReasons)
	}
}

// TestCloseFrames is the disconnect table of the spec: reason -> close code and text.
func TestCloseFrames(t *testing.T) {
	t.Parallel()
	tests := []struct {
		reason Reason
		code   websocket.StatusCode // 0: no close frame
		text   string
	}{
		{ReasonClient, 0, ""},
		{ReasonSlow, websocket.StatusPolicyViolation, "slow"},
		{ReasonWriteTimeout, 0, ""},
		{ReasonReadTimeout, websocket.StatusPolicyViolation, "read_timeout"},
		{ReasonReadLimit, websocket.StatusMessageTooBig, ""},
		{ReasonRateLimit, websocket.StatusPolicyViolation, "rate_limit"},
		{ReasonBinary, websocket.StatusUnsupportedData, "binary"},
		{ReasonInvalidUTF8, websocket.StatusInvalidFramePayloadData, "invalid_utf8"},
		{ReasonProtocol, websocket.StatusProtocolError, "protocol"},
		{ReasonPingTimeout, 0, ""},
		{ReasonShutdown, websocket.StatusGoingAway, "shutdown"},
		{ReasonError, websocket.StatusInternalError, "internal"},
	}
	for _, tt := range tests {
		code, text, ok := tt.reason.closeFrame()
		if ok != (tt.code != 0) || code != tt.code || text != tt.text {
			t.Errorf("%v: close frame %d %q (%v), want %d %q", tt.reason, code, text, ok, tt.code, tt.text)
		}
	}
}
