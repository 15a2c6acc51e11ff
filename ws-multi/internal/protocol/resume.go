// This file is duplicated from ws-single (internal/protocol/resume.go) on purpose: the
// variants share the protocol, the same resume lines in both.

package protocol

import (
	"strconv"
)

// Where a resume was served from (the "source" of a recovered line and the label of
// ws_resume_requests_total).
const (
	SourceMemory = "memory" // the in-memory history
	SourceKafka  = "kafka"  // a catch-up reader on Kafka
)

// Why a resume did not recover (the "reason" of a recovered line, a label of
// ws_resume_requests_total). Stable: clients act on them.
const (
	NotRecoveredOutOfRetention = "out_of_retention" // a position is older than the log's start
	NotRecoveredEpochChanged   = "epoch_changed"    // the topic was deleted and recreated
	NotRecoveredTooFarBehind   = "too_far_behind"   // more to scan than WS_RESUME_MAX_SCAN_*
	NotRecoveredBusy           = "busy"             // no catch-up reader free in time
	NotRecoveredTimeout        = "timeout"          // the catch-up took longer than WS_RESUME_TIMEOUT
	NotRecoveredOverflow       = "overflow"         // live records waiting meanwhile passed the queue limits
	NotRecoveredUnavailable    = "unavailable"      // Kafka could not be read
)

// NotRecoveredReasons are every reason, in the order of docs/PROTOCOL.md. Read-only.
var NotRecoveredReasons = []string{
	NotRecoveredOutOfRetention, NotRecoveredEpochChanged, NotRecoveredTooFarBehind,
	NotRecoveredBusy, NotRecoveredTimeout, NotRecoveredOverflow, NotRecoveredUnavailable,
}

// Why a live stream has a gap (the "reason" of a gap line, the label of ws_live_gaps_total).
const (
	GapOffsetReset  = "offset_reset"  // the consumer's offset was out of range (records deleted, outage)
	GapEpochChanged = "epoch_changed" // the topic was deleted and recreated
)

// GapReasons are every gap reason. Read-only.
var GapReasons = []string{GapOffsetReset, GapEpochChanged}

// EncodeSubscribed builds the reply to a positioned subscribe or a resume:
// {"op":"subscribed","id":…,"channels":[…],"conflate":…?,"recovering":true?,"epochs":{…},
// "positions":{…}}.
// positions are where the subscription is live from (the last offset before live); for a
// resume they are sent again, final, in its recovered line.
func EncodeSubscribed(req Request, epochs Epochs, positions Positions, recovering bool) *Message {
	b := appendChannels(make([]byte, 0, 96+len(req.ID)+16*len(req.Channels)+32*len(positions)), req.Op, req.ID, req.HasID, req.Channels)
	b = appendConflate(b[:len(b)-1], req.Conflate) // reopened
	if recovering {
		b = append(b, `,"recovering":true`...)
	}
	b = append(b, `,"epochs":`...)
	b = appendEpochs(b, epochs)
	if !recovering {
		b = append(b, `,"positions":`...)
		b = appendPositions(b, positions)
	}
	return &Message{Wire: append(b, '}')}
}

// Recovered is the end of a resume: recovered (everything matching after the client's
// positions was replayed) or not, why, and where live starts.
type Recovered struct {
	ID    string
	HasID bool
	// Recovered is true when every matching record was replayed.
	Recovered bool
	// Source is SourceMemory or SourceKafka (recovered only).
	Source string
	// Replayed is how many records were sent in the replay.
	Replayed int
	// Reason is a NotRecovered* reason (not recovered only); Topic and Partition say where,
	// when one partition caused it (Partition -1 otherwise), and Earliest the log's first
	// offset for out_of_retention (-1 otherwise).
	Reason    string
	Topic     string
	Partition int32
	Earliest  int64
	// Epochs and Positions are the subscription's: live from there.
	Epochs    Epochs
	Positions Positions
}

