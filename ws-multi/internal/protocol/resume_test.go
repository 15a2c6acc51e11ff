// This file is duplicated from ws-single (internal/protocol/resume_test.go) on purpose: the
// variants share the protocol.

package protocol

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestParseResume(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		frame      string
		positioned bool
		resume     string // fmt of *Resume's fields, "" for none
		msg        string // error message, "" for none
	}{
		{"positioned", `{"op":"subscribe","channels":["t:a"],"positioned":true}`, true, "", ""},
		{"positioned false", `{"op":"subscribe","channels":["t:a"],"positioned":false}`, false, "", ""},
		{"positioned not a boolean", `{"op":"subscribe","channels":["t:a"],"positioned":1}`, false, "", "positioned must be a boolean"},
		{"positions", `{"op":"subscribe","channels":["t:a"],"resume":{"epochs":{"t":"E"},"positions":{"t":{"0":12,"3":-1}}}}`, true, "map[t:E] map[t:map[0:12 3:-1]]", ""},
		{"since", `{"op":"subscribe","channels":["t:a"],"resume":{"since_ts":1700000000000}}`, true, "since 1700000000000", ""},
		{"null resume is none", `{"op":"subscribe","channels":["t:a"],"resume":null}`, false, "", ""},
		{"resume on unsubscribe ignored", `{"op":"unsubscribe","channels":["t:a"],"resume":5}`, false, "", ""},
		{"not an object", `{"op":"subscribe","channels":["t:a"],"resume":[1]}`, false, "", "resume must be an object"},
		{"both", `{"op":"subscribe","channels":["t:a"],"resume":{"since_ts":1,"positions":{"t":{"0":1}}}}`, false, "", "resume takes positions or since_ts, not both"},
		{"neither", `{"op":"subscribe","channels":["t:a"],"resume":{}}`, false, "", "resume needs positions or since_ts"},
		{"since zero", `{"op":"subscribe","channels":["t:a"],"resume":{"since_ts":0}}`, false, "", "resume.since_ts must be a positive integer (milliseconds)"},
		{"since a string", `{"op":"subscribe","channels":["t:a"],"resume":{"since_ts":"1"}}`, false, "", "resume.since_ts must be a positive integer (milliseconds)"},
		{"positions not a map", `{"op":"subscribe","channels":["t:a"],"resume":{"positions":[1]}}`, false, "", "resume.positions must map topics to {partition: offset}"},
		{"positions empty", `{"op":"subscribe","channels":["t:a"],"resume":{"positions":{}}}`, false, "", "resume.positions must map topics to {partition: offset}"},
		{"offset not an integer", `{"op":"subscribe","channels":["t:a"],"resume":{"positions":{"t":{"0":1.5}}}}`, false, "", "resume.positions must map topics to {partition: offset}"},
		{"bad topic", `{"op":"subscribe","channels":["t:a"],"resume":{"positions":{"a b":{"0":1}}}}`, false, "", `resume.positions: channel "a b": invalid character ' '`},
		{"topic with a colon", `{"op":"subscribe","channels":["t:a"],"resume":{"positions":{"t:x":{"0":1}}}}`, false, "", `resume.positions: topic "t:x": invalid character ':'`},
		{"partition not a number", `{"op":"subscribe","channels":["t:a"],"resume":{"positions":{"t":{"x":1}}}}`, false, "", `resume.positions: partition "x" is not a partition number`},
		{"partition with a leading zero", `{"op":"subscribe","channels":["t:a"],"resume":{"positions":{"t":{"01":1}}}}`, false, "", `resume.positions: partition "01" is not a partition number`},
		{"negative partition", `{"op":"subscribe","channels":["t:a"],"resume":{"positions":{"t":{"-1":1}}}}`, false, "", `resume.positions: partition "-1" is not a partition number`},
		{"offset below -1", `{"op":"subscribe","channels":["t:a"],"resume":{"positions":{"t":{"0":-2}}}}`, false, "", "resume.positions: offsets are at least -1"},
		{"epochs not strings", `{"op":"subscribe","channels":["t:a"],"resume":{"positions":{"t":{"0":1}},"epochs":{"t":1}}}`, false, "", "resume.epochs must map topics to strings"},
		{"too many topics", `{"op":"subscribe","channels":["t:a"],"resume":{"positions":{` + manyTopics(MaxResumeTopics+1) + `}}}`, false, "", "resume.positions has more than 64 topics"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			req, err := Parse([]byte(tt.frame))
			if tt.msg != "" {
				if err == nil || err.Code != CodeInvalidRequest || err.Message != tt.msg {
					t.Fatalf("Parse() error = %v, want invalid_request %q", err, tt.msg)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse() = %v", err)
			}
			if req.Positioned != tt.positioned {
				t.Errorf("Positioned = %v, want %v", req.Positioned, tt.positioned)
			}
			got := ""
			switch r := req.Resume; {
			case r == nil:
			case !r.SinceTS.IsZero():
				got = fmt.Sprintf("since %d", r.SinceTS.UnixMilli())
			default:
				got = fmt.Sprint(r.Epochs, " ", r.Positions)
			}
			if got != tt.resume {
				t.Errorf("Resume = %q, want %q", got, tt.resume)
			}
		})
	}
}

