package protocol

import (
	"fmt"
	"strings"
)

// MaxChannelLen is the longest channel name in bytes (PROTOCOL.md, Channels).
const MaxChannelLen = 256

// wildcardSuffix marks a whole-topic subscription: "<topic>:*".
const wildcardSuffix = ":*"

// ValidateChannel reports whether name is a channel a client may subscribe to: a plain channel
// (1 to 256 bytes of '!'..'~' except '"', '\' and '*', with a non-empty topic part) or a topic
// wildcard "<topic>:*". The error text is the one sent to the client.
func ValidateChannel(name string) error {
	if len(name) == 0 {
		return fmt.Errorf("channel %q: empty", name)
	}
	if len(name) > MaxChannelLen {
		return fmt.Errorf("channel %q: longer than %d bytes", name, MaxChannelLen)
	}
	body := name
	if strings.HasSuffix(name, wildcardSuffix) {
		body = name[:len(name)-len(wildcardSuffix)]
		if strings.IndexByte(body, ':') >= 0 {
			return fmt.Errorf("channel %q: '*' is only allowed as \"<topic>:*\"", name)
		}
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		switch {
		case c == '*':
			return fmt.Errorf("channel %q: '*' is only allowed as \"<topic>:*\"", name)
		case c < '!' || c > '~' || c == '"' || c == '\\':
			return fmt.Errorf("channel %q: invalid character %q", name, rune(c))
		}
	}
	if i := strings.IndexByte(body, ':'); i == 0 || len(body) == 0 {
		return fmt.Errorf("channel %q: empty topic", name)
	}
	return nil
}

// WildcardTopic returns the topic of a "<topic>:*" subscription, and false for a plain channel.
// It expects a name that passed ValidateChannel.
func WildcardTopic(name string) (string, bool) {
	if strings.HasSuffix(name, wildcardSuffix) {
		return name[:len(name)-len(wildcardSuffix)], true
	}
	return "", false
}

// RecordChannel returns the channel of a Kafka record: the value of a header named "channel"
// when present, else "<topic>:<key>", else "<topic>" when the key is empty.
func RecordChannel(topic string, key, headerChannel []byte, hasHeader bool) string {
	switch {
	case hasHeader:
		return string(headerChannel)
	case len(key) == 0:
		return topic
	default:
		return topic + ":" + string(key)
	}
}

// MatchesWildcard reports whether a record of topic published on channel is received by a
// "<topic>:*" subscription: its channel is the topic itself or starts with "<topic>:".
func MatchesWildcard(topic, channel string) bool {
	return channel == topic || (len(channel) > len(topic) && channel[len(topic)] == ':' && channel[:len(topic)] == topic)
}
