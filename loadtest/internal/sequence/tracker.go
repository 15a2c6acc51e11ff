// Package sequence accounts for lost, duplicated and out-of-order messages of one
// subscription (one connection, one channel).
//
// The producer numbers the records of every channel 1, 2, 3, ... (the seq field of the
// record value) and Kafka gives each record a partition and offset. A receiver feeds every
// message to Observe: the Kafka position finds duplicates and reordering (per partition,
// offsets only grow), the per-channel sequence number finds gaps. Lost is then the number of
// records the producer had acknowledged minus the distinct ones received, so a message
// that never arrived, even the last one, is counted.
package sequence

// maxMissing bounds the set of sequence numbers remembered as gaps per subscription. A
// late arrival inside a remembered gap counts as out-of-order and not as lost; past the
// bound a late arrival is counted as a duplicate, which is the conservative reading.
const maxMissing = 4096

// Tracker accounts for one subscription. The zero value is ready to use. It is not safe for
// concurrent use; one connection's reader owns it.
type Tracker struct {
	next       uint64 // next sequence number expected (highest seen + 1)
	missing    map[uint64]struct{}
	partitions []position
	// Distinct counts distinct sequence numbers received, per step (see Observe).
	Distinct []int64
	// Duplicates counts messages whose sequence number (or Kafka offset) was seen before.
	Duplicates int64
	// OutOfOrder counts messages that arrived after a later one of the same partition.
	OutOfOrder int64
}

type position struct {
	partition int32
	offset    int64
}

// Verdict classifies one observed message.
type Verdict uint8

// Verdicts of Observe.
const (
	// InOrder is a new message after every earlier one.
	InOrder Verdict = iota
	// Duplicate is a message seen before.
	Duplicate
	// Late is a new message that arrived after a later one (out of order).
	Late
)

// Observe records a message with per-channel sequence number seq (starting at 1), Kafka
// partition and offset (offset < 0 when unknown) and the producer's step index (0 for a
// single-rate run), and reports how it was classified.
func (t *Tracker) Observe(seq uint64, partition int32, offset int64, step int) Verdict {
	if t.next == 0 {
		t.next = 1
	}
	v := t.classify(seq)
	if offset >= 0 && v != Duplicate {
		v = t.checkOffset(partition, offset, v)
	}
	switch v {
	case Duplicate:
		t.Duplicates++
	case Late:
		t.OutOfOrder++
		t.countDistinct(step)
	default:
		t.countDistinct(step)
	}
	return v
}

func (t *Tracker) classify(seq uint64) Verdict {
	switch {
	case seq >= t.next:
		for s := t.next; s < seq; s++ {
			if len(t.missing) >= maxMissing {
				break
			}
			if t.missing == nil {
				t.missing = make(map[uint64]struct{})
			}
			t.missing[s] = struct{}{}
		}
		t.next = seq + 1
		return InOrder
	default:
		if _, ok := t.missing[seq]; ok {
			delete(t.missing, seq)
			return Late
		}
		return Duplicate
	}
}

// checkOffset applies the Kafka rule: per partition, offsets only grow. A repeated offset is
// a duplicate even if the sequence number looked new (a record delivered twice under two
// numbers cannot happen with our producer, but another server may renumber).
func (t *Tracker) checkOffset(partition int32, offset int64, v Verdict) Verdict {
	for i := range t.partitions {
		p := &t.partitions[i]
		if p.partition != partition {
			continue
		}
		switch {
		case offset == p.offset:
			return Duplicate
		case offset < p.offset:
			return Late
		default:
			p.offset = offset
			return v
		}
	}
	t.partitions = append(t.partitions, position{partition: partition, offset: offset})
	return v
}

func (t *Tracker) countDistinct(step int) {
	if step < 0 {
		step = 0
	}
	for len(t.Distinct) <= step {
		t.Distinct = append(t.Distinct, 0)
	}
	t.Distinct[step]++
}

// Counts are the accounting figures of one channel summed over its subscriptions, or of a
// whole run. Lost is filled in by Settle, once the producer's counts are known.
type Counts struct {
	Subscribers int64   `json:"subscribers"`
	Distinct    []int64 `json:"distinct"`
	Duplicates  int64   `json:"duplicates"`
	OutOfOrder  int64   `json:"out_of_order"`
	Expected    []int64 `json:"expected,omitempty"`
	Lost        []int64 `json:"lost,omitempty"`
}

// Add folds one subscription's tracker into c.
func (c *Counts) Add(t *Tracker) {
	c.Subscribers++
	c.Duplicates += t.Duplicates
	c.OutOfOrder += t.OutOfOrder
	c.Distinct = addSlices(c.Distinct, t.Distinct)
}

// Merge folds another Counts (another worker's view of the same channel) into c.
func (c *Counts) Merge(o Counts) {
	c.Subscribers += o.Subscribers
	c.Duplicates += o.Duplicates
	c.OutOfOrder += o.OutOfOrder
	c.Distinct = addSlices(c.Distinct, o.Distinct)
}

// Settle computes Expected and Lost per step from the number of records the producer had
// acknowledged for this channel in each step: every subscriber should have received each.
func (c *Counts) Settle(produced []int64) {
	c.Expected = make([]int64, len(produced))
	c.Lost = make([]int64, len(produced))
	for i, n := range produced {
		c.Expected[i] = n * c.Subscribers
		var got int64
		if i < len(c.Distinct) {
			got = c.Distinct[i]
		}
		if lost := c.Expected[i] - got; lost > 0 {
			c.Lost[i] = lost
		}
	}
}

// TotalLost sums Lost over the steps.
func (c *Counts) TotalLost() int64 { return sum(c.Lost) }

func addSlices(a, b []int64) []int64 {
	for len(a) < len(b) {
		a = append(a, 0)
	}
	for i, v := range b {
		a[i] += v
	}
	return a
}

func sum(a []int64) int64 {
	var s int64
	for _, v := range a {
		s += v
	}
	return s
}
