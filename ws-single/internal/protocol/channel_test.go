// This file is duplicated from ws-multi (internal/protocol/channel_test.go) on purpose: the
// variants share the protocol and its tests.

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
		ok      bool
		msg     string
	}{
		{name: "topic and key", channel: "trades:BTC-USD", ok: true},
		{name: "topic only", channel: "trades", ok: true},
		{name: "wildcard", channel: "tickers:*", ok: true},
		{name: "key with colon", channel: "book:BTC:USD", ok: true},
		{name: "printable edges", channel: "!~", ok: true},
		{name: "all printable", channel: "t:!#$%&'()+,-./0123456789;<=>?@AZ[]^_`az{|}~", ok: true},
		{name: "max length", channel: strings.Repeat("a", 256), ok: true},
		{name: "too long", channel: strings.Repeat("a", 257)},
		{name: "empty", channel: ""},
		{name: "space", channel: "a b", msg: `channel "a b": invalid character ' '`},
		{name: "quote", channel: `a"b`},
		{name: "backslash", channel: `a\b`},
		{name: "control", channel: "a\x01"},
		{name: "nul", channel: "a\x00"},
		{name: "delete", channel: "a\x7f"},
		{name: "non ascii", channel: "héllo"},
		{name: "empty topic", channel: ":key"},
		{name: "empty topic wildcard", channel: ":*"},
		{name: "star alone", channel: "*"},
		{name: "star in key", channel: "trades:BTC*"},
		{name: "star in topic", channel: "tr*:x"},
		{name: "topic star without colon", channel: "trades*"},
		{name: "nested wildcard", channel: "a:b:*"},
		{name: "double wildcard", channel: "a:*:*"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateChannel(tt.channel)
			if (err == nil) != tt.ok {
				t.Fatalf("ValidateChannel(%q) = %v, want ok=%v", tt.channel, err, tt.ok)
			}
			if tt.msg != "" && err.Error() != tt.msg {
				t.Errorf("message = %q, want %q", err.Error(), tt.msg)
			}
		})
	}
}

// TestRecordChannel is the channel header rule: a record's channel is its one "channel"
// header when that is a valid, non-wildcard channel of the record's own topic; with no
// header it is "<topic>:<key>" or "<topic>"; anything else is delivered to nobody.
func TestRecordChannel(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		key     string
		header  string
		headers int
		want    string
		ok      bool
	}{
		{name: "key", key: "BTC-USD", want: "trades:BTC-USD", ok: true},
		{name: "no key", want: "trades", ok: true},
		{name: "header of the own topic overrides", key: "BTC-USD", header: "trades:special", headers: 1, want: "trades:special", ok: true},
		{name: "header without key", header: "trades:ETH", headers: 1, want: "trades:ETH", ok: true},
		{name: "header naming the topic itself", key: "k", header: "trades", headers: 1, want: "trades", ok: true},
		{name: "header with colons in the key", header: "trades:BTC:USD", headers: 1, want: "trades:BTC:USD", ok: true},
		{name: "header of another topic", key: "k", header: "tickers:X", headers: 1},
		{name: "header of a topic with the same prefix", header: "tradesX:1", headers: 1},
		{name: "header wildcard", header: "trades:*", headers: 1},
		{name: "header invalid", header: "trades:a b", headers: 1},
		{name: "header empty", header: "", headers: 1},
		{name: "header too long", header: "trades:" + strings.Repeat("x", 250), headers: 1},
		{name: "two headers", header: "trades:a", headers: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, ok := RecordChannel("trades", []byte(tt.key), []byte(tt.header), tt.headers)
			if got != tt.want || ok != tt.ok {
				t.Errorf("RecordChannel = %q, %v, want %q, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}

func TestInTopicAndWildcardTopic(t *testing.T) {
	t.Parallel()
	wild := []struct {
		channel string
		want    bool
	}{
		{"trades", true}, {"trades:BTC", true}, {"trades:", true}, {"tradesX", false}, {"trade", false},
		{"tickers:BTC", false}, {"", false},
	}
	for _, w := range wild {
		if got := InTopic(w.channel, "trades"); got != w.want {
			t.Errorf("InTopic(%q, trades) = %v, want %v", w.channel, got, w.want)
		}
	}
	if topic, ok := WildcardTopic("trades:*"); !ok || topic != "trades" {
		t.Errorf("WildcardTopic(trades:*) = %q, %v", topic, ok)
	}
	if _, ok := WildcardTopic("trades:BTC"); ok {
		t.Error("WildcardTopic(trades:BTC) reported a wildcard")
	}
}

// TestChannelErrorTexts pins every invalid_channel text: the check order and the words.
func TestChannelErrorTexts(t *testing.T) {
	t.Parallel()
	tests := []struct {
		channel, want string
	}{
		{"", `channel "": empty`},
		{strings.Repeat("a", 257), `channel "` + strings.Repeat("a", 64) + `...": longer than 256 bytes`},
		{"trades:BTC*", `channel "trades:BTC*": '*' is allowed only as "<topic>:*"`},
		{"*", `channel "*": '*' is allowed only as "<topic>:*"`},
		{"a:b:*", `channel "a:b:*": '*' is allowed only as "<topic>:*"`},
		{"a b*", `channel "a b*": invalid character ' '`},
		{"a\x7f", `channel "a\x7f": invalid character '\x7f'`},
		{"é", `channel "é": invalid character 'Ã'`},
		{":key", `channel ":key": empty topic`},
		{":*", `channel ":*": empty topic`},
		{strings.Repeat("a", 70) + " ", `channel "` + strings.Repeat("a", 64) + `...": invalid character ' '`},
	}
	for _, tt := range tests {
		err := ValidateChannel(tt.channel)
		if err == nil || err.Error() != tt.want {
			t.Errorf("ValidateChannel(%q) = %v, want %s", tt.channel, err, tt.want)
		}
	}
}
