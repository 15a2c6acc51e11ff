package conform

// The positions of docs/PROTOCOL.md "Positions and resume" and the server lines that carry
// them, as the resume checks read and send them.

import (
	"encoding/json"
	"fmt"
)

// The sources of a recovered line.
const (
	sourceMemory = "memory"
	sourceKafka  = "kafka"
)

// positions are Kafka positions as on the wire: topic -> partition -> offset.
type positions map[string]map[int32]int64

func (p positions) clone() positions {
	out := make(positions, len(p))
	for t, parts := range p {
		m := make(map[int32]int64, len(parts))
		for k, v := range parts {
			m[k] = v
		}
		out[t] = m
	}
	return out
}

// at returns the position of one partition and whether there is one.
func (p positions) at(topic string, part int32) (int64, bool) {
	off, ok := p[topic][part]
	return off, ok
}

// posLine is a server line of the positions protocol: a subscribed reply, a recovered,
// mark, gap or draining line.
type posLine struct {
	Op               string            `json:"op"`
	ID               *string           `json:"id"`
	Channels         []string          `json:"channels"`
	Recovering       *bool             `json:"recovering"`
	Recovered        *bool             `json:"recovered"`
	Source           *string           `json:"source"`
	Replayed         *int              `json:"replayed"`
	Reason           *string           `json:"reason"`
	Topic            string            `json:"topic"`
	Partition        *int32            `json:"partition"`
	Earliest         *int64            `json:"earliest"`
	Epochs           map[string]string `json:"epochs"`
	Positions        json.RawMessage   `json:"positions"`
	ReconnectAfterMS *int64            `json:"reconnect_after_ms"`
	From             *int64            `json:"from"`
	To               *int64            `json:"to"`

	raw []byte
}

func parsePosLine(e Envelope) (posLine, error) {
	var l posLine
	if err := json.Unmarshal(e.Raw, &l); err != nil {
		return l, fmt.Errorf("fields of the wrong type: %w: %s", err, clip(e.Raw))
	}
	l.raw = e.Raw
	return l, nil
}

// topicPositions decodes the positions of a subscribed, recovered or draining line.
func (l posLine) topicPositions() (positions, error) {
	if len(l.Positions) == 0 {
		return nil, fmt.Errorf("no \"positions\": %s", clip(l.raw))
	}
	var p positions
	if err := json.Unmarshal(l.Positions, &p); err != nil || p == nil {
		return nil, fmt.Errorf("\"positions\" is not {topic: {partition: offset}}: %s", clip(l.raw))
	}
	return p, nil
}

// markPositions decodes the positions of a mark: partition -> offset.
func (l posLine) markPositions() (map[int32]int64, error) {
	var p map[int32]int64
	if err := json.Unmarshal(l.Positions, &p); err != nil || p == nil {
		return nil, fmt.Errorf("\"positions\" of a mark is not {partition: offset}: %s", clip(l.raw))
	}
	return p, nil
}

// positionedRequest is a subscribe with positioned.
func positionedRequest(id string, channels []string) map[string]any {
	return map[string]any{"op": "subscribe", "id": id, "channels": channels, "positioned": true}
}

// byPositions is the resume of a client that kept pos and the topic's epoch.
func byPositions(topic, epoch string, pos positions) map[string]any {
	return map[string]any{"epochs": map[string]string{topic: epoch}, "positions": pos}
}
