package load

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// fakeLog is the "Kafka" a pair of fake instances serves: records appended with a
// partition (by channel hash, two partitions), a per-partition offset and the producer's
// per-channel sequence number.
type fakeLog struct {
	mu       sync.Mutex
	recs     []fakeRec
	next     [2]int64
	seq      map[string]uint64
	produced map[string][]int64
}

type fakeRec struct {
	channel string
	part    int32
	off     int64
	seq     uint64
}

func newFakeLog() *fakeLog {
	return &fakeLog{seq: map[string]uint64{}, produced: map[string][]int64{}}
}

func (l *fakeLog) publish(channel string) {
	h := fnv.New32a()
	h.Write([]byte(channel))
	part := int32(h.Sum32() % 2)
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seq[channel]++
	l.recs = append(l.recs, fakeRec{channel: channel, part: part, off: l.next[part], seq: l.seq[channel]})
	// Offsets are not contiguous per channel (other keys share the partition): step by 2.
	l.next[part] += 2
	if l.produced[channel] == nil {
		l.produced[channel] = []int64{0}
	}
	l.produced[channel][0]++
}

// last is, per partition, the offset of the last record of recs[:n] (-1: none).
func (l *fakeLog) last(n int) map[string]int64 {
	out := map[string]int64{"0": -1, "1": -1}
	for _, r := range l.recs[:n] {
		out[fmt.Sprint(r.part)] = r.off
	}
	return out
}

func (l *fakeLog) producedCopy() map[string][]int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string][]int64{}
	for k, v := range l.produced {
		out[k] = slices.Clone(v)
	}
	return out
}

// fakeInstance is one server instance of the protocol's positions and resume, enough for
// the failover client: positioned subscribe, marks, resume from memory (the whole log),
// kill (sockets closed without a close frame) and drain (draining line, then 1001).
type fakeInstance struct {
	log *fakeLog
	srv *httptest.Server
	wg  sync.WaitGroup
	// dupReplay sends the first replayed record twice; notRecovered answers every resume
	// "recovered":false with this reason and no replay.
	dupReplay    bool
	notRecovered string
	drainAfter   time.Duration
	kill, drain  chan struct{}
	endOnce      sync.Once
}

func newFakeInstance(t *testing.T, log *fakeLog, setup func(*fakeInstance)) *fakeInstance {
	t.Helper()
	f := &fakeInstance{log: log, kill: make(chan struct{}), drain: make(chan struct{})}
	if setup != nil {
		setup(f)
	}
	f.srv = httptest.NewServer(acceptWS(&f.wg, f.serveConn))
	t.Cleanup(func() {
		f.end(f.kill)
		f.srv.Close()
		f.wg.Wait()
	})
	return f
}

func (f *fakeInstance) url() string { return "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/ws" }

// end kills (ch = f.kill) or drains (f.drain) the instance, once.
func (f *fakeInstance) end(ch chan struct{}) { f.endOnce.Do(func() { close(ch) }) }

func (f *fakeInstance) serveConn(ctx context.Context, c *websocket.Conn) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	_, b, err := c.Read(ctx)
	if err != nil {
		return
	}
	var req struct {
		ID         string   `json:"id"`
		Channels   []string `json:"channels"`
		Positioned bool     `json:"positioned"`
		Resume     *struct {
			Epochs    map[string]string           `json:"epochs"`
			Positions map[string]map[string]int64 `json:"positions"`
		} `json:"resume"`
	}
	if json.Unmarshal(b, &req) != nil {
		return
	}
	// The client's later frames (none) and its close: read them so a close is seen.
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		defer cancel()
		readToEnd(ctx, c)
	}()
	want := map[string]bool{}
	for _, ch := range req.Channels {
		want[ch] = true
	}
	var lines []string
	f.log.mu.Lock()
	cursor := len(f.log.recs)
	pos := f.log.last(cursor)
	var replay []fakeRec
	if req.Resume != nil && f.notRecovered == "" {
		from := req.Resume.Positions["trades"]
		for _, rec := range f.log.recs[:cursor] {
			if want[rec.channel] && rec.off > from[fmt.Sprint(rec.part)] {
				replay = append(replay, rec)
			}
		}
	}
	f.log.mu.Unlock()
	posJSON, _ := json.Marshal(map[string]map[string]int64{"trades": pos})
	chJSON, _ := json.Marshal(req.Channels)
	switch {
	case req.Resume == nil:
		lines = append(lines, fmt.Sprintf(`{"op":"subscribed","id":%q,"channels":%s,"epochs":{"trades":"E1"},"positions":%s}`, req.ID, chJSON, posJSON))
	case f.notRecovered != "":
		lines = append(lines,
			fmt.Sprintf(`{"op":"subscribed","id":%q,"channels":%s,"recovering":true,"epochs":{"trades":"E1"}}`, req.ID, chJSON),
			fmt.Sprintf(`{"op":"recovered","id":%q,"recovered":false,"reason":%q,"replayed":0,"epochs":{"trades":"E1"},"positions":%s}`, req.ID, f.notRecovered, posJSON))
	default:
		lines = append(lines, fmt.Sprintf(`{"op":"subscribed","id":%q,"channels":%s,"recovering":true,"epochs":{"trades":"E1"}}`, req.ID, chJSON))
		for i, rec := range replay {
			lines = append(lines, messageLine(rec))
			if i == 0 && f.dupReplay {
				lines = append(lines, messageLine(rec))
			}
		}
		lines = append(lines, fmt.Sprintf(`{"op":"recovered","id":%q,"recovered":true,"source":"memory","replayed":%d,"epochs":{"trades":"E1"},"positions":%s}`, req.ID, len(replay), posJSON))
	}
	if c.Write(ctx, websocket.MessageText, []byte(strings.Join(lines, "\n"))) != nil {
		return
	}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-f.kill:
			return // CloseNow: no close frame, as a killed process's sockets end
		case <-f.drain:
			f.log.mu.Lock()
			pos := f.log.last(cursor)
			f.log.mu.Unlock()
			posJSON, _ := json.Marshal(map[string]map[string]int64{"trades": pos})
			line := fmt.Sprintf(`{"op":"draining","reconnect_after_ms":%d,"epochs":{"trades":"E1"},"positions":%s}`, f.drainAfter.Milliseconds(), posJSON)
			if c.Write(ctx, websocket.MessageText, []byte(line)) == nil {
				_ = c.Close(websocket.StatusGoingAway, "shutdown")
			}
			return
		case <-tick.C:
		}
		f.log.mu.Lock()
		recs := f.log.recs[cursor:]
		cursor = len(f.log.recs)
		mark, _ := json.Marshal(f.log.last(cursor))
		f.log.mu.Unlock()
		lines = lines[:0]
		for _, rec := range recs {
			if want[rec.channel] {
				lines = append(lines, messageLine(rec))
			}
		}
		lines = append(lines, fmt.Sprintf(`{"op":"mark","topic":"trades","positions":%s}`, mark))
		if c.Write(ctx, websocket.MessageText, []byte(strings.Join(lines, "\n"))) != nil {
			return
		}
	}
}

func messageLine(r fakeRec) string {
	return fmt.Sprintf(`{"op":"message","channel":%q,"topic":"trades","partition":%d,"offset":%d,"ts":1,"data":{"sent_ns":%d,"seq":%d,"step":0}}`,
		r.channel, r.part, r.off, time.Now().UnixNano(), r.seq)
}
