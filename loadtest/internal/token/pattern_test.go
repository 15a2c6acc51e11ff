package token

import (
	"strings"
	"testing"
)

func TestValidatePattern(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		wantErr string
	}{
		{name: "exact channel", pattern: "trades:BTC-USD"},
		{name: "topic alone", pattern: "trades"},
		{name: "key with colons", pattern: "trades:a:b"},
		{name: "topic wildcard", pattern: "trades:*"},
		{name: "key prefix", pattern: "trades:BTC-*"},
		{name: "every printable character but the forbidden ones", pattern: "t:!#$%&'()+,-./09;<=>?@AZ[]^_`az{|}~"},
		{name: "256 bytes", pattern: "t:" + strings.Repeat("k", 254)},
		{name: "empty", pattern: "", wantErr: "must be 1 to 256 bytes"},
		{name: "257 bytes", pattern: "t:" + strings.Repeat("k", 255), wantErr: "must be 1 to 256 bytes"},
		{name: "space", pattern: "trades:a b", wantErr: "invalid character ' '"},
		{name: "quote", pattern: `trades:a"`, wantErr: `invalid character '"'`},
		{name: "backslash", pattern: `trades:a\`, wantErr: `invalid character '\\'`},
		{name: "non-ASCII", pattern: "trades:\u00e9", wantErr: "invalid character"},
		{name: "star inside", pattern: "trades:a*b", wantErr: "only at the end"},
		{name: "two stars", pattern: "trades:**", wantErr: "only at the end"},
		{name: "star in the topic", pattern: "tr*:a", wantErr: "only at the end"},
		{name: "bare star", pattern: "*", wantErr: "empty topic"},
		{name: "topic star without colon", pattern: "trades*", wantErr: `must follow "<topic>:"`},
		{name: "empty topic", pattern: ":key", wantErr: "empty topic"},
		{name: "empty topic wildcard", pattern: ":*", wantErr: "empty topic"},
		{name: "regex characters are literal", pattern: "trades:.+"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidatePattern(tt.pattern)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidatePattern(%q): %v", tt.pattern, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ValidatePattern(%q): %v, want an error containing %q", tt.pattern, err, tt.wantErr)
			}
		})
	}
}

func TestAllows(t *testing.T) {
	tests := []struct {
		name     string
		patterns []string
		channel  string
		want     bool
	}{
		{name: "exact", patterns: []string{"trades:BTC"}, channel: "trades:BTC", want: true},
		{name: "exact is not a prefix", patterns: []string{"trades:BTC"}, channel: "trades:BTC-USD"},
		{name: "exact does not allow the wildcard", patterns: []string{"trades:BTC"}, channel: "trades:*"},
		{name: "topic wildcard allows a key", patterns: []string{"trades:*"}, channel: "trades:anything", want: true},
		{name: "topic wildcard allows the wildcard channel", patterns: []string{"trades:*"}, channel: "trades:*", want: true},
		{name: "topic wildcard allows the topic's own channel", patterns: []string{"trades:*"}, channel: "trades", want: true},
		{name: "topic wildcard stays in its topic", patterns: []string{"trades:*"}, channel: "tradesx:a"},
		{name: "topic wildcard, other topic", patterns: []string{"trades:*"}, channel: "tickers:a"},
		{name: "prefix allows a key with it", patterns: []string{"trades:BTC-*"}, channel: "trades:BTC-USD", want: true},
		{name: "prefix allows the prefix itself", patterns: []string{"trades:BTC-*"}, channel: "trades:BTC-", want: true},
		{name: "prefix forbids other keys", patterns: []string{"trades:BTC-*"}, channel: "trades:ETH-USD"},
		{name: "prefix forbids the wildcard", patterns: []string{"trades:BTC-*"}, channel: "trades:*"},
		{name: "prefix forbids the topic", patterns: []string{"trades:BTC-*"}, channel: "trades"},
		{name: "prefix stays in its topic", patterns: []string{"trades:BTC-*"}, channel: "tickers:BTC-USD"},
		{name: "any of several", patterns: []string{"tickers:*", "trades:a"}, channel: "trades:a", want: true},
		{name: "none", patterns: nil, channel: "trades:a"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Allows(tt.patterns, tt.channel); got != tt.want {
				t.Fatalf("Allows(%q, %q) = %v, want %v", tt.patterns, tt.channel, got, tt.want)
			}
		})
	}
}

// FuzzValidatePattern: a valid pattern allows at least one channel, and a pattern is never
// accepted with a '*' anywhere but last.
func FuzzValidatePattern(f *testing.F) {
	for _, s := range []string{"trades:BTC", "trades:*", "trades:B*", "*", "a*b", ":x", "t:\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if ValidatePattern(p) != nil {
			return
		}
		if i := strings.IndexByte(p, '*'); i >= 0 && i != len(p)-1 {
			t.Fatalf("%q accepted with a '*' before its end", p)
		}
		if ch := strings.TrimSuffix(p, "*"); !Allows([]string{p}, ch) && !Allows([]string{p}, ch+"x") {
			t.Fatalf("%q allows neither %q nor %q", p, ch, ch+"x")
		}
	})
}
