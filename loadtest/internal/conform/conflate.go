package conform

// What docs/PROTOCOL.md "Conflation" puts on the wire (the subscribe's conflate and its
// echo, the conflated line, a message's "conflated" count) and the one rule every
// conflation check holds a client's log to: whatever it did not get was announced.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
)

// The modes of a subscribe's conflate, as sent.
const conflateBehind = "behind"

// conflateEvery is the conflate of a subscription at an interval of ms milliseconds.
func conflateEvery(ms int) map[string]int { return map[string]int{"ms": ms} }

// conflation holds the fields of the Conflation section on a server line.
type conflation struct {
	Conflate  json.RawMessage `json:"conflate"`  // a subscribed reply: the request's conflate, echoed
	Skipped   *int            `json:"skipped"`   // a conflated line: records dropped on purpose
	To        *int64          `json:"to"`        // a conflated line: the offset of the last of them
	Conflated *int            `json:"conflated"` // a message at an interval: the records it replaced
}

func parseConflation(raw []byte) (conflation, error) {
	var c conflation
	if err := json.Unmarshal(raw, &c); err != nil {
		return c, fmt.Errorf("conflation fields of the wrong type: %w: %s", err, clip(raw))
	}
	return c, nil
}

// checkConflateEcho checks that a subscribed reply echoes conflate, the value the
// subscribe sent.
func checkConflateEcho(r Envelope, conflate any) error {
	want, _ := json.Marshal(conflate) // a string or a map of ints
	c, err := parseConflation(r.Raw)
	if err != nil {
		return err
	}
	var got bytes.Buffer
	if len(c.Conflate) == 0 || json.Compact(&got, c.Conflate) != nil || !bytes.Equal(got.Bytes(), want) {
		return fmt.Errorf("the subscribed reply to a subscribe with \"conflate\":%s does not echo it: %s", want, clip(r.Raw))
	}
	return nil
}

// conflateKey is what conflation keeps one latest record of: a channel in one partition.
type conflateKey struct {
	channel   string
	partition int32
}

func (k conflateKey) String() string {
	return fmt.Sprintf("%s in partition %d", k.channel, k.partition)
}

// keyRecords is what a check produced to each key: the offsets of its records, ascending.
type keyRecords map[conflateKey][]int64

// add notes a record produced to channel.
func (w keyRecords) add(channel string, p produced) {
	k := conflateKey{channel, p.partition}
	w[k] = append(w[k], p.offset)
}

// last is the offset of the last record of k.
func (w keyRecords) last(k conflateKey) int64 { return w[k][len(w[k])-1] }

// conflateTally is what verifyConflated found in a client's log.
type conflateTally struct {
	delivered map[conflateKey][]item // each key's messages, in the order received
	lines     int                    // conflated lines
	fields    int                    // messages with a "conflated" count
	skipped   int                    // records announced as skipped, by lines and counts
}

// deliveredOf is how many messages of the check's keys arrived.
func (t conflateTally) deliveredOf() int {
	n := 0
	for _, ms := range t.delivered {
		n += len(ms)
	}
	return n
}

// pendingLine is a conflated line waiting for the message it announces.
type pendingLine struct {
	skipped int
	to      int64
	raw     []byte
}

