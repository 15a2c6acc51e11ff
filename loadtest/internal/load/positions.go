package load

// A client's Kafka positions (docs/PROTOCOL.md "Positions and resume"): what a failover
// client keeps from the records, marks, gaps and skips it reads, and sends back in its
// resume.

import (
	"fmt"
	"strconv"
)

// partPos is a partition's position; topicPos a topic's.
type partPos struct {
	part int32
	off  int64
}

type topicPos struct {
	topic string
	parts []partPos
}

// positions are a client's Kafka positions: per topic and partition the highest offset
// processed. A client has a topic or two of a few partitions: slices beat maps here.
type positions []topicPos

// topicOf finds or adds topic; comparing string(b) does not allocate.
func (ps *positions) topicOf(topic []byte) *topicPos {
	for i := range *ps {
		if (*ps)[i].topic == string(topic) {
			return &(*ps)[i]
		}
	}
	*ps = append(*ps, topicPos{topic: string(topic)})
	return &(*ps)[len(*ps)-1]
}

// raise moves the position of topic/part up to off (never down).
func (ps *positions) raise(topic []byte, part int32, off int64) {
	tp := ps.topicOf(topic)
	for i := range tp.parts {
		if tp.parts[i].part == part {
			tp.parts[i].off = max(tp.parts[i].off, off)
			return
		}
	}
	tp.parts = append(tp.parts, partPos{part: part, off: off})
}

// raiseWire applies {"<partition>":offset} of topic.
func (ps *positions) raiseWire(topic string, parts map[string]int64) error {
	for k, off := range parts {
		p, err := strconv.ParseInt(k, 10, 32)
		if err != nil {
			return fmt.Errorf("positions of %q: partition %q: %w", topic, k, err)
		}
		ps.raise([]byte(topic), int32(p), off)
	}
	return nil
}

// wire is the positions as a resume carries them: {topic: {"<partition>": offset}}.
func (ps positions) wire() map[string]map[string]int64 {
	out := make(map[string]map[string]int64, len(ps))
	for _, tp := range ps {
		m := make(map[string]int64, len(tp.parts))
		for _, p := range tp.parts {
			m[strconv.Itoa(int(p.part))] = p.off
		}
		out[tp.topic] = m
	}
	return out
}
