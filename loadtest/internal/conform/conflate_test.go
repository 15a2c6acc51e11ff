package conform

import (
	"fmt"
	"strings"
	"testing"
)

// conflateLog is a client's log of the given lines, one frame each.
func conflateLog(t *testing.T, lines ...string) []item {
	t.Helper()
	out := make([]item, len(lines))
	for i, l := range lines {
		e, err := ParseLine([]byte(l))
		if err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
		out[i] = item{env: e, frame: i + 1, frameLines: 1}
	}
	return out
}

func msgLine(ch string, part int32, off int64, extra string) string {
	return fmt.Sprintf(`{"op":"message","channel":%q,"topic":"t","partition":%d,"offset":%d,"ts":1,"data":{"o":%d}%s}`, ch, part, off, off, extra)
}

func conflatedLine(ch string, part int32, skipped int, to int64) string {
	return fmt.Sprintf(`{"op":"conflated","channel":%q,"topic":"t","partition":%d,"skipped":%d,"to":%d}`, ch, part, skipped, to)
}

func TestVerifyConflated(t *testing.T) {
	a, b := conflateKey{"t:a", 0}, conflateKey{"t:b", 0}
	c := conflateKey{"t:c", 1}
	// a and b share partition 0, alternating; c is alone in partition 1.
	want := keyRecords{a: {10, 12, 14, 16}, b: {11, 13, 15, 17}, c: {0, 1, 2, 3}}
	tests := []struct {
		name      string
		lines     []string
		wantErr   string // "" for none
		wantLines int    // conflated lines found
		wantSkip  int    // records they and counts announce
	}{
		{name: "every record, no conflation", lines: []string{
			msgLine("t:a", 0, 10, ""), msgLine("t:b", 0, 11, ""), msgLine("t:c", 1, 0, ""), msgLine("t:a", 0, 12, ""),
		}},
		{name: "behind: two keys of a partition replaced in turn", lines: []string{
			msgLine("t:a", 0, 10, ""), msgLine("t:b", 0, 11, ""),
			conflatedLine("t:a", 0, 1, 12), msgLine("t:a", 0, 14, ""),
			conflatedLine("t:b", 0, 2, 15), msgLine("t:b", 0, 17, ""),
			conflatedLine("t:c", 1, 3, 2), msgLine("t:c", 1, 3, ""),
		}, wantLines: 3, wantSkip: 6},
		{name: "at an interval: counts in the messages", lines: []string{
			msgLine("t:c", 1, 0, ""), msgLine("t:c", 1, 2, `,"conflated":1`), msgLine("t:c", 1, 3, ""),
		}, wantSkip: 1},
		{name: "a resume's first message replaces the records before it", lines: []string{
			conflatedLine("t:a", 0, 3, 14), msgLine("t:a", 0, 16, ""),
		}, wantLines: 1, wantSkip: 3},
		{name: "other channels are held to the order only", lines: []string{
			msgLine("t:a", 0, 10, ""), msgLine("t:other", 0, 11, ""), msgLine("t:a", 0, 12, ""),
		}},
		{name: "a record missing without a word", lines: []string{
			msgLine("t:a", 0, 10, ""), msgLine("t:a", 0, 14, ""),
		}, wantErr: "1 records between offsets 10 and 14 were not delivered, 0 announced"},
		{name: "the first records missing without a word", lines: []string{
			msgLine("t:c", 1, 2, ""),
		}, wantErr: "2 records between offsets -1 and 2 were not delivered"},
		{name: "a wrong skipped count", lines: []string{
			msgLine("t:a", 0, 10, ""), conflatedLine("t:a", 0, 1, 14), msgLine("t:a", 0, 16, ""),
		}, wantErr: "2 records between offsets 10 and 16 were not delivered, 1 announced"},
		{name: "a wrong to", lines: []string{
			msgLine("t:a", 0, 10, ""), conflatedLine("t:a", 0, 2, 12), msgLine("t:a", 0, 16, ""),
		}, wantErr: "says the last skipped record is at 12, it is at 14"},
		{name: "a line and a count for the same records", lines: []string{
			msgLine("t:a", 0, 10, ""), conflatedLine("t:a", 0, 1, 12), msgLine("t:a", 0, 14, `,"conflated":1`),
		}, wantErr: "1 records between offsets 10 and 14 were not delivered, 2 announced"},
		{name: "a line followed by another channel", lines: []string{
			conflatedLine("t:a", 0, 1, 10), msgLine("t:b", 0, 11, ""),
		}, wantErr: "want at once a message of t:a in partition 0 past offset 10"},
		{name: "a line followed by an older message", lines: []string{
			msgLine("t:a", 0, 10, ""), conflatedLine("t:a", 0, 1, 14), msgLine("t:a", 0, 12, ""),
		}, wantErr: "past offset 14"},
		{name: "a line at the end", lines: []string{
			msgLine("t:a", 0, 10, ""), conflatedLine("t:a", 0, 1, 12),
		}, wantErr: "is followed by nothing"},
		{name: "a line skipping nothing", lines: []string{
			conflatedLine("t:a", 0, 0, 10), msgLine("t:a", 0, 12, ""),
		}, wantErr: `without a count "skipped" of 1 or more`},
		{name: "a line of a key the check did not produce to", lines: []string{
			conflatedLine("t:x", 0, 1, 10), msgLine("t:x", 0, 12, ""),
		}, wantErr: "where the check produced nothing"},
		{name: "offsets of a partition going back across keys", lines: []string{
			msgLine("t:b", 0, 11, ""), msgLine("t:a", 0, 10, ""),
		}, wantErr: "partition 0: offset 10 after 11"},
		{name: "a message that is no record of its key", lines: []string{
			msgLine("t:a", 0, 11, ""),
		}, wantErr: "no record the check produced to it"},
		{name: "a negative count", lines: []string{
			msgLine("t:c", 1, 0, `,"conflated":-1`),
		}, wantErr: `a negative "conflated" count`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := verifyConflated(conflateLog(t, tt.lines...), "t", want)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("verifyConflated: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("verifyConflated error = %v, want one containing %q", err, tt.wantErr)
			case tt.wantErr == "" && (got.lines != tt.wantLines || got.skipped != tt.wantSkip):
				t.Fatalf("%d lines announcing %d skipped, want %d and %d", got.lines, got.skipped, tt.wantLines, tt.wantSkip)
			}
		})
	}
}

