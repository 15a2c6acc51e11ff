// This file is duplicated from ws-single (internal/auth/patterns.go) on purpose: the variants
// share token verification and channel permissions.

package auth

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// MaxPatterns bounds the patterns of one token or of WS_PUBLIC_CHANNELS.
const MaxPatterns = 1024

// maxPatternLen is the longest pattern, as long as the longest channel.
const maxPatternLen = 256

// Patterns is a set of channel permissions; the zero value allows nothing. Immutable once
// parsed, so connections share it across goroutines.
//
// A token usually carries a handful of patterns, and every connection holds its token's: they
// are kept in slices, scanned (a few string comparisons, nothing allocated), and only past
// indexThreshold exact channels or topics in maps, so a long list costs a lookup, not a scan,
// where it is checked on a hub goroutine (a refresh's revocation).
type Patterns struct {
	exact    []string            // channels allowed by name
	topics   []string            // "<topic>:*": every channel of the topic and its wildcard
	prefixes []prefix            // "<topic>:<prefix>*"
	exactSet map[string]struct{} // exact as a set, once it is long
	topicSet map[string]struct{} // topics as a set, once it is long
}

// prefix is a "<topic>:<prefix>*" pattern.
type prefix struct{ topic, key string }

// indexThreshold is the length past which exact channels and topics are looked up in a map.
const indexThreshold = 16

// ParsePatterns parses permission patterns: an exact channel, "<topic>:*" or
// "<topic>:<prefix>*". The error names the first bad pattern.
func ParsePatterns(list []string) (Patterns, error) {
	if len(list) > MaxPatterns {
		return Patterns{}, fmt.Errorf("%d patterns: at most %d", len(list), MaxPatterns)
	}
	var p Patterns
	for _, s := range list {
		if err := p.add(s); err != nil {
			return Patterns{}, err
		}
	}
	p.exactSet, p.topicSet = setOf(p.exact), setOf(p.topics)
	return p, nil
}

// setOf is list as a set when it is long enough to be worth one; nil otherwise.
func setOf(list []string) map[string]struct{} {
	if len(list) <= indexThreshold {
		return nil
	}
	set := make(map[string]struct{}, len(list))
	for _, s := range list {
		set[s] = struct{}{}
	}
	return set
}

func (p *Patterns) add(s string) error {
	if s == "" || len(s) > maxPatternLen {
		return fmt.Errorf("pattern %s: must be 1 to %d bytes", quote(s), maxPatternLen)
	}
	for i := 0; i < len(s); i++ {
		if b := s[i]; b < '!' || b > '~' || b == '"' || b == '\\' {
			return fmt.Errorf("pattern %s: invalid character %q", quote(s), rune(b))
		}
	}
	body, wild := strings.CutSuffix(s, "*")
	if strings.Contains(body, "*") {
		return fmt.Errorf("pattern %s: '*' is allowed only at the end", quote(s))
	}
	topic, key, hasKey := strings.Cut(body, ":")
	if topic == "" {
		return fmt.Errorf("pattern %s: empty topic", quote(s))
	}
	switch {
	case !wild:
		p.exact = append(p.exact, s)
	case !hasKey:
		return fmt.Errorf("pattern %s: a '*' must follow \"<topic>:\"", quote(s))
	case key == "":
		p.topics = append(p.topics, topic)
	default:
		p.prefixes = append(p.prefixes, prefix{topic: topic, key: key})
	}
	return nil
}

// Allows reports whether channel (a valid channel, possibly the wildcard "<topic>:*") is
// permitted.
func (p Patterns) Allows(channel string) bool {
	if contains(p.exact, p.exactSet, channel) {
		return true
	}
	topic, key, _ := strings.Cut(channel, ":")
	if contains(p.topics, p.topicSet, topic) {
		return true
	}
	if key == "*" {
		return false // the wildcard needs "<topic>:*"
	}
	for _, pre := range p.prefixes {
		if pre.topic == topic && strings.HasPrefix(key, pre.key) {
			return true
		}
	}
	return false
}

// contains looks s up in set when there is one, else scans list.
func contains(list []string, set map[string]struct{}, s string) bool {
	if set != nil {
		_, ok := set[s]
		return ok
	}
	return slices.Contains(list, s)
}

// Empty reports whether p allows nothing.
func (p Patterns) Empty() bool {
	return len(p.exact) == 0 && len(p.topics) == 0 && len(p.prefixes) == 0
}

// quote quotes a pattern for an error message, cut at 64 bytes.
func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strconv.Quote(s)
}
