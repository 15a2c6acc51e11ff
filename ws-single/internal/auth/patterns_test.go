// This file is duplicated from ws-multi (internal/auth/patterns_test.go) on purpose: the
// variants share token verification and channel permissions.

package auth

import (
	"fmt"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParsePatterns(t *testing.T) {
	t.Parallel()
	tooMany := make([]string, MaxPatterns+1)
	for i := range tooMany {
		tooMany[i] = fmt.Sprintf("t:%d", i)
	}
	tests := []struct {
		name    string
		list    []string
		wantErr string // substring of the error; "" accepts
	}{
		{name: "nil", list: nil},
		{name: "exact channel", list: []string{"trades:BTC-USD"}},
		{name: "exact bare topic", list: []string{"trades"}},
		{name: "exact with colons", list: []string{"trades:a:b"}},
		{name: "topic wildcard", list: []string{"trades:*"}},
		{name: "key prefix", list: []string{"trades:BTC*"}},
		{name: "key prefix ending in colon", list: []string{"trades:a:*"}},
		{name: "several", list: []string{"trades:BTC-USD", "book:*", "ticker:ETH*"}},
		{name: "duplicates", list: []string{"trades:*", "trades:*"}},
		{name: "longest", list: []string{"t:" + strings.Repeat("k", maxPatternLen-2)}},
		{name: "MaxPatterns", list: tooMany[:MaxPatterns]},
		{name: "empty", list: []string{""}, wantErr: "must be 1 to 256 bytes"},
		{name: "empty after a good one", list: []string{"trades:*", ""}, wantErr: `pattern ""`},
		{name: "too long", list: []string{"t:" + strings.Repeat("k", maxPatternLen-1)}, wantErr: "must be 1 to 256 bytes"},
		{name: "space", list: []string{"trades:BTC USD"}, wantErr: "invalid character"},
		{name: "tab", list: []string{"trades:\t"}, wantErr: "invalid character"},
		{name: "newline", list: []string{"trades\n"}, wantErr: "invalid character"},
		{name: "DEL", list: []string{"trades:\x7f"}, wantErr: "invalid character"},
		{name: "non-ASCII", list: []string{"trades:é"}, wantErr: "invalid character"},
		{name: "double quote", list: []string{`trades:"x"`}, wantErr: "invalid character"},
		{name: "backslash", list: []string{`trades:\x`}, wantErr: "invalid character"},
		{name: "star in the middle", list: []string{"trades:B*C"}, wantErr: "only at the end"},
		{name: "star in the topic", list: []string{"tra*des:x"}, wantErr: "only at the end"},
		{name: "two stars", list: []string{"trades:**"}, wantErr: "only at the end"},
		{name: "topic star without colon", list: []string{"trades*"}, wantErr: `must follow "<topic>:"`},
		{name: "star alone", list: []string{"*"}, wantErr: "empty topic"},
		{name: "colon star", list: []string{":*"}, wantErr: "empty topic"},
		{name: "empty topic", list: []string{":x"}, wantErr: "empty topic"},
		{name: "colon alone", list: []string{":"}, wantErr: "empty topic"},
		{name: "more than MaxPatterns", list: tooMany, wantErr: "at most 1024"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := ParsePatterns(tt.list)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParsePatterns(%q) = %v, want nil", tt.list, err)
				}
				if p.Empty() != (len(tt.list) == 0) {
					t.Errorf("ParsePatterns(%q).Empty() = %v", tt.list, p.Empty())
				}
				return
			}
			if err == nil {
				t.Fatalf("ParsePatterns(%q) = nil error, want one containing %q", tt.list, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("ParsePatterns error = %q, want it to contain %q", err, tt.wantErr)
			}
			if !p.Empty() {
				t.Errorf("a refused list returned non-empty Patterns %q", p)
			}
		})
	}
}

// TestParsePatternsQuotesLong checks that an error quotes at most 64 bytes of a bad pattern.
func TestParsePatternsQuotesLong(t *testing.T) {
	t.Parallel()
	bad := "trades:" + strings.Repeat("x", 100) + " "
	_, err := ParsePatterns([]string{bad})
	if err == nil {
		t.Fatal("want an error")
	}
	if strings.Contains(err.Error(), bad[:65]) {
		t.Errorf("error %q quotes more than 64 bytes of the pattern", err)
	}
	if !strings.Contains(err.Error(), bad[:64]+"...") {
		t.Errorf("error %q does not quote the first 64 bytes followed by ...", err)
	}
}