func TestCheckLatest(t *testing.T) {
	k := conflateKey{"t:a", 0}
	want := keyRecords{k: {10, 12, 14}}
	tests := []struct {
		name    string
		lines   []string
		data    map[conflateKey]string
		wantErr string
	}{
		{name: "the last record last", lines: []string{msgLine("t:a", 0, 10, ""), conflatedLine("t:a", 0, 1, 12), msgLine("t:a", 0, 14, "")},
			data: map[conflateKey]string{k: `{"o":14}`}},
		{name: "the last record missing", lines: []string{msgLine("t:a", 0, 10, ""), msgLine("t:a", 0, 12, "")},
			wantErr: "the last message of t:a in partition 0 is at offset 12, want the last record, at 14"},
		{name: "other data", lines: []string{msgLine("t:a", 0, 10, ""), msgLine("t:a", 0, 12, ""), msgLine("t:a", 0, 14, "")},
			data: map[conflateKey]string{k: "null"}, wantErr: `carries data {"o":14}, want null`},
		{name: "nothing", wantErr: "no message of t:a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := verifyConflated(conflateLog(t, tt.lines...), "t", want)
			if err != nil {
				t.Fatalf("verifyConflated: %v", err)
			}
			err = checkLatest(got, want, tt.data)
			if (tt.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("checkLatest = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestCheckConflateEcho(t *testing.T) {
	tests := []struct {
		name     string
		reply    string
		conflate any
		ok       bool
	}{
		{"behind", `{"op":"subscribed","id":"e","channels":["t:a"],"conflate":"behind"}`, conflateBehind, true},
		{"interval", `{"op":"subscribed","id":"e","channels":["t:a"],"conflate":{"ms":250},"epochs":{"t":"E"}}`, conflateEvery(250), true},
		{"interval with spaces", `{"op":"subscribed","conflate":{ "ms" : 250 }}`, conflateEvery(250), true},
		{"no echo", `{"op":"subscribed","id":"e","channels":["t:a"]}`, conflateBehind, false},
		{"another interval", `{"op":"subscribed","conflate":{"ms":500}}`, conflateEvery(250), false},
		{"another mode", `{"op":"subscribed","conflate":"behind"}`, conflateEvery(250), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := ParseLine([]byte(tt.reply))
			if err != nil {
				t.Fatal(err)
			}
			if err := checkConflateEcho(e, tt.conflate); (err == nil) != tt.ok {
				t.Fatalf("checkConflateEcho(%s, %v) = %v, want ok %v", tt.reply, tt.conflate, err, tt.ok)
			}
		})
	}
}