func manyTopics(n int) string {
	var parts []string
	for i := range n {
		parts = append(parts, fmt.Sprintf(`"t%d":{"0":1}`, i))
	}
	return strings.Join(parts, ",")
}

func TestResumeLines(t *testing.T) {
	t.Parallel()
	req := Request{Op: OpSubscribe, ID: "7", HasID: true, Channels: []string{"t:a", "u:*"}}
	epochs := Epochs{"u": "U1", "t": "T1"}
	pos := Positions{"u": {1: 5, 0: -1}, "t": {0: 12}}
	tests := []struct {
		name string
		got  *Message
		want string
	}{
		{"positioned subscribed", EncodeSubscribed(req, epochs, pos, false),
			`{"op":"subscribed","id":"7","channels":["t:a","u:*"],"epochs":{"t":"T1","u":"U1"},"positions":{"t":{"0":12},"u":{"0":-1,"1":5}}}`},
		{"recovering subscribed", EncodeSubscribed(req, epochs, nil, true),
			`{"op":"subscribed","id":"7","channels":["t:a","u:*"],"recovering":true,"epochs":{"t":"T1","u":"U1"}}`},
		{"recovered", EncodeRecovered(Recovered{ID: "7", HasID: true, Recovered: true, Source: SourceKafka, Replayed: 42, Epochs: epochs, Positions: pos}),
			`{"op":"recovered","id":"7","recovered":true,"source":"kafka","replayed":42,"epochs":{"t":"T1","u":"U1"},"positions":{"t":{"0":12},"u":{"0":-1,"1":5}}}`},
		{"not recovered", EncodeRecovered(Recovered{Reason: NotRecoveredOutOfRetention, Topic: "t", Partition: 0, Earliest: 100, Epochs: Epochs{}, Positions: Positions{}}),
			`{"op":"recovered","recovered":false,"reason":"out_of_retention","topic":"t","partition":0,"earliest":100,"replayed":0,"epochs":{},"positions":{}}`},
		{"not recovered, no partition", EncodeRecovered(Recovered{Reason: NotRecoveredBusy, Partition: -1, Earliest: -1, Epochs: Epochs{}, Positions: Positions{}}),
			`{"op":"recovered","recovered":false,"reason":"busy","replayed":0,"epochs":{},"positions":{}}`},
		{"mark", EncodeMark("t", map[int32]int64{2: 9, 0: 4}), `{"op":"mark","topic":"t","positions":{"0":4,"2":9}}`},
		{"gap", EncodeGap("t", 1, 7001, 9000, GapOffsetReset), `{"op":"gap","topic":"t","partition":1,"from":7001,"to":9000,"reason":"offset_reset"}`},
		{"draining", EncodeDraining(1500, epochs, pos),
			`{"op":"draining","reconnect_after_ms":1500,"epochs":{"t":"T1","u":"U1"},"positions":{"t":{"0":12},"u":{"0":-1,"1":5}}}`},
	}
	for _, tt := range tests {
		if got := string(tt.got.Wire); got != tt.want {
			t.Errorf("%s:\n got %s\nwant %s", tt.name, got, tt.want)
		}
	}
	if g := EncodeGap("t", 1, 1, 2, GapOffsetReset); g.Kind != KindGap || g.Topic != "t" || g.Partition != 1 || g.Offset != 2 {
		t.Errorf("gap routing = %+v, want KindGap on t/1 up to 2", g)
	}
	if e := SinceTooOld(time.Hour, "", false); e.Message != "resume.since_ts is older than the maximum age of 1h0m0s" {
		t.Errorf("SinceTooOld message = %q", e.Message)
	}
}
