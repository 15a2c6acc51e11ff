// Package frame pulls the few fields the load generator needs out of server frames without
// decoding the JSON in full: the client must not become the bottleneck at a million
// messages per second. A frame may hold several JSON objects, one per line (the protocol's
// batching); Lines splits them.
//
// Scan relies on what our own traffic looks like: the server's envelope fields (op,
// channel, partition, offset) and the load generator's record value fields (sent_ns, seq,
// step) each appear once per line, and none of their names occurs inside a string value.
// Other servers go through Extractor, which decodes fully.
package frame

import (
	"bytes"
)

// Kind says what a line is.
type Kind uint8

// Kinds of line.
const (
	Other Kind = iota
	Message
	Subscribed
	Error
)

// Fields are what Scan found in one line. Byte slices alias the line.
type Fields struct {
	Kind      Kind
	ID        []byte
	Code      []byte // error code
	Channel   []byte
	Partition int32
	Offset    int64 // -1 when absent
	SentNs    int64 // 0 when absent
	Seq       uint64
	Step      int
}

var (
	keyOp        = []byte(`"op":"`)
	keyID        = []byte(`"id":"`)
	keyCode      = []byte(`"code":"`)
	keyChannel   = []byte(`"channel":"`)
	keyPartition = []byte(`"partition":`)
	keyOffset    = []byte(`"offset":`)
	keySentNs    = []byte(`"sent_ns":`)
	keySeq       = []byte(`"seq":`)
	keyStep      = []byte(`"step":`)

	opMessage    = []byte("message")
	opSubscribed = []byte("subscribed")
	opError      = []byte("error")
)

// Scan fills f from one line of a frame.
func Scan(line []byte, f *Fields) {
	*f = Fields{Offset: -1}
	c := cursor{line: line}
	op := c.str(keyOp)
	switch {
	case bytes.Equal(op, opMessage):
		f.Kind = Message
		f.Channel = c.str(keyChannel)
		if v, ok := c.int(keyPartition); ok {
			f.Partition = int32(v)
		}
		if v, ok := c.int(keyOffset); ok {
			f.Offset = v
		}
		f.SentNs, _ = c.int(keySentNs)
		if v, ok := c.int(keySeq); ok && v > 0 {
			f.Seq = uint64(v)
		}
		if v, ok := c.int(keyStep); ok {
			f.Step = int(v)
		}
	case bytes.Equal(op, opSubscribed):
		f.Kind = Subscribed
		f.ID = c.str(keyID)
	case bytes.Equal(op, opError):
		f.Kind = Error
		f.ID = c.str(keyID)
		f.Code = c.str(keyCode)
	}
}

// cursor searches keys in the order the server writes them, each from where the previous
// one ended, and from the start of the line when the order differs: the common case costs
// one pass over the line.
type cursor struct {
	line []byte
	pos  int
}

func (c *cursor) find(key []byte) []byte {
	if i := bytes.Index(c.line[c.pos:], key); i >= 0 {
		c.pos += i + len(key)
		return c.line[c.pos:]
	}
	if i := bytes.Index(c.line[:c.pos], key); i >= 0 {
		return c.line[i+len(key):]
	}
	return nil
}

func (c *cursor) str(key []byte) []byte {
	rest := c.find(key)
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return nil
	}
	return rest[:j]
}

func (c *cursor) int(key []byte) (int64, bool) {
	rest := c.find(key)
	if rest == nil {
		return 0, false
	}
	return parseInt(rest)
}

// Lines calls fn for every non-empty line of a frame.
func Lines(frame []byte, fn func(line []byte)) {
	for len(frame) > 0 {
		i := bytes.IndexByte(frame, '\n')
		if i < 0 {
			fn(frame)
			return
		}
		if i > 0 {
			fn(frame[:i])
		}
		frame = frame[i+1:]
	}
}

// parseInt parses the (possibly negative) integer at the start of b, after spaces.
func parseInt(rest []byte) (int64, bool) {
	for len(rest) > 0 && rest[0] == ' ' {
		rest = rest[1:]
	}
	neg := false
	if len(rest) > 0 && rest[0] == '-' {
		neg, rest = true, rest[1:]
	}
	var v int64
	n := 0
	for ; n < len(rest) && rest[n] >= '0' && rest[n] <= '9'; n++ {
		v = v*10 + int64(rest[n]-'0')
	}
	if n == 0 {
		return 0, false
	}
	if neg {
		v = -v
	}
	return v, true
}