// EncodeRecovered builds the recovered line: {"op":"recovered","id":…,"recovered":true,
// "source":…,"replayed":N,"epochs":{…},"positions":{…}} or {"op":"recovered","id":…,
// "recovered":false,"reason":…,"topic":…,"partition":…,"earliest":…,"replayed":0,…}.
func EncodeRecovered(r Recovered) *Message {
	b := make([]byte, 0, 128+len(r.ID)+32*len(r.Positions))
	b = append(b, `{"op":"recovered"`...)
	b = appendID(b, r.ID, r.HasID)
	if r.Recovered {
		b = append(b, `,"recovered":true,"source":`...)
		b = appendString(b, r.Source)
	} else {
		b = append(b, `,"recovered":false,"reason":`...)
		b = appendString(b, r.Reason)
		if r.Topic != "" {
			b = append(b, `,"topic":`...)
			b = appendString(b, r.Topic)
		}
		if r.Partition >= 0 && r.Topic != "" {
			b = append(b, `,"partition":`...)
			b = strconv.AppendInt(b, int64(r.Partition), 10)
		}
		if r.Earliest >= 0 {
			b = append(b, `,"earliest":`...)
			b = strconv.AppendInt(b, r.Earliest, 10)
		}
	}
	b = append(b, `,"replayed":`...)
	b = strconv.AppendInt(b, int64(r.Replayed), 10)
	b = append(b, `,"epochs":`...)
	b = appendEpochs(b, r.Epochs)
	b = append(b, `,"positions":`...)
	b = appendPositions(b, r.Positions)
	return &Message{Wire: append(b, '}')}
}

// EncodeMark builds a topic's periodic mark: {"op":"mark","topic":…,"positions":{"0":…}},
// the offset of the last record of each partition queued before it. One line per topic and
// interval, shared by all the topic's positioned subscribers.
func EncodeMark(topic string, parts map[int32]int64) *Message {
	b := make([]byte, 0, 48+len(topic)+24*len(parts))
	b = append(b, `{"op":"mark","topic":`...)
	b = appendString(b, topic)
	b = append(b, `,"positions":`...)
	b = appendPartitions(b, parts)
	return &Message{Topic: topic, Wire: append(b, '}')}
}

// EncodeGap builds the announcement of records of a partition the live stream skipped:
// {"op":"gap","topic":…,"partition":…,"from":…,"to":…,"reason":…}, from and to inclusive
// (to is the last offset that may be missing; records in between may or may not have
// existed). It goes to every subscriber of the topic (KindGap).
func EncodeGap(topic string, partition int32, from, to int64, reason string) *Message {
	b := make([]byte, 0, 112+len(topic)+len(reason))
	b = append(b, `{"op":"gap","topic":`...)
	b = appendString(b, topic)
	b = append(b, `,"partition":`...)
	b = strconv.AppendInt(b, int64(partition), 10)
	b = append(b, `,"from":`...)
	b = strconv.AppendInt(b, from, 10)
	b = append(b, `,"to":`...)
	b = strconv.AppendInt(b, to, 10)
	b = append(b, `,"reason":`...)
	b = appendString(b, reason)
	return &Message{Kind: KindGap, Topic: topic, Partition: partition, Offset: to, Wire: append(b, '}')}
}

// EncodeDraining builds the last line before a drain's 1001 close: {"op":"draining",
// "reconnect_after_ms":N,"epochs":{…},"positions":{…}}, the client's positions for the
// topics it subscribes to and how long to wait before reconnecting (jittered, so the other
// instances are not hit all at once).
func EncodeDraining(afterMs int64, epochs Epochs, positions Positions) *Message {
	b := make([]byte, 0, 96+32*len(positions))
	b = append(b, `{"op":"draining","reconnect_after_ms":`...)
	b = strconv.AppendInt(b, afterMs, 10)
	b = append(b, `,"epochs":`...)
	b = appendEpochs(b, epochs)
	b = append(b, `,"positions":`...)
	b = appendPositions(b, positions)
	return &Message{Wire: append(b, '}')}
}
