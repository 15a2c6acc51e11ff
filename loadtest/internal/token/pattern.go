package token

import (
	"fmt"
	"strconv"
	"strings"
)

// maxChannelBytes is the longest channel name (docs/PROTOCOL.md, Channels), and so the
// longest pattern.
const maxChannelBytes = 256

// ValidatePattern checks one channel pattern of the auth contract: an exact channel
// (docs/PROTOCOL.md: 1 to 256 bytes of printable ASCII except `"`, `\` and `*`, with a
// non-empty topic before the first `:`), "<topic>:*" (every channel of the topic, the
// wildcard channel included) or "<topic>:<prefix>*" (the channels of topic whose key
// starts with prefix). `*` is allowed only last, after "<topic>:".
func ValidatePattern(p string) error {
	if p == "" || len(p) > maxChannelBytes {
		return fmt.Errorf("pattern %s: must be 1 to %d bytes", quote(p), maxChannelBytes)
	}
	for i := 0; i < len(p); i++ {
		if b := p[i]; b < '!' || b > '~' || b == '"' || b == '\\' {
			return fmt.Errorf("pattern %s: invalid character %q", quote(p), rune(b))
		}
	}
	body, wild := strings.CutSuffix(p, "*")
	if strings.Contains(body, "*") {
		return fmt.Errorf("pattern %s: '*' is allowed only at the end", quote(p))
	}
	topic, _, hasKey := strings.Cut(body, ":")
	switch {
	case topic == "":
		return fmt.Errorf("pattern %s: empty topic", quote(p))
	case wild && !hasKey:
		return fmt.Errorf("pattern %s: '*' must follow \"<topic>:\"", quote(p))
	}
	return nil
}

// Allows reports whether any of patterns (each valid, see ValidatePattern) permits a
// subscription to channel. Only "<topic>:*" permits the wildcard channel "<topic>:*".
func Allows(patterns []string, channel string) bool {
	for _, p := range patterns {
		body, wild := strings.CutSuffix(p, "*")
		switch {
		case !wild:
			if channel == p {
				return true
			}
		case strings.HasSuffix(body, ":") && (channel == strings.TrimSuffix(body, ":") || strings.HasPrefix(channel, body)):
			// "<topic>:*": the topic's own channel and every "<topic>:..." one.
			return true
		case strings.HasPrefix(channel, body):
			// "<topic>:<prefix>*": prefix holds no '*', so the wildcard channel never matches.
			return true
		}
	}
	return false
}

// quote quotes a pattern for an error message, cut at 64 bytes as the servers cut what
// they echo.
func quote(s string) string {
	if len(s) > 64 {
		return strconv.Quote(s[:64]) + "..."
	}
	return strconv.Quote(s)
}
