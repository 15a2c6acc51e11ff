package frame

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Extractor reads the timestamp (and optionally channel and sequence number) from frames of
// another server, at dotted JSON paths such as "data.sent_ns". It decodes every value in
// full, which is fine for side-by-side comparisons at moderate rates.
type Extractor struct {
	ts, channel, seq []string
	// unitNs is how many nanoseconds one unit of the timestamp is.
	unitNs int64
}

// NewExtractor builds an Extractor. tsPath is required; channelPath and seqPath may be empty.
// unit is ns, us, ms or s.
func NewExtractor(tsPath, unit, channelPath, seqPath string) (*Extractor, error) {
	if tsPath == "" {
		return nil, errors.New("frame: timestamp path is empty")
	}
	units := map[string]int64{"ns": 1, "us": 1e3, "ms": 1e6, "s": 1e9}
	u, ok := units[unit]
	if !ok {
		return nil, fmt.Errorf("frame: timestamp unit %q: want ns, us, ms or s", unit)
	}
	split := func(p string) []string {
		if p == "" {
			return nil
		}
		return strings.Split(p, ".")
	}
	return &Extractor{ts: split(tsPath), channel: split(channelPath), seq: split(seqPath), unitNs: u}, nil
}

// Extract decodes every JSON value in frame (one or several, whitespace separated) and
// calls fn with the fields found. Values without the timestamp are passed with SentNs 0.
func (e *Extractor) Extract(frame []byte, fn func(f *Fields)) error {
	dec := json.NewDecoder(bytes.NewReader(frame))
	dec.UseNumber()
	for {
		var v any
		if err := dec.Decode(&v); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("frame: decode: %w", err)
		}
		f := Fields{Kind: Other, Offset: -1}
		if ts, ok := number(lookup(v, e.ts)); ok {
			f.Kind = Message
			f.SentNs = int64(ts * float64(e.unitNs))
		}
		if e.channel != nil {
			if s, ok := lookup(v, e.channel).(string); ok {
				f.Channel = []byte(s)
			}
		}
		if e.seq != nil {
			if n, ok := number(lookup(v, e.seq)); ok && n > 0 {
				f.Seq = uint64(n)
			}
		}
		fn(&f)
	}
}

func lookup(v any, path []string) any {
	for i := 0; i < len(path); i++ {
		switch t := v.(type) {
		case map[string]any:
			v = t[path[i]]
		case []any:
			n, err := strconv.Atoi(path[i])
			if err != nil || n < 0 || n >= len(t) {
				return nil
			}
			v = t[n]
		case string:
			// A field holding JSON text (some servers double-encode their payload): decode it
			// and look the same path element up again inside.
			var inner any
			if json.Unmarshal([]byte(t), &inner) != nil {
				return nil
			}
			v = inner
			i--
		default:
			return nil
		}
	}
	return v
}

func number(v any) (float64, bool) {
	switch t := v.(type) {
	case json.Number:
		f, err := t.Float64()
		return f, err == nil
	case float64:
		return t, true
	case string:
		f, err := strconv.ParseFloat(t, 64)
		return f, err == nil
	}
	return 0, false
}
