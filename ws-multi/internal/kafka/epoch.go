// This file is duplicated from ws-single (internal/kafka/epoch.go) on purpose: the variants share the consumer.

package kafka

import (
	"errors"
	"fmt"

	"github.com/IBM/sarama"
)

// errEpochChanged ends a session whose topic was deleted and recreated under it: the next
// session starts the topic afresh and announces the gap.
var errEpochChanged = errors.New("topic recreated")

// readEpochs returns every topic's epoch: its Kafka topic id, which a topic deleted and
// recreated under the same name does not keep, so positions taken under another epoch are
// known to mean nothing. sarama.Client does not expose topic ids; a Metadata request v10+
// (v11 with sarama's default version) carries them. A broker that has none (zero id) gives
// the epoch "": the topic then never changes epoch.
func readEpochs(client sarama.Client, version sarama.KafkaVersion, topics []string) (map[string]string, error) {
	broker := client.LeastLoadedBroker()
	if broker == nil {
		return nil, errors.New("kafka: topic ids: no broker")
	}
	resp, err := broker.GetMetadata(sarama.NewMetadataRequest(version, topics))
	if err != nil {
		return nil, fmt.Errorf("kafka: topic ids of %v: %w", topics, err)
	}
	epochs := make(map[string]string, len(topics))
	for _, t := range resp.Topics {
		if t.Err != sarama.ErrNoError {
			return nil, fmt.Errorf("kafka: topic id of %s: %w", t.Name, t.Err)
		}
		epochs[t.Name] = epochOf(t.Uuid)
	}
	for _, t := range topics {
		if _, ok := epochs[t]; !ok {
			return nil, fmt.Errorf("kafka: topic id of %s: not in the metadata", t)
		}
	}
	return epochs, nil
}

// epochOf encodes a topic id as its epoch: base64url without padding (22 characters, the
// form Kafka's own tools print), "" for the zero id.
func epochOf(id sarama.Uuid) string {
	if id == (sarama.Uuid{}) {
		return ""
	}
	return id.String()
}

// checkEpochs ends the session (errEpochChanged) when a topic's id is no longer the one it
// was attached under: a recreated topic whose new log happens to hold the session's next
// offsets would otherwise go on under the old epoch, unannounced.
func (c *Consumer) checkEpochs(client sarama.Client, version sarama.KafkaVersion) error {
	epochs, err := readEpochs(client, version, c.cfg.Topics)
	if err != nil {
		return err
	}
	for topic, epoch := range epochs {
		if old := c.epochs[topic]; old != epoch {
			// Not a failure: it is counted in ws_live_gaps_total by the next session.
			return countedError{fmt.Errorf("kafka: %s: topic id %q, attached under %q: %w", topic, epoch, old, errEpochChanged)}
		}
	}
	return nil
}
