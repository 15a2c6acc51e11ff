package protocol

import (
	"fmt"
	"strings"
)

// MaxChannelLen is the longest channel name in bytes.
const MaxChannelLen = 256

// wildcardSuffix marks a topic wildcard subscription, "<topic>:*".
const wildcardSuffix = ":*"

// ValidateChannel reports whether name is a channel a client may subscribe to:
// 1 to 256 bytes of printable ASCII except '"', '\' and '*', with a non-empty
// topic part, or a topic wildcard "<topic>:*".
func ValidateChannel(name string) error {
	if name == "" {
		return fmt.Errorf("channel %q: empty", name)
	}
	if len(name) > MaxChannelLen {
		return fmt.Errorf("channel %q: longer than %d bytes", name, MaxChannelLen)
	}
	body := name
	if strings.HasSuffix(name, wildcardSuffix) {
		body = name[:len(name)-len(wildcardSuffix)]
	}
	for i := 0; i < len(body); i++ {
		b := body[i]
		switch {
		case b == '*':
			return fmt.Errorf("channel %q: '*' is allowed only as \"<topic>:*\"", name)
		case b < '!' || b > '~' || b == '"' || b == '\\':
			return fmt.Errorf("channel %q: invalid character %q", name, rune(b))
		}
	}
	topic, _, _ := strings.Cut(body, ":")
	if topic == "" {
		return fmt.Errorf("channel %q: empty topic", name)
	}
	if body != name && strings.Contains(body, ":") {
		// "a:b:*" would read as a prefix wildcard, which the protocol does not have.
		return fmt.Errorf("channel %q: '*' is allowed only as \"<topic>:*\"", name)
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

// RecordChannel is the channel a Kafka record is published on: the value of its
// "channel" header when it has one, else "<topic>:<key>", or "<topic>" for an
// empty key.
func RecordChannel(topic string, key []byte, header []byte, hasHeader bool) string {
	if hasHeader {
		return string(header)
	}
	if len(key) == 0 {
		return topic
	}
	return topic + ":" + string(key)
}

// InTopic reports whether channel belongs to topic for wildcard delivery: it is
// the topic itself or starts with "<topic>:".
func InTopic(channel, topic string) bool {
	if len(channel) == len(topic) {
		return channel == topic
	}
	return len(channel) > len(topic) && channel[len(topic)] == ':' && channel[:len(topic)] == topic
}
