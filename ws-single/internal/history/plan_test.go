// This file is duplicated from ws-multi (internal/history/plan_test.go) on purpose: the
// variants share the history.

package history

import (
	"fmt"
	"testing"
	"time"

	"github.com/adred-codev/ws_poc/ws-single/internal/protocol"
)

func TestPlan(t *testing.T) {
	t.Parallel()
	newHist := func(t *testing.T) *History {
		h, err := New(Config{Records: 100, Bytes: 1 << 20}, []string{"t", "u"})
		if err != nil {
			t.Fatal(err)
		}
		h.Attach("t", "E1", map[int32]int64{0: 10, 1: 10})
		for off := int64(10); off < 20; off++ {
			h.Ring(Part{"t", 0}).Append(msg(off, 0, 1))
		}
		h.Ring(Part{"t", 0}).SetLogStart(5)
		return h
	}
	// The hub has fanned out partition 0 up to 19 and nothing of partition 1.
	frontier := func(p Part) int64 {
		if p.Partition == 0 {
			return 20
		}
		return -1
	}
	tests := []struct {
		name   string
		r      *protocol.Resume
		ranges string
		skip   string
		reason string
		live   string
	}{
		{"positioned, no resume", nil, "[]", "map[]", "", "map[t:map[0:19 1:9]]"},
		{"resume from memory", &protocol.Resume{Positions: protocol.Positions{"t": {0: 14, 1: 9}}}, "[{{t 0} 14 20 0001-01-01 00:00:00 +0000 UTC}]", "map[]", "", "map[t:map[0:19 1:9]]"},
		{"older than the ring", &protocol.Resume{Positions: protocol.Positions{"t": {0: 6}}}, "[{{t 0} 6 20 0001-01-01 00:00:00 +0000 UTC}]", "map[]", "", "map[t:map[0:19 1:9]]"},
		{"out of retention", &protocol.Resume{Positions: protocol.Positions{"t": {0: 2}}}, "[]", "map[]", "out_of_retention", "map[t:map[0:19 1:9]]"},
		{"epoch changed", &protocol.Resume{Epochs: protocol.Epochs{"t": "E0"}, Positions: protocol.Positions{"t": {0: 14}}}, "[]", "map[]", "epoch_changed", "map[t:map[0:19 1:9]]"},
		{"ahead of this instance", &protocol.Resume{Positions: protocol.Positions{"t": {0: 25}}}, "[]", "map[{t 0}:25]", "", "map[t:map[0:25 1:9]]"},
		{"a failed plan undoes a skip", &protocol.Resume{Epochs: protocol.Epochs{"t": "E1"}, Positions: protocol.Positions{"t": {0: 25, 1: 2}}}, "[]", "map[]", "out_of_retention", "map[t:map[0:19 1:9]]"},
		{"caught up", &protocol.Resume{Positions: protocol.Positions{"t": {0: 19}}}, "[]", "map[]", "", "map[t:map[0:19 1:9]]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newHist(t)
			if tt.name == "a failed plan undoes a skip" {
				h.Ring(Part{"t", 1}).SetLogStart(8)
			}
			p := h.Plan([]string{"t:a", "nope:x"}, tt.r, frontier)
			if got := fmt.Sprint(p.Ranges); got != tt.ranges {
				t.Errorf("ranges = %s, want %s", got, tt.ranges)
			}
			if got := fmt.Sprint(p.Skip); got != tt.skip {
				t.Errorf("skip = %s, want %s", got, tt.skip)
			}
			if p.Reason != tt.reason {
				t.Errorf("reason = %q, want %q", p.Reason, tt.reason)
			}
			if got := fmt.Sprint(p.Live); got != tt.live {
				t.Errorf("live = %s, want %s", got, tt.live)
			}
			if got := fmt.Sprint(p.Epochs); got != "map[t:E1]" {
				t.Errorf("epochs = %s, want only the consumed topic's", got)
			}
		})
	}
}

func TestMatch(t *testing.T) {
	t.Parallel()
	m := NewMatch([]string{"t:a", "u:*"})
	tests := []struct {
		msg  protocol.Message
		want bool
	}{
		{protocol.Message{Kind: protocol.KindRecord, Channel: "t:a", Topic: "t"}, true},
		{protocol.Message{Kind: protocol.KindRecord, Channel: "t:b", Topic: "t"}, false},
		{protocol.Message{Kind: protocol.KindRecord, Channel: "u:x", Topic: "u"}, true},
		{protocol.Message{Kind: protocol.KindRecord, Channel: "u", Topic: "u"}, true},
		{protocol.Message{Kind: protocol.KindRecord, Channel: "ux", Topic: "u"}, false},
		{protocol.Message{Kind: protocol.KindGap, Topic: "u"}, false},
	}
	for _, tt := range tests {
		if got := m.Matches(&tt.msg); got != tt.want {
			t.Errorf("Matches(%+v) = %v, want %v", tt.msg, got, tt.want)
		}
	}
}

// TestPlanUnattachedTopic: a resume of a topic the server consumes but has not attached yet
// (starting, or Kafka down) is not recovered, "unavailable", naming the topic: live would
// start wherever the consumer does. A topic the server does not consume is ignored, as
// before, and so is an unattached topic the resume has no position for.
func TestPlanUnattachedTopic(t *testing.T) {
	t.Parallel()
	h, err := New(Config{Records: 10, Bytes: 1 << 20}, []string{"t", "u"})
	if err != nil {
		t.Fatal(err)
	}
	h.Attach("t", "E1", map[int32]int64{0: 0})
	none := func(Part) int64 { return -1 }
	tests := []struct {
		name     string
		channels []string
		resume   *protocol.Resume
		reason   string
		topic    string
	}{
		{"positions of an unattached topic", []string{"t:a", "u:x"}, &protocol.Resume{Positions: protocol.Positions{"t": {0: -1}, "u": {0: 5}}}, protocol.NotRecoveredUnavailable, "u"},
		{"since_ts with an unattached topic", []string{"u:*"}, &protocol.Resume{SinceTS: time.UnixMilli(1)}, protocol.NotRecoveredUnavailable, "u"},
		{"no position for the unattached topic", []string{"t:a", "u:x"}, &protocol.Resume{Positions: protocol.Positions{"t": {0: -1}}}, "", ""},
		{"a topic not consumed", []string{"v:x"}, &protocol.Resume{Positions: protocol.Positions{"v": {0: 5}}}, "", ""},
		{"a positioned subscribe", []string{"u:x"}, nil, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := h.Plan(tt.channels, tt.resume, none)
			if p.Reason != tt.reason || p.Topic != tt.topic {
				t.Errorf("reason, topic = %q, %q; want %q, %q", p.Reason, p.Topic, tt.reason, tt.topic)
			}
			if tt.reason != "" && len(p.Ranges) != 0 {
				t.Errorf("ranges %v for a resume not recovered", p.Ranges)
			}
		})
	}
}
