// This file is duplicated from ws-single (internal/auth/patterns.go) on purpose: the variants
// share token verification and channel permissions.

package auth

import (
	"fmt"
	"strconv"
	"strings"
)

// MaxPatterns bounds the patterns of one token or of WS_PUBLIC_CHANNELS.
const MaxPatterns = 1024

// maxPatternLen is the longest pattern, as long as the longest channel.
const maxPatternLen = 256

// Patterns is a set of channel permissions; the zero value allows nothing. Immutable once
// parsed, so connections share it across goroutines.
type Patterns struct {
	exact    map[string]struct{} // channels allowed by name
	topics   map[string]struct{} // "<topic>:*": every channel of the topic and its wildcard
	prefixes map[string][]string // topic -> key prefixes of "<topic>:<prefix>*"
	list     []string            // as given, for logs
}

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
	p.list = append([]string(nil), list...)
	return p, nil
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
		if p.exact == nil {
			p.exact = make(map[string]struct{})
		}
		p.exact[s] = struct{}{}
	case !hasKey:
		return fmt.Errorf("pattern %s: a '*' must follow \"<topic>:\"", quote(s))
	case key == "":
		if p.topics == nil {
			p.topics = make(map[string]struct{})
		}
		p.topics[topic] = struct{}{}
	default:
		if p.prefixes == nil {
			p.prefixes = make(map[string][]string)
		}
		p.prefixes[topic] = append(p.prefixes[topic], key)
	}
	return nil
}

// Allows reports whether channel (a valid channel, possibly the wildcard "<topic>:*") is
// permitted.
func (p Patterns) Allows(channel string) bool {
	if _, ok := p.exact[channel]; ok {
		return true
	}
	topic, key, _ := strings.Cut(channel, ":")
	if _, ok := p.topics[topic]; ok {
		return true
	}
	if key == "*" {
		return false // the wildcard needs "<topic>:*"
	}
	for _, prefix := range p.prefixes[topic] {
		if strings.HasPrefix(key, prefix) {
			return true
		}
	}
	return false
}

// Empty reports whether p allows nothing.
func (p Patterns) Empty() bool {
	return len(p.exact) == 0 && len(p.topics) == 0 && len(p.prefixes) == 0
}

// String lists the patterns as given, comma-separated.
func (p Patterns) String() string { return strings.Join(p.list, ",") }

// quote quotes a pattern for an error message, cut at 64 bytes.
func quote(s string) string {
	if len(s) > 64 {
		s = s[:64] + "..."
	}
	return strconv.Quote(s)
}
