package protocol

import (
	"strings"
	"testing"
)

func TestValidateChannel(t *testing.T) {
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
	if topic, ok := WildcardTopic("tickers:*"); !ok || topic != "tickers" {
		t.Fatalf("WildcardTopic(tickers:*) = %q, %v", topic, ok)
	}
	if _, ok := WildcardTopic("tickers:BTC"); ok {
		t.Fatal("WildcardTopic(tickers:BTC) reports a wildcard")
	}
}

func TestRecordChannel(t *testing.T) {
	tests := []struct {
		name      string
		topic     string
		key       string
		header    string
		hasHeader bool
		want      string
	}{
		{name: "key", topic: "trades", key: "BTC-USD", want: "trades:BTC-USD"},
		{name: "no key", topic: "trades", want: "trades"},
		{name: "header overrides", topic: "trades", key: "BTC-USD", header: "alerts:x", hasHeader: true, want: "alerts:x"},
		{name: "header without key", topic: "trades", header: "trades:ETH", hasHeader: true, want: "trades:ETH"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := RecordChannel(tt.topic, []byte(tt.key), []byte(tt.header), tt.hasHeader)
			if got != tt.want {
				t.Fatalf("RecordChannel = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestInTopic(t *testing.T) {
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
