// This file is duplicated from ws-multi (internal/history/channels_test.go) on purpose: the
// variants share the history.

package history

import (
	"fmt"
	"testing"

	"github.com/adred-codev/ws_poc/ws-single/internal/protocol"
)

// on is record off of channel ch (topic "t").
func on(ch string, off int64) *protocol.Message {
	return &protocol.Message{Kind: protocol.KindRecord, Channel: ch, Topic: "t", Offset: off, Wire: []byte{1}}
}

func TestReplayMatch(t *testing.T) {
	t.Parallel()
	r := newRing(Config{Records: 6, Bytes: 1 << 20}, 0)
	// offsets 0..9: a at 0,3,6,9; b at 1,4,7; t:x at 2,5,8. The ring keeps 4..9.
	for off := range int64(10) {
		r.Append(on([]string{"t:a", "t:b", "t:x"}[off%3], off))
	}
	tests := []struct {
		name          string
		channels      []string
		after, before int64
		want          string
		visited       int
		covered       bool
	}{
		{"one channel visits only its records", []string{"t:a"}, 3, 10, "[6 9]", 2, true},
		{"two channels in offset order", []string{"t:b", "t:a"}, 3, 10, "[4 6 7 9]", 4, true},
		{"before bounds it", []string{"t:a", "t:b"}, 3, 7, "[4 6]", 2, true},
		{"a channel the ring does not hold", []string{"t:none"}, 3, 10, "[]", 0, true},
		{"a wildcard scans the range", []string{"t:*"}, 3, 10, "[4 5 6 7 8 9]", 6, true},
		{"a wildcard and a channel: once each", []string{"t:*", "t:a"}, 5, 10, "[6 7 8 9]", 4, true},
		{"not covered", []string{"t:a"}, 1, 10, "[]", 0, false},
	}
	for _, tt := range tests {
		var got []int64
		ok, n := r.ReplayMatch(NewMatch(tt.channels), "t", tt.after, tt.before, func(m *protocol.Message) { got = append(got, m.Offset) })
		if s := fmt.Sprint(got); ok != tt.covered || (ok && (s != tt.want || n != tt.visited)) {
			t.Errorf("%s: %s, %d visited, covered %v; want %s, %d, %v", tt.name, s, n, ok, tt.want, tt.visited, tt.covered)
		}
	}
	if got := len(r.channels); got != 3 {
		t.Errorf("index holds %d channels, want 3", got)
	}
	r.Reset(20)
	if len(r.channels) != 0 {
		t.Errorf("index holds %v after Reset", r.channels)
	}
}

// TestQuietChannelOnABusyPartition: resuming one quiet channel costs its records, not the
// partition's, and dropped records leave the index.
func TestQuietChannelOnABusyPartition(t *testing.T) {
	t.Parallel()
	r := newRing(Config{Records: 10000, Bytes: 1 << 30}, 0)
	for off := range int64(30000) {
		ch := "t:busy"
		if off%5000 == 0 {
			ch = "t:quiet"
		}
		r.Append(on(ch, off))
	}
	var got []int64
	ok, n := r.ReplayMatch(NewMatch([]string{"t:quiet"}), "t", 19999, 30000, func(m *protocol.Message) { got = append(got, m.Offset) })
	if !ok || n != 2 || fmt.Sprint(got) != "[20000 25000]" {
		t.Errorf("quiet replay = %v, %d visited, covered %v; want [20000 25000], 2, true", got, n, ok)
	}
	if l := len(r.channels["t:quiet"]); l != 2 {
		t.Errorf("index keeps %d quiet records, want the 2 the ring holds", l)
	}
	if l := len(r.channels["t:busy"]); l != 9998 {
		t.Errorf("index keeps %d busy records, want 9998", l)
	}
}
