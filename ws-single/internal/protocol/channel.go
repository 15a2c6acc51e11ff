// This file is duplicated from ws-multi (internal/protocol/channel.go) on purpose: the
// variants share the channel rules and their error texts, the same bytes in both.

package protocol

import (
	"fmt"
	"strconv"
	"strings"
)

// MaxChannelLen is the longest channel name in bytes (PROTOCOL.md, Channels).
const MaxChannelLen = 256

// MaxEcho is how many bytes of client text (a channel name, an op) an error message quotes;
// longer text is cut there and followed by "...", so a long invalid request cannot draw a
// long reply.
const MaxEcho = 64

// wildcardSuffix marks a topic wildcard subscription, "<topic>:*".
const wildcardSuffix = ":*"

// quoteEcho quotes client text for an error message, Go-quoted (%q) after the echo cap.
func quoteEcho(s string) string {
	if len(s) > MaxEcho {
		s = s[:MaxEcho] + "..."
	}
	return strconv.Quote(s)
}

// ValidateChannel reports whether name is a channel a client may subscribe to:
// 1 to 256 bytes of printable ASCII except '"', '\' and '*', with a non-empty
// topic part, or a topic wildcard "<topic>:*". The error text is the one sent to
// the client; the checks run in this order: empty, length, characters, topic.
func ValidateChannel(name string) error {
	if name == "" {
		return fmt.Errorf("channel %s: empty", quoteEcho(name))
	}
	if len(name) > MaxChannelLen {
		return fmt.Errorf("channel %s: longer than %d bytes", quoteEcho(name), MaxChannelLen)
	}
	body := name
	if strings.HasSuffix(name, wildcardSuffix) {
		body = name[:len(name)-len(wildcardSuffix)]
	}
	for i := 0; i < len(body); i++ {
		b := body[i]
		switch {
		case b == '*':
			return fmt.Errorf("channel %s: '*' is allowed only as \"<topic>:*\"", quoteEcho(name))
		case b < '!' || b > '~' || b == '"' || b == '\\':
			return fmt.Errorf("channel %s: invalid character %q", quoteEcho(name), rune(b))
		}
	}
	topic, _, _ := strings.Cut(body, ":")
	if topic == "" {
		return fmt.Errorf("channel %s: empty topic", quoteEcho(name))
	}
	if body != name && strings.Contains(body, ":") {
		// "a:b:*" would read as a prefix wildcard, which the protocol does not have.
		return fmt.Errorf("channel %s: '*' is allowed only as \"<topic>:*\"", quoteEcho(name))
	}
	return nil
}

// WildcardTopic returns the topic of a valid wildcard channel "<topic>:*" and
// true, or "" and false for an exact channel.
func WildcardTopic(name string) (string, bool) {
	if topic, ok := strings.CutSuffix(name, wildcardSuffix); ok {
		return topic, true
	}
	return "", false
}

// RecordChannel is the channel a Kafka record of topic is published on, and false when the
// record goes to nobody. headers is how many "channel" headers the record has, header the
// value of the first. With none the channel is "<topic>:<key>", or "<topic>" for an empty
// key. With exactly one it is the header's value, which must be a valid channel (no
// wildcard) of the record's own topic: the topic itself or "<topic>:...". Anything else (an
// invalid value, another topic's channel, two or more headers) goes to nobody, so whoever
// can produce to one topic cannot write into another topic's channels.
func RecordChannel(topic string, key, header []byte, headers int) (string, bool) {
	switch headers {
	case 0:
		if len(key) == 0 {
			return topic, true
		}
		return topic + ":" + string(key), true
	case 1:
		ch := string(header)
		if !InTopic(ch, topic) || strings.HasSuffix(ch, wildcardSuffix) || ValidateChannel(ch) != nil {
			return "", false
		}
		return ch, true
	default:
		return "", false
	}
}

// ChannelTopic returns the topic of a valid channel or wildcard: the part before the first
// ':', or the whole name.
func ChannelTopic(name string) string {
	if i := strings.IndexByte(name, ':'); i >= 0 {
		return name[:i]
	}
	return name
}

// InTopic reports whether channel belongs to topic for wildcard delivery: it is
// the topic itself or starts with "<topic>:".
func InTopic(channel, topic string) bool {
	if len(channel) == len(topic) {
		return channel == topic
	}
	return len(channel) > len(topic) && channel[len(topic)] == ':' && channel[:len(topic)] == topic
}