func TestPatternsAllows(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		patterns []string
		allow    []string
		refuse   []string
	}{
		{
			name:     "exact",
			patterns: []string{"trades:BTC-USD"},
			allow:    []string{"trades:BTC-USD"},
			refuse:   []string{"trades:BTC", "trades:BTC-USDT", "trades", "trades:*", "book:BTC-USD", "Trades:BTC-USD"},
		},
		{
			name:     "exact bare topic",
			patterns: []string{"trades"},
			allow:    []string{"trades"},
			refuse:   []string{"trades:x", "trades:*", "tradesx"},
		},
		{
			name:     "topic wildcard",
			patterns: []string{"trades:*"},
			allow:    []string{"trades", "trades:k", "trades:a:b", "trades:*", "trades:"},
			refuse:   []string{"book:k", "book:*", "book", "tradesx:k", "trade:k", "tradesx"},
		},
		{
			name:     "key prefix",
			patterns: []string{"trades:BTC*"},
			allow:    []string{"trades:BTC", "trades:BTC-USD", "trades:BTC:x"},
			refuse:   []string{"trades:*", "trades", "trades:", "trades:ETH-USD", "trades:XBTC", "book:BTC-USD", "tradesx:BTC"},
		},
		{
			name:     "key prefix with colon",
			patterns: []string{"trades:a:*"},
			allow:    []string{"trades:a:b", "trades:a:"},
			refuse:   []string{"trades:a", "trades:*", "trades:ab"},
		},
		{
			name:     "mixed",
			patterns: []string{"trades:BTC-USD", "book:*", "ticker:ETH*", "ticker:SOL*"},
			allow:    []string{"trades:BTC-USD", "book:x", "book:*", "book", "ticker:ETH-USD", "ticker:SOL-USD"},
			refuse:   []string{"trades:ETH-USD", "trades:*", "ticker:*", "ticker:ADA-USD", "ticker", "other:x"},
		},
		{
			name:     "nothing",
			patterns: nil,
			refuse:   []string{"trades", "trades:k", "trades:*", "", ":"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := ParsePatterns(tt.patterns)
			if err != nil {
				t.Fatalf("ParsePatterns(%q): %v", tt.patterns, err)
			}
			for _, ch := range tt.allow {
				if !p.Allows(ch) {
					t.Errorf("%q.Allows(%q) = false, want true", tt.patterns, ch)
				}
			}
			for _, ch := range tt.refuse {
				if p.Allows(ch) {
					t.Errorf("%q.Allows(%q) = true, want false", tt.patterns, ch)
				}
			}
		})
	}
}

func TestPatternsZeroValue(t *testing.T) {
	t.Parallel()
	var p Patterns
	for _, ch := range []string{"trades", "trades:k", "trades:*", ""} {
		if p.Allows(ch) {
			t.Errorf("zero Patterns allows %q", ch)
		}
	}
	if !p.Empty() {
		t.Error("zero Patterns is not Empty")
	}
}

// TestPatternsIndexed: past indexThreshold exact channels and topics are looked up in a map,
// and the answers are the scan's.
func TestPatternsIndexed(t *testing.T) {
	t.Parallel()
	var list []string
	for i := range 3 * indexThreshold {
		list = append(list, fmt.Sprintf("t:k%d", i), fmt.Sprintf("topic%d:*", i))
	}
	list = append(list, "t:pre*")
	p, err := ParsePatterns(list)
	if err != nil {
		t.Fatal(err)
	}
	if p.exactSet == nil || p.topicSet == nil {
		t.Fatalf("%d exact channels and topics are not indexed", 3*indexThreshold)
	}
	for ch, want := range map[string]bool{
		"t:k0": true, "t:k47": true, "t:k48": false, "topic7:x": true, "topic7:*": true, "topic7": true,
		"topic99:x": false, "t:prefix": true, "t:pr": false, "t:*": false,
	} {
		if got := p.Allows(ch); got != want {
			t.Errorf("Allows(%q) = %v, want %v", ch, got, want)
		}
	}
}

func TestPatternsEmpty(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		list []string
		want bool
	}{
		{name: "nil", list: nil, want: true},
		{name: "empty list", list: []string{}, want: true},
		{name: "exact", list: []string{"a:b"}, want: false},
		{name: "topic", list: []string{"a:*"}, want: false},
		{name: "prefix", list: []string{"a:b*"}, want: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := ParsePatterns(tt.list)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.Empty(); got != tt.want {
				t.Errorf("ParsePatterns(%q).Empty() = %v, want %v", tt.list, got, tt.want)
			}
		})
	}
}

// FuzzParsePatterns checks that parsing never panics, that an accepted exact pattern
// allows itself, that an accepted "<topic>:*" allows its wildcard channel and that nothing
// but "<topic>:*" allows a wildcard channel.
func FuzzParsePatterns(f *testing.F) {
	for _, s := range []string{"trades:BTC", "trades:*", "trades:B*", "*", ":x", "a*", "a:b:*", "", "a:**", "é:*"} {
		f.Add(s, "trades:BTC")
	}
	f.Fuzz(func(t *testing.T, pattern, channel string) {
		p, err := ParsePatterns([]string{pattern})
		if err != nil {
			if !p.Empty() {
				t.Fatalf("refused %q but returned non-empty Patterns", pattern)
			}
			return
		}
		if p.Empty() {
			t.Fatalf("accepted %q but Empty", pattern)
		}
		if !strings.HasSuffix(pattern, "*") && !p.Allows(pattern) {
			t.Fatalf("exact pattern %q does not allow itself", pattern)
		}
		if topic, ok := strings.CutSuffix(pattern, ":*"); ok && !p.Allows(topic+":*") {
			t.Fatalf("%q does not allow its wildcard channel", pattern)
		}
		if topic, ok := strings.CutSuffix(channel, ":*"); ok && !strings.Contains(topic, ":") &&
			p.Allows(channel) && pattern != channel {
			t.Fatalf("%q allows the wildcard channel %q", pattern, channel)
		}
		_ = p.Allows(channel)
	})
}
