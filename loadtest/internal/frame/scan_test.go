package frame

import (
	"testing"
)

func TestScan(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		line string
		want Fields
	}{
		{
			name: "message",
			line: `{"op":"message","channel":"trades:lt-3","topic":"trades","partition":2,"offset":1234,"ts":1700000000123,"data":{"sent_ns":1700000000123456789,"seq":42,"step":1,"pad":"xx"}}`,
			want: Fields{Kind: Message, Channel: []byte("trades:lt-3"), Partition: 2, Offset: 1234, SentNs: 1700000000123456789, Seq: 42, Step: 1},
		},
		{
			name: "message from the synthetic feed has no send time",
			line: `{"op":"message","channel":"trades:BTC-USD","topic":"trades","partition":0,"offset":7,"ts":1,"data":{"price":"1.5"}}`,
			want: Fields{Kind: Message, Channel: []byte("trades:BTC-USD"), Offset: 7},
		},
		{
			name: "subscribed",
			line: `{"op":"subscribed","id":"lt","channels":["trades:lt-1","trades:lt-2"]}`,
			want: Fields{Kind: Subscribed, ID: []byte("lt"), Offset: -1},
		},
		{
			name: "error",
			line: `{"op":"error","id":"lt","code":"too_many_subscriptions","message":"x"}`,
			want: Fields{Kind: Error, ID: []byte("lt"), Code: []byte("too_many_subscriptions"), Offset: -1},
		},
		{
			name: "pong",
			line: `{"op":"pong","id":"3"}`,
			want: Fields{Kind: Other, Offset: -1},
		},
		{
			name: "garbage",
			line: `not json at all`,
			want: Fields{Kind: Other, Offset: -1},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var f Fields
			Scan([]byte(tt.line), &f)
			if f.Kind != tt.want.Kind || string(f.Channel) != string(tt.want.Channel) || f.Partition != tt.want.Partition ||
				f.Offset != tt.want.Offset || f.SentNs != tt.want.SentNs || f.Seq != tt.want.Seq || f.Step != tt.want.Step ||
				string(f.ID) != string(tt.want.ID) || string(f.Code) != string(tt.want.Code) {
				t.Errorf("Scan = %+v, want %+v", f, tt.want)
			}
		})
	}
}

func TestLines(t *testing.T) {
	t.Parallel()
	var got []string
	Lines([]byte("a\nbb\n\nccc"), func(l []byte) { got = append(got, string(l)) })
	if len(got) != 3 || got[0] != "a" || got[1] != "bb" || got[2] != "ccc" {
		t.Errorf("Lines = %q, want [a bb ccc]", got)
	}
}

func TestExtractor(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                   string
		ts, unit, channel, seq string
		frame                  string
		wantN                  int
		wantSentNs             int64
		wantChannel            string
		wantSeq                uint64
	}{
		{
			name: "nested ns", ts: "data.sent_ns", unit: "ns", channel: "stream", seq: "data.seq",
			frame: `{"stream":"btc","data":{"sent_ns":1000,"seq":5}}`,
			wantN: 1, wantSentNs: 1000, wantChannel: "btc", wantSeq: 5,
		},
		{
			name: "milliseconds, two values per frame", ts: "T", unit: "ms",
			frame: "{\"T\":2}\n{\"T\":2}",
			wantN: 2, wantSentNs: 2_000_000,
		},
		{
			name: "double-encoded payload", ts: "payload.sent_ns", unit: "ns",
			frame: `{"payload":"{\"sent_ns\":77}"}`,
			wantN: 1, wantSentNs: 77,
		},
		{
			name: "array index", ts: "a.1.t", unit: "s",
			frame: `{"a":[{"t":1},{"t":3}]}`,
			wantN: 1, wantSentNs: 3_000_000_000,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e, err := NewExtractor(tt.ts, tt.unit, tt.channel, tt.seq)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			err = e.Extract([]byte(tt.frame), func(f *Fields) {
				n++
				if f.Kind != Message || f.SentNs != tt.wantSentNs || string(f.Channel) != tt.wantChannel || f.Seq != tt.wantSeq {
					t.Errorf("fields %+v, want sent_ns %d channel %q seq %d", f, tt.wantSentNs, tt.wantChannel, tt.wantSeq)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if n != tt.wantN {
				t.Errorf("%d values, want %d", n, tt.wantN)
			}
		})
	}
	if _, err := NewExtractor("", "ns", "", ""); err == nil {
		t.Error("empty path accepted")
	}
	if _, err := NewExtractor("x", "weeks", "", ""); err == nil {
		t.Error("unknown unit accepted")
	}
}

func FuzzScan(f *testing.F) {
	f.Add([]byte(`{"op":"message","channel":"a","partition":1,"offset":2,"data":{"sent_ns":3,"seq":4}}`))
	f.Add([]byte(`{"op":"subscribed","id":"lt"}`))
	f.Add([]byte(`"offset":-`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var fl Fields
		Scan(b, &fl)
		Lines(b, func([]byte) {})
	})
}

func BenchmarkScan(b *testing.B) {
	line := []byte(`{"op":"message","channel":"trades:lt-3","topic":"trades","partition":2,"offset":1234,"ts":1700000000123,"data":{"sent_ns":1700000000123456789,"seq":42,"step":1,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}`)
	var f Fields
	for b.Loop() {
		Scan(line, &f)
	}
}

func FuzzExtract(f *testing.F) {
	f.Add([]byte(`{"data":{"sent_ns":1,"seq":2},"ch":"a"}`))
	f.Add([]byte(`{"data":"{\"sent_ns\":5}"}`))
	f.Add([]byte("[1,2]\n{\"data\":[3]}"))
	e, err := NewExtractor("data.sent_ns", "ns", "ch", "data.seq")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = e.Extract(b, func(*Fields) {})
	})
}