// verifyConflated checks what a conflating client received of the check's records:
//   - per partition, offsets only grow (conflation keeps a partition's order);
//   - every message of a key is one of the records produced to it;
//   - a conflated line is followed at once by a newer message of its channel and partition;
//   - the records of a key between two of its messages (or before its first) are exactly
//     the ones announced: the skipped of the conflated line right before the later message,
//     whose to is the last of them, plus that message's "conflated" count.
//
// The stream need not be complete: a check compares each key's last message with its last
// record itself. Lines and messages of other channels are only held to the offset order.
func verifyConflated(items []item, topic string, want keyRecords) (conflateTally, error) {
	t := conflateTally{delivered: map[conflateKey][]item{}}
	lastOffset := map[int32]int64{}
	next := map[conflateKey]int{} // index in want of a key's first record not yet accounted for
	var line *pendingLine
	for i, it := range items {
		e := it.env
		switch e.Op {
		case "conflated":
			c, err := parseConflation(e.Raw)
			if err != nil {
				return t, err
			}
			if e.Topic != topic || e.Partition == nil {
				return t, fmt.Errorf("a conflated line without topic %s and a partition: %s", topic, clip(e.Raw))
			}
			k := conflateKey{e.Channel, *e.Partition}
			if _, ok := want[k]; !ok {
				return t, fmt.Errorf("a conflated line of %s, where the check produced nothing: %s", k, clip(e.Raw))
			}
			if c.Skipped == nil || *c.Skipped < 1 || c.To == nil {
				return t, fmt.Errorf("a conflated line without a count \"skipped\" of 1 or more and an offset \"to\": %s", clip(e.Raw))
			}
			if i+1 == len(items) || !isNewerMessageOf(items[i+1].env, topic, k, *c.To) {
				after := "nothing"
				if i+1 < len(items) {
					after = clip(items[i+1].env.Raw)
				}
				return t, fmt.Errorf("the conflated line %s is followed by %s, want at once a message of %s past offset %d", clip(e.Raw), after, k, *c.To)
			}
			t.lines++
			t.skipped += *c.Skipped
			line = &pendingLine{skipped: *c.Skipped, to: *c.To, raw: e.Raw}
		case "message":
			if e.Topic != topic || e.Partition == nil || e.Offset == nil {
				continue
			}
			part, off := *e.Partition, *e.Offset
			if prev, ok := lastOffset[part]; ok && off <= prev {
				return t, fmt.Errorf("partition %d: offset %d after %d: conflation must keep a partition's order", part, off, prev)
			}
			lastOffset[part] = off
			k := conflateKey{e.Channel, part}
			recs, ok := want[k]
			if !ok {
				continue
			}
			idx, found := slices.BinarySearch(recs, off)
			if !found {
				return t, fmt.Errorf("a message of %s at offset %d, which is no record the check produced to it: %s", k, off, clip(e.Raw))
			}
			c, err := parseConflation(e.Raw)
			if err != nil {
				return t, err
			}
			missed := recs[next[k]:idx]
			announced := 0
			if line != nil {
				announced += line.skipped
				if len(missed) > 0 && line.to != missed[len(missed)-1] {
					return t, fmt.Errorf("%s: the conflated line %s says the last skipped record is at %d, it is at %d", k, clip(line.raw), line.to, missed[len(missed)-1])
				}
			}
			if c.Conflated != nil {
				if *c.Conflated < 0 {
					return t, fmt.Errorf("a negative \"conflated\" count: %s", clip(e.Raw))
				}
				announced += *c.Conflated
				t.fields++
				t.skipped += *c.Conflated
			}
			if announced != len(missed) {
				return t, fmt.Errorf("%s: %d records between offsets %d and %d were not delivered, %d announced (conflated lines and counts): %s", k, len(missed), prevOffset(recs, next[k]), off, announced, clip(e.Raw))
			}
			next[k] = idx + 1
			t.delivered[k] = append(t.delivered[k], it)
			line = nil
		}
	}
	return t, nil
}

// isNewerMessageOf reports whether e is a message of key k past offset to.
func isNewerMessageOf(e Envelope, topic string, k conflateKey, to int64) bool {
	return e.Op == "message" && e.Topic == topic && e.Channel == k.channel &&
		e.Partition != nil && *e.Partition == k.partition && e.Offset != nil && *e.Offset > to
}

// prevOffset is the offset of the record before recs[i], -1 before the first.
func prevOffset(recs []int64, i int) int64 {
	if i == 0 {
		return -1
	}
	return recs[i-1]
}

// checkLatest checks that the last message of every key is its last record, with data
// (the record's value as a message carries it: null when empty).
func checkLatest(t conflateTally, want keyRecords, data map[conflateKey]string) error {
	for k := range want {
		ms := t.delivered[k]
		if len(ms) == 0 {
			return fmt.Errorf("no message of %s", k)
		}
		last := ms[len(ms)-1].env
		if *last.Offset != want.last(k) {
			return fmt.Errorf("the last message of %s is at offset %d, want the last record, at %d", k, *last.Offset, want.last(k))
		}
		if d, ok := data[k]; ok && (!last.HasData || string(last.Data) != d) {
			return fmt.Errorf("the last message of %s carries data %s, want %s: %s", k, last.Data, d, clip(last.Raw))
		}
	}
	return nil
}
