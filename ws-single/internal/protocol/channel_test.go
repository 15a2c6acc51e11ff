package protocol

import (
	"strings"
	"testing"
)

func TestValidateChannel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		channel string
		wantErr string // substring; "" = valid
	}{
		{name: "topic and key", channel: "trades:BTC-USD"},
		{name: "topic only", channel: "trades"},
		{name: "key with colons", channel: "book:BTC-USD:10"},
		{name: "wildcard", channel: "tickers:*"},
		{name: "longest", channel: strings.Repeat("a", 256)},
		{name: "all printable", channel: "t:!#$%&'()+,-./0123456789;<=>?@AZ[]^_`az{|}~"},
		{name: "empty", channel: "", wantErr: "empty"},
		{name: "too long", channel: strings.Repeat("a", 257), wantErr: "longer than 256"},
		{name: "space", channel: "a b", wantErr: `invalid character ' '`},
		{name: "quote", channel: `a"b`, wantErr: "invalid character"},
		{name: "backslash", channel: `a\b`, wantErr: "invalid character"},
		{name: "control", channel: "a\x00", wantErr: "invalid character"},
		{name: "non-ascii", channel: "a\u00e9", wantErr: "invalid character"},
		{name: "delete", channel: "a\x7f", wantErr: "invalid character"},
		{name: "empty topic", channel: ":key", wantErr: "empty topic"},
		{name: "empty wildcard topic", channel: ":*", wantErr: "empty topic"},
		{name: "star alone", channel: "*", wantErr: "'*'"},
		{name: "star in key", channel: "trades:BTC*", wantErr: "'*'"},
		{name: "star in topic", channel: "tr*:x", wantErr: "'*'"},
		{name: "prefix wildcard", channel: "trades:BTC:*", wantErr: "'*'"},
		{name: "topic star no colon", channel: "trades*", wantErr: "'*'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := ValidateChannel(tt.channel)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidateChannel(%q) = %v, want nil", tt.channel, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ValidateChannel(%q) = %v, want error containing %q", tt.channel, err, tt.wantErr)
			}
		})
	}
}

func TestWildcardTopic(t *testing.T) {
	t.Parallel()
	if topic, ok := WildcardTopic("tickers:*"); !ok || topic != "tickers" {
		t.Fatalf("WildcardTopic(tickers:*) = %q, %v", topic, ok)
	}
	if _, ok := WildcardTopic("tickers:BTC"); ok {
		t.Fatal("WildcardTopic(tickers:BTC) reports a wildcard")
	}
}

func TestRecordChannel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		topic   string
		key     string
		header  string
		headers int // how many "channel" headers; header is the first
		want    string
		ok      bool
	}{
		{name: "key", topic: "trades", key: "BTC-USD", want: "trades:BTC-USD", ok: true},
		{name: "no key", topic: "trades", want: "trades", ok: true},
		{name: "header overrides the key", topic: "trades", key: "BTC-USD", header: "trades:x", headers: 1, want: "trades:x", ok: true},
		{name: "header without key", topic: "trades", header: "trades:ETH", headers: 1, want: "trades:ETH", ok: true},
		{name: "header is the topic", topic: "trades", header: "trades", headers: 1, want: "trades", ok: true},
		{name: "header of another topic", topic: "trades", header: "tickers:X", headers: 1},
		{name: "header with the topic as a prefix only", topic: "trades", header: "tradesX:1", headers: 1},
		{name: "header wildcard", topic: "trades", header: "trades:*", headers: 1},
		{name: "header invalid character", topic: "trades", header: "trades:a b", headers: 1},
		{name: "header empty", topic: "trades", key: "K", header: "", headers: 1},
		{name: "header too long", topic: "t", header: "t:" + strings.Repeat("a", 255), headers: 1},
		{name: "two headers", topic: "trades", key: "K", header: "trades:x", headers: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := RecordChannel(tt.topic, []byte(tt.key), []byte(tt.header), tt.headers)
			if got != tt.want || ok != tt.ok {
				t.Fatalf("RecordChannel = %q, %v; want %q, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestInTopic(t *testing.T) {
	t.Parallel()
	tests := []struct {
		channel, topic string
		want           bool
	}{
		{"trades", "trades", true},
		{"trades:BTC", "trades", true},
		{"trades:", "trades", true},
		{"tradesX", "trades", false},
		{"trade", "trades", false},
		{"tickers:BTC", "trades", false},
		{"", "trades", false},
	}
	for _, tt := range tests {
		if got := InTopic(tt.channel, tt.topic); got != tt.want {
			t.Errorf("InTopic(%q, %q) = %v, want %v", tt.channel, tt.topic, got, tt.want)
		}
	}
}
