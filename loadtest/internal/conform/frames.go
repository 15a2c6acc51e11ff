package conform

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// Envelope is one server-to-client JSON object: a reply or a message (docs/PROTOCOL.md).
type Envelope struct {
	Op       string   `json:"op"`
	ID       *string  `json:"id"`
	Channels []string `json:"channels"`
	Code     string   `json:"code"`
	Message  string   `json:"message"`

	Channel   string          `json:"channel"`
	Topic     string          `json:"topic"`
	Partition *int32          `json:"partition"`
	Offset    *int64          `json:"offset"`
	TS        *int64          `json:"ts"`
	Data      json.RawMessage `json:"data"`

	// HasData says whether the object had a "data" field at all, since a JSON null and a
	// missing field both leave Data empty.
	HasData bool `json:"-"`
	// Raw is the line as received.
	Raw []byte `json:"-"`
}

// IDIs reports whether the envelope carries exactly the id want.
func (e Envelope) IDIs(want string) bool { return e.ID != nil && *e.ID == want }

// ErrEmptyLine reports a frame with an empty line: a trailing, leading or doubled newline.
var ErrEmptyLine = errors.New("empty line in frame")

// SplitFrame splits one text frame into its lines, as every client must (one JSON object
// per line, separated by \n, no trailing newline), and decodes each line. It fails on an
// empty line or a line that is not a JSON object.
func SplitFrame(frame []byte) ([]Envelope, error) {
	lines := bytes.Split(frame, []byte{'\n'})
	out := make([]Envelope, 0, len(lines))
	for i, line := range lines {
		if len(line) == 0 {
			return nil, fmt.Errorf("line %d of %d: %w", i+1, len(lines), ErrEmptyLine)
		}
		env, err := ParseLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d of %d: %w", i+1, len(lines), err)
		}
		out = append(out, env)
	}
	return out, nil
}

// ParseLine decodes one line into an Envelope. The line must be one JSON object with a
// string "op".
func ParseLine(line []byte) (Envelope, error) {
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(line, &fields); err != nil {
		return Envelope{}, fmt.Errorf("not a JSON object: %w (%s)", err, clip(line))
	}
	if fields == nil {
		return Envelope{}, fmt.Errorf("not a JSON object: %s", clip(line))
	}
	var env Envelope
	if err := json.Unmarshal(line, &env); err != nil {
		return Envelope{}, fmt.Errorf("fields of the wrong type: %w (%s)", err, clip(line))
	}
	if env.Op == "" {
		return Envelope{}, fmt.Errorf("no \"op\": %s", clip(line))
	}
	_, env.HasData = fields["data"]
	env.Raw = append([]byte(nil), line...)
	return env, nil
}

// clip shortens a line for error messages.
func clip(b []byte) string {
	const max = 200
	if len(b) <= max {
		return string(b)
	}
	return string(b[:max]) + fmt.Sprintf("... (%d bytes)", len(b))
}
