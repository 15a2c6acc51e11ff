package load

// A failover client's state and the lines it reads: its stage, epochs and positions, taken
// from its messages and from the subscribed, recovered, draining, mark, gap and skipped
// lines, which move it from A through its resume to live on B.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/adred-codev/ws_poc/loadtest/internal/frame"
)

// Stages of a failover client.
const (
	stageConnecting uint8 = iota // dialling and subscribing (A, or B for a standby client)
	stageOnA                     // subscribed on A
	stageLeft                    // A's connection ended: waiting out the delay, dialling B
	stageResuming                // resume sent to B, no subscribed reply yet
	stageRecovering              // subscribed (recovering) on B: the replay
	stageLive                    // recovered line received: live on B
	stageFailed                  // the resume ended without a recovered line
)

// unfinishedNames names, for the figures, the stage an A client was left in when the run
// ended before its resume did.
var unfinishedNames = map[uint8]string{
	stageOnA:        "still_on_a",
	stageLeft:       "not_reconnected",
	stageResuming:   "no_subscribed_reply",
	stageRecovering: "no_recovered_line",
}

// foState is a failover client's state; only its connection goroutine touches it.
type foState struct {
	standby bool
	stage   uint8
	epochs  map[string]string
	pos     positions
	// drainNs is when the draining line arrived (0: none) and drainAfter its delay.
	drainNs    int64
	drainAfter time.Duration
	// leftNs: A's connection ended; resumeNs: resume sent; doneNs: recovered line read.
	leftNs, resumeNs, doneNs int64
	// replay counts messages received between the recovering reply and the recovered line.
	replay int64
}

// ctlLine is every field of the lines a failover client decodes in full: subscribed,
// recovered, draining, mark, gap, skipped. They are few (marks every WS_MARK_INTERVAL),
// so encoding/json is cheap enough; messages go through frame.Scan.
type ctlLine struct {
	Op               string            `json:"op"`
	ID               string            `json:"id"`
	Recovering       bool              `json:"recovering"`
	Recovered        *bool             `json:"recovered"`
	Source           string            `json:"source"`
	Reason           string            `json:"reason"`
	Replayed         int64             `json:"replayed"`
	ReconnectAfterMs *int64            `json:"reconnect_after_ms"`
	Topic            string            `json:"topic"`
	Partition        int32             `json:"partition"`
	Offset           *int64            `json:"offset"`
	To               *int64            `json:"to"`
	Epochs           map[string]string `json:"epochs"`
	Positions        json.RawMessage   `json:"positions"`
}

var keyOp = []byte(`"op":"`)

// lineOp is the op of a line, without decoding it: the server writes "op" first.
func lineOp(line []byte) []byte {
	i := bytes.Index(line, keyOp)
	if i < 0 {
		return nil
	}
	rest := line[i+len(keyOp):]
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return nil
	}
	return rest[:j]
}

// apply takes the epochs and the {topic: {partition: offset}} positions of a subscribed,
// recovered or draining line into the client's.
func (fo *foState) apply(l *ctlLine) error {
	for t, e := range l.Epochs {
		if fo.epochs == nil {
			fo.epochs = map[string]string{}
		}
		fo.epochs[t] = e
	}
	if len(l.Positions) == 0 || string(l.Positions) == "null" {
		return nil
	}
	var pos map[string]map[string]int64
	if err := json.Unmarshal(l.Positions, &pos); err != nil {
		return fmt.Errorf("%s positions: %w", l.Op, err)
	}
	for t, parts := range pos {
		if err := fo.pos.raiseWire(t, parts); err != nil {
			return err
		}
	}
	return nil
}

// message takes a message's position; the caller holds the connection's shard lock.
// A record's topic is its channel's part before the first ':' (the server refuses a
// channel header of another topic), so the line needs no further scan.
func (fo *foState) message(f *frame.Fields) {
	if f.Offset >= 0 {
		topic := f.Channel
		if i := bytes.IndexByte(topic, ':'); i >= 0 {
			topic = topic[:i]
		}
		fo.pos.raise(topic, f.Partition, f.Offset)
	}
	if fo.stage == stageRecovering {
		fo.replay++
	}
}

