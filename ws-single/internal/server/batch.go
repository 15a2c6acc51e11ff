package server

import "github.com/adred-codev/ws_poc/ws-single/internal/hub"

// frameSpan is how many of msgs (at least one) go into the next batched frame:
// as many as fit in maxBytes with one '\n' between them. A single message
// larger than maxBytes gets a frame of its own.
func frameSpan(msgs []*hub.Message, maxBytes int) int {
	size := len(msgs[0].Wire)
	n := 1
	for n < len(msgs) && size+1+len(msgs[n].Wire) <= maxBytes {
		size += 1 + len(msgs[n].Wire)
		n++
	}
	return n
}

// appendFrame appends msgs joined by '\n' (no trailing newline) to dst.
func appendFrame(dst []byte, msgs []*hub.Message) []byte {
	for i, m := range msgs {
		if i > 0 {
			dst = append(dst, '\n')
		}
		dst = append(dst, m.Wire...)
	}
	return dst
}
