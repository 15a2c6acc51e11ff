// This file is duplicated from ws-multi (internal/protocol/position.go) on purpose: the
// variants share the protocol, the same positions on the wire in both.

package protocol

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Positions are Kafka positions: per topic and partition, the offset of the last record
// the client has processed (-1: none yet). On the wire {"trades":{"0":1233,"1":5677}}.
type Positions map[string]map[int32]int64

// Epochs are topic identities (Kafka topic ids): a deleted and recreated topic has a new
// one, so positions taken under another epoch mean nothing. On the wire {"trades":"q7v0…"}.
type Epochs map[string]string

// Resume is what a subscribe asks to be replayed before it goes live: either every
// matching record after Positions (checked against Epochs), or every matching record since
// SinceTS.
type Resume struct {
	Epochs    Epochs
	Positions Positions
	// SinceTS is the time replay's start (a Kafka timestamp); zero when the resume is by
	// positions.
	SinceTS time.Time
}

// Limits on what a resume may carry, so a request cannot make the server hold a large
// structure: WS_READ_LIMIT bounds the frame, these bound the maps built from it.
const (
	MaxResumeTopics     = 64
	MaxResumePartitions = 1024 // per topic
)

// parseResume reads the "resume" field of a subscribe.
func parseResume(raw json.RawMessage) (*Resume, *Error) {
	bad := func(msg string) (*Resume, *Error) {
		return nil, &Error{Code: CodeInvalidRequest, Message: msg}
	}
	var fields map[string]json.RawMessage
	if json.Unmarshal(raw, &fields) != nil || fields == nil {
		return bad("resume must be an object")
	}
	r := &Resume{}
	since, hasSince := fields["since_ts"]
	positions, hasPositions := fields["positions"]
	switch {
	case hasSince && hasPositions:
		return bad("resume takes positions or since_ts, not both")
	case hasSince:
		var ms int64
		if json.Unmarshal(since, &ms) != nil || ms <= 0 {
			return bad("resume.since_ts must be a positive integer (milliseconds)")
		}
		r.SinceTS = time.UnixMilli(ms)
		return r, nil
	case !hasPositions:
		return bad("resume needs positions or since_ts")
	}
	var pos map[string]map[string]int64
	if json.Unmarshal(positions, &pos) != nil || len(pos) == 0 {
		return bad("resume.positions must map topics to {partition: offset}")
	}
	if len(pos) > MaxResumeTopics {
		return bad(fmt.Sprintf("resume.positions has more than %d topics", MaxResumeTopics))
	}
	r.Positions = make(Positions, len(pos))
	for topic, parts := range pos {
		if err := validateTopic(topic); err != nil {
			return bad("resume.positions: " + err.Error())
		}
		if len(parts) > MaxResumePartitions {
			return bad(fmt.Sprintf("resume.positions of %s has more than %d partitions", quoteEcho(topic), MaxResumePartitions))
		}
		m := make(map[int32]int64, len(parts))
		for p, off := range parts {
			n, err := strconv.ParseInt(p, 10, 32)
			if err != nil || n < 0 || strconv.FormatInt(n, 10) != p {
				return bad("resume.positions: partition " + quoteEcho(p) + " is not a partition number")
			}
			if off < -1 {
				return bad("resume.positions: offsets are at least -1")
			}
			m[int32(n)] = off
		}
		r.Positions[topic] = m
	}
	if raw, ok := fields["epochs"]; ok && !isNull(raw) {
		if json.Unmarshal(raw, &r.Epochs) != nil {
			return bad("resume.epochs must map topics to strings")
		}
		if len(r.Epochs) > MaxResumeTopics {
			return bad(fmt.Sprintf("resume.epochs has more than %d topics", MaxResumeTopics))
		}
	}
	return r, nil
}

// validateTopic checks a topic name as the topic part of a channel.
func validateTopic(topic string) error {
	if err := ValidateChannel(topic); err != nil {
		return err
	}
	for i := 0; i < len(topic); i++ {
		if topic[i] == ':' {
			return fmt.Errorf("topic %s: invalid character ':'", quoteEcho(topic))
		}
	}
	return nil
}

// appendPositions appends p as a JSON object, topics and partitions in ascending order so
// both variants write the same bytes.
func appendPositions(b []byte, p Positions) []byte {
	b = append(b, '{')
	for i, topic := range sortedKeys(p) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, topic)
		b = append(b, ':')
		b = appendPartitions(b, p[topic])
	}
	return append(b, '}')
}

// appendPartitions appends {"<partition>":<offset>,…} in ascending partition order.
func appendPartitions(b []byte, parts map[int32]int64) []byte {
	ids := make([]int32, 0, len(parts))
	for id := range parts {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	b = append(b, '{')
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = strconv.AppendInt(b, int64(id), 10)
		b = append(b, `":`...)
		b = strconv.AppendInt(b, parts[id], 10)
	}
	return append(b, '}')
}

// appendEpochs appends e as a JSON object, topics in ascending order.
func appendEpochs(b []byte, e Epochs) []byte {
	b = append(b, '{')
	for i, topic := range sortedKeys(e) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, topic)
		b = append(b, ':')
		b = appendString(b, e[topic])
	}
	return append(b, '}')
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