// foSubscribed handles a subscribed reply of a failover client: the positioned subscribe on
// A (or B, standby), or the resume's reply on B. The caller holds the shard lock.
func (g *group) foSubscribed(cs *connState, line []byte, subStart time.Time) {
	fo := cs.fo
	var l ctlLine
	err := json.Unmarshal(line, &l)
	if err == nil {
		err = fo.apply(&l)
	}
	if err != nil {
		g.mu.Lock()
		g.fo.badLines++
		g.mu.Unlock()
	}
	switch fo.stage {
	case stageConnecting:
		if l.ID != subscribeID {
			return
		}
		g.markSubscribed(cs, subStart)
		fo.stage = stageOnA
		if !fo.standby {
			g.awaiting.Add(1)
		}
	case stageResuming:
		if l.ID != subscribeID {
			return
		}
		if !l.Recovering {
			// A resume answered as a plain subscribe: live, with no replay and no recovered
			// line to wait for.
			g.resumeFailed(cs, "not_recovering")
			return
		}
		fo.stage = stageRecovering
	}
}

// foControl handles the lines frame.Scan does not classify (Kind Other) of a failover
// client. The caller holds the shard lock.
func (g *group) foControl(cs *connState, line []byte, now int64) {
	fo := cs.fo
	op := lineOp(line)
	switch string(op) {
	case "mark", "draining", "recovered", "gap", "skipped":
	default:
		return
	}
	var l ctlLine
	if err := json.Unmarshal(line, &l); err != nil {
		g.mu.Lock()
		g.fo.badLines++
		g.mu.Unlock()
		return
	}
	var err error
	switch l.Op {
	case "mark":
		var parts map[string]int64
		if err = json.Unmarshal(l.Positions, &parts); err == nil {
			err = fo.pos.raiseWire(l.Topic, parts)
		}
	case "skipped":
		if l.Offset != nil {
			fo.pos.raise([]byte(l.Topic), l.Partition, *l.Offset)
		}
	case "gap":
		if l.To != nil {
			fo.pos.raise([]byte(l.Topic), l.Partition, *l.To)
		}
		g.mu.Lock()
		g.fo.gaps++
		g.mu.Unlock()
	case "draining":
		err = fo.apply(&l)
		fo.drainNs = now
		if l.ReconnectAfterMs != nil {
			fo.drainAfter = time.Duration(*l.ReconnectAfterMs) * time.Millisecond
		}
		g.mu.Lock()
		g.fo.draining++
		g.mu.Unlock()
	case "recovered":
		err = fo.apply(&l)
		if (fo.stage == stageRecovering || fo.stage == stageResuming) && l.ID == subscribeID {
			g.recovered(cs, &l, now)
		}
	}
	if err != nil {
		g.mu.Lock()
		g.fo.badLines++
		g.mu.Unlock()
	}
}

// recovered ends a resume with its recovered line.
func (g *group) recovered(cs *connState, l *ctlLine, now int64) {
	fo := cs.fo
	fo.stage, fo.doneNs = stageLive, now
	g.awaiting.Add(-1)
	g.resumed.Add(1)
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case l.Recovered != nil && *l.Recovered:
		g.fo.recovered[orNone(l.Source)]++
	default:
		g.fo.notRecovered[orNone(l.Reason)]++
	}
	g.fo.replayed += l.Replayed
	g.fo.resume.RecordMicros((now - fo.resumeNs) / 1e3)
}

// resumeFailed ends a resume that will get no recovered line.
func (g *group) resumeFailed(cs *connState, cause string) {
	cs.fo.stage = stageFailed
	g.awaiting.Add(-1)
	g.resumed.Add(1)
	g.mu.Lock()
	g.fo.failed[cause]++
	g.mu.Unlock()
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
