// This file is duplicated from ws-single (internal/protocol/conflate_test.go) on purpose: the
// variants share the protocol and its tests.

package protocol

import (
	"encoding/json"
	"testing"
	"time"
)

func TestParseConflate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		field string // the conflate field's JSON; "" for none
		want  Conflate
		msg   string // the error's message; "" for none
	}{
		{"absent", "", Conflate{}, ""},
		{"null", `null`, Conflate{}, ""},
		{"behind", `"behind"`, Conflate{Mode: ConflateBehind}, ""},
		{"interval 100", `{"ms":100}`, Conflate{Mode: ConflateInterval, Interval: 100 * time.Millisecond}, ""},
		{"interval 5000", `{"ms":5000}`, Conflate{Mode: ConflateInterval, Interval: 5 * time.Second}, ""},
		{"interval with other fields", `{"ms":250,"x":1}`, Conflate{Mode: ConflateInterval, Interval: 250 * time.Millisecond}, ""},
		{"unknown mode", `"latest"`, Conflate{}, msgConflateType},
		{"mode case matters", `"Behind"`, Conflate{}, msgConflateType},
		{"a number", `250`, Conflate{}, msgConflateType},
		{"a boolean", `true`, Conflate{}, msgConflateType},
		{"an array", `["behind"]`, Conflate{}, msgConflateType},
		{"an object without ms", `{"interval":250}`, Conflate{}, msgConflateType},
		{"ms not allowed", `{"ms":300}`, Conflate{}, msgConflateInterval},
		{"ms zero", `{"ms":0}`, Conflate{}, msgConflateInterval},
		{"ms negative", `{"ms":-100}`, Conflate{}, msgConflateInterval},
		{"ms a fraction", `{"ms":100.5}`, Conflate{}, msgConflateInterval},
		{"ms a string", `{"ms":"100"}`, Conflate{}, msgConflateInterval},
		{"ms null", `{"ms":null}`, Conflate{}, msgConflateInterval},
		{"ms huge", `{"ms":1e30}`, Conflate{}, msgConflateInterval},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			frame := `{"op":"subscribe","id":"c","channels":["tickers:*"]}`
			if tt.field != "" {
				frame = `{"op":"subscribe","id":"c","channels":["tickers:*"],"conflate":` + tt.field + `}`
			}
			req, err := Parse([]byte(frame))
			switch {
			case tt.msg == "" && err != nil:
				t.Fatalf("Parse() error = %v", err)
			case tt.msg != "" && (err == nil || err.Code != CodeInvalidRequest || err.Message != tt.msg || err.ID != "c"):
				t.Fatalf("Parse() error = %+v, want invalid_request %q with the id", err, tt.msg)
			case tt.msg == "" && req.Conflate != tt.want:
				t.Fatalf("Conflate = %+v, want %+v", req.Conflate, tt.want)
			}
		})
	}
}

func TestConflateIntervalsAreTicks(t *testing.T) {
	t.Parallel()
	for _, d := range ConflateIntervals {
		if d%ConflateTick != 0 {
			t.Errorf("interval %v is not a multiple of the %v tick", d, ConflateTick)
		}
	}
}

func TestConflateLines(t *testing.T) {
	t.Parallel()
	rec := EncodeRecord(Record{Channel: "tickers:BTC", Topic: "tickers", Partition: 2, Offset: 90, Timestamp: time.UnixMilli(1700000000124), Value: []byte(`{"p":1}`)})
	tomb := EncodeRecord(Record{Channel: "tickers:BTC", Topic: "tickers", Partition: 2, Offset: 91, Timestamp: time.UnixMilli(1700000000125)})
	tests := []struct {
		name string
		got  *Message
		want string
	}{
		{"subscribed behind", EncodeReply(Request{Op: OpSubscribe, ID: "1", HasID: true, Channels: []string{"tickers:*"}, Conflate: Conflate{Mode: ConflateBehind}}),
			`{"op":"subscribed","id":"1","channels":["tickers:*"],"conflate":"behind"}`},
		{"subscribed interval", EncodeReply(Request{Op: OpSubscribe, Channels: []string{"a"}, Conflate: Conflate{Mode: ConflateInterval, Interval: time.Second}}),
			`{"op":"subscribed","channels":["a"],"conflate":{"ms":1000}}`},
		{"subscribed plain", EncodeReply(Request{Op: OpSubscribe, Channels: []string{"a"}}), `{"op":"subscribed","channels":["a"]}`},
		{"positioned subscribed behind", EncodeSubscribed(Request{Op: OpSubscribe, ID: "2", HasID: true, Channels: []string{"a"}, Conflate: Conflate{Mode: ConflateBehind}}, Epochs{"a": "E"}, Positions{"a": {0: 5}}, false),
			`{"op":"subscribed","id":"2","channels":["a"],"conflate":"behind","epochs":{"a":"E"},"positions":{"a":{"0":5}}}`},
		{"conflated line", EncodeConflated(rec, 17, 89),
			`{"op":"conflated","channel":"tickers:BTC","topic":"tickers","partition":2,"skipped":17,"to":89}`},
		{"message with conflated", WithConflated(rec, 3),
			`{"op":"message","channel":"tickers:BTC","topic":"tickers","partition":2,"offset":90,"ts":1700000000124,"data":{"p":1},"conflated":3}`},
		{"empty value with conflated", WithConflated(tomb, 1),
			`{"op":"message","channel":"tickers:BTC","topic":"tickers","partition":2,"offset":91,"ts":1700000000125,"data":null,"conflated":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if string(tt.got.Wire) != tt.want {
				t.Errorf("line = %s\nwant   %s", tt.got.Wire, tt.want)
			}
			if !json.Valid(tt.got.Wire) {
				t.Errorf("line is not valid JSON: %s", tt.got.Wire)
			}
		})
	}
	if c := WithConflated(rec, 3); c.Kind != KindRecord || c.Offset != 90 || c.Channel != rec.Channel || &c.Wire[0] == &rec.Wire[0] {
		t.Errorf("WithConflated = %+v: want a record copy with its own bytes", c)
	}
	if string(rec.Wire) != `{"op":"message","channel":"tickers:BTC","topic":"tickers","partition":2,"offset":90,"ts":1700000000124,"data":{"p":1}}` {
		t.Errorf("WithConflated changed the shared message: %s", rec.Wire)
	}
}
