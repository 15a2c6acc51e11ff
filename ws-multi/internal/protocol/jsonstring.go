// This file is duplicated from ws-single (internal/protocol/jsonstring.go) on purpose: the
// variants share how every string the server writes is escaped, the same bytes in both.

package protocol

import "unicode/utf8"

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, the same bytes in both variants: '"', '\\' and
// control characters are escaped (\n, \r, \t, else \u00XX), invalid UTF-8 becomes \ufffd,
// and unlike encoding/json '<', '>', '&' and U+2028/U+2029 are left as they are (the output
// is never embedded in HTML or JavaScript source).
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
