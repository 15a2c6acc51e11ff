// This file is duplicated from ws-single (internal/history/ring_test.go) on purpose: the
// variants share the history.

package history

import (
	"fmt"
	"testing"
	"time"

	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

var t0 = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

// msg is record offset off of partition 0, stamped sec seconds after t0, size bytes long.
func msg(off int64, sec, size int) *protocol.Message {
	return &protocol.Message{Kind: protocol.KindRecord, Channel: "t:a", Topic: "t", Offset: off, Time: t0.Add(time.Duration(sec) * time.Second), Wire: make([]byte, size)}
}

func offsets(r *Ring, after, before int64) (string, bool) {
	var got []int64
	ok := r.Replay(after, before, func(m *protocol.Message) { got = append(got, m.Offset) })
	return fmt.Sprint(got), ok
}

func TestRingBounds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		cfg      Config
		appended []*protocol.Message
		from     int64
		records  int
	}{
		{"within bounds", Config{Records: 10, Bytes: 1000}, []*protocol.Message{msg(5, 0, 10), msg(7, 1, 10)}, 5, 2},
		{"records", Config{Records: 2, Bytes: 1000}, []*protocol.Message{msg(5, 0, 10), msg(7, 1, 10), msg(9, 2, 10)}, 6, 2},
		{"bytes", Config{Records: 10, Bytes: 25}, []*protocol.Message{msg(5, 0, 10), msg(7, 1, 10), msg(9, 2, 10)}, 6, 2},
		{"one record larger than the bytes is kept", Config{Records: 10, Bytes: 5}, []*protocol.Message{msg(5, 0, 10), msg(7, 1, 10)}, 6, 1},
		{"age", Config{Records: 10, Bytes: 1000, MaxAge: 5 * time.Second}, []*protocol.Message{msg(5, 0, 10), msg(7, 3, 10), msg(9, 7, 10)}, 6, 2},
		{"off", Config{}, []*protocol.Message{msg(5, 0, 10), msg(7, 1, 10)}, 8, 0},
		{"grows past its first buffer", Config{Records: 100, Bytes: 1 << 20}, func() []*protocol.Message {
			var ms []*protocol.Message
			for i := range 150 {
				ms = append(ms, msg(int64(i), 0, 1))
			}
			return ms
		}(), 50, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := newRing(tt.cfg, 5)
			for _, m := range tt.appended {
				r.Append(m)
			}
			st := r.Stats()
			if st.From != tt.from || st.Records != tt.records {
				t.Errorf("from %d, %d records; want from %d, %d records", st.From, st.Records, tt.from, tt.records)
			}
			if want := tt.appended[len(tt.appended)-1].Offset + 1; st.Next != want {
				t.Errorf("next = %d, want %d", st.Next, want)
			}
		})
	}
}

func TestRingReplayCoverage(t *testing.T) {
	t.Parallel()
	r := newRing(Config{Records: 3, Bytes: 1000}, 10)
	for _, off := range []int64{10, 12, 13, 17} { // 10 is dropped: held from 11
		r.Append(msg(off, 0, 1))
	}
	tests := []struct {
		after, before int64
		want          string
		covered       bool
	}{
		{10, 18, "[12 13 17]", true},
		{11, 17, "[12 13]", true},
		{13, 18, "[17]", true},
		{17, 18, "[]", true},
		{9, 18, "[]", false}, // 10 is no longer held
	}
	for _, tt := range tests {
		got, ok := offsets(r, tt.after, tt.before)
		if ok != tt.covered || (ok && got != tt.want) {
			t.Errorf("Replay(%d, %d) = %s, %v; want %s, %v", tt.after, tt.before, got, ok, tt.want, tt.covered)
		}
	}
	r.Reset(40)
	if _, ok := offsets(r, 17, 40); ok {
		t.Error("a reset ring still covers what it held before")
	}
	if got, ok := offsets(r, 39, 41); !ok || got != "[]" {
		t.Errorf("after Reset(40), Replay(39, 41) = %s, %v; want [], true", got, ok)
	}
	if r.Start() != 40 {
		t.Errorf("Start() = %d after Reset(40)", r.Start())
	}
}

func TestRingAfterTime(t *testing.T) {
	t.Parallel()
	r := newRing(Config{Records: 10, Bytes: 1000}, 0)
	for i, sec := range []int{0, 10, 20, 30} {
		r.Append(msg(int64(i), sec, 1))
	}
	tests := []struct {
		sec  int
		want int64
		ok   bool
	}{
		{15, 1, true},  // first at or after: offset 2, so after 1
		{20, 1, true},  // at: included
		{40, 3, true},  // nothing at or after: after the last
		{-5, 0, false}, // older than the ring's oldest: Kafka must answer
	}
	for _, tt := range tests {
		got, ok := r.AfterTime(t0.Add(time.Duration(tt.sec) * time.Second))
		if ok != tt.ok || (ok && got != tt.want) {
			t.Errorf("AfterTime(+%ds) = %d, %v; want %d, %v", tt.sec, got, ok, tt.want, tt.ok)
		}
	}
	r.SetLogStart(0) // the ring holds the log from its start: it answers any time
	if got, ok := r.AfterTime(t0.Add(-5 * time.Second)); !ok || got != -1 {
		t.Errorf("AfterTime(before everything) with the whole log = %d, %v; want -1, true", got, ok)
	}
}
