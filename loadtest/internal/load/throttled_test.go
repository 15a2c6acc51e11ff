package load

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/adred-codev/ws_poc/loadtest/internal/latency"
)

// throttledGroup is a group of one subscribed throttled client on channels 0 and 1, as
// newGroup makes it, without its dialers.
func throttledGroup() (*group, *connState) {
	sc := &Scenario{Topic: "trades", ChannelPrefix: "lt-", Channels: 3}
	g := &group{sc: sc, ages: map[int64]*latency.Histogram{}, behind: map[int64]*latency.Histogram{}, throttled: 1}
	for i := range sc.Channels {
		g.names = append(g.names, sc.ChannelName(i))
	}
	for i := range g.shards {
		g.shards[i].interval, g.shards[i].thLatency = latency.New(), latency.New()
	}
	g.conns = []connState{{channels: throttledChannels(2), th: newThState(2), subscribed: true}}
	return g, &g.conns[0]
}

// msg is a message line of channel lt-<ch> with sequence number seq, sent at sentNs.
func msg(ch int, seq uint64, sentNs int64) string {
	return fmt.Sprintf(`{"op":"message","channel":"trades:lt-%d","topic":"trades","partition":%d,"offset":%d,"ts":1,"data":{"sent_ns":%d,"seq":%d,"step":0}}`,
		ch, ch, seq, sentNs, seq)
}

// conflated is a conflated line of channel lt-<ch>.
func conflated(ch int, skipped, to int64) string {
	return fmt.Sprintf(`{"op":"conflated","channel":"trades:lt-%d","topic":"trades","partition":%d,"skipped":%d,"to":%d}`, ch, ch, skipped, to)
}

func TestThrottledAccounting(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		frames []string // each frame's lines joined by '\n'
		lines, skipped,
		unannounced int64
		messages int64
	}{
		{"every record", []string{msg(0, 1, 10) + "\n" + msg(0, 2, 20), msg(0, 3, 30)}, 0, 0, 0, 3},
		{"a gap announced just before", []string{msg(0, 1, 10), conflated(0, 3, 4) + "\n" + msg(0, 5, 50)}, 1, 3, 0, 2},
		{"a gap nobody announced", []string{msg(0, 1, 10), msg(0, 4, 40)}, 0, 0, 2, 2},
		{"announced fewer than missing", []string{msg(0, 1, 10), conflated(0, 1, 2) + "\n" + msg(0, 4, 40)}, 1, 1, 1, 2},
		{"the first message after a conflated line: nothing to check against", []string{conflated(0, 5, 6) + "\n" + msg(0, 7, 70)}, 1, 5, 0, 1},
		{"an announcement counts once", []string{msg(0, 1, 10), conflated(0, 2, 3), msg(0, 4, 40), msg(0, 7, 70)}, 1, 2, 2, 3},
		{"channels apart", []string{
			msg(0, 1, 10) + "\n" + msg(1, 1, 11),
			conflated(1, 2, 3) + "\n" + msg(1, 4, 41) + "\n" + msg(0, 2, 20),
		}, 1, 2, 0, 4},
		{"a channel's announcement does not cover another's gap", []string{
			msg(0, 1, 10) + "\n" + msg(1, 1, 11),
			conflated(1, 2, 3) + "\n" + msg(0, 4, 40),
		}, 1, 2, 2, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g, cs := throttledGroup()
			sh := &g.shards[0]
			for _, f := range tt.frames {
				if code := g.handle(sh, cs, []byte(f), time.Time{}); code != "" {
					t.Fatalf("handle = %q", code)
				}
			}
			th := cs.th
			if th.conflatedLines != tt.lines || th.skipped != tt.skipped || th.unannounced != tt.unannounced || th.messages != tt.messages {
				t.Errorf("conflated lines %d skipped %d unannounced %d messages %d, want %d %d %d %d",
					th.conflatedLines, th.skipped, th.unannounced, th.messages, tt.lines, tt.skipped, tt.unannounced, tt.messages)
			}
			if sh.received != 0 || sh.thReceived != tt.messages || sh.thLatency.Count() != tt.messages {
				t.Errorf("healthy received %d, throttled %d (latency n=%d): a throttled client's messages count apart only",
					sh.received, sh.thReceived, sh.thLatency.Count())
			}
			if len(sh.steps) != 0 || sh.interval.Count() != 0 {
				t.Error("a throttled client's message reached the healthy clients' latency")
			}
		})
	}
}

func TestThrottledNewestPerChannel(t *testing.T) {
	t.Parallel()
	g, cs := throttledGroup()
	frame := strings.Join([]string{msg(0, 1, 100), msg(1, 1, 150), msg(0, 2, 300), msg(2, 1, 999)}, "\n")
	g.handle(&g.shards[0], cs, []byte(frame), time.Time{})
	if a, b := cs.th.newest[0].Load(), cs.th.newest[1].Load(); a != 300 || b != 150 {
		t.Errorf("newest values %d, %d, want 300 (channel 0), 150 (channel 1)", a, b)
	}
	// lt-2 is not one of its channels: it counts as read, and as the last message read.
	if cs.th.last.Load() != 999 || cs.th.messages != 4 {
		t.Errorf("last %d messages %d, want 999 and 4", cs.th.last.Load(), cs.th.messages)
	}
}

func TestSampleAt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		live         bool
		newest       []int64
		last         int64
		wantAges     []int64 // microseconds
		wantBehindUs int64   // 0: no sample
	}{
		{"both channels delivered", true, []int64{8e9, 9e9}, 9e9, []int64{2e6, 1e6}, 1e6},
		{"one channel not yet delivered: not sampled", true, []int64{0, 9.5e9}, 9.5e9, []int64{500e3}, 500e3},
		{"nothing delivered yet", true, []int64{0, 0}, 0, nil, 0},
		{"connection ended: not sampled", false, []int64{8e9, 9e9}, 9e9, nil, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			g, cs := throttledGroup()
			cs.th.live.Store(tt.live)
			for i, v := range tt.newest {
				cs.th.newest[i].Store(v)
			}
			cs.th.last.Store(tt.last)
			const now = int64(10e9)
			g.sampleAt(now)
			slot := now / int64(sampleEvery)
			ages := g.ages[slot]
			if len(tt.wantAges) == 0 {
				if ages != nil || len(g.ages) != 0 {
					t.Fatalf("ages sampled: %v", g.ages)
				}
			} else {
				if ages == nil || ages.Count() != int64(len(tt.wantAges)) {
					t.Fatalf("age samples in slot %d: %v, want %d", slot, ages, len(tt.wantAges))
				}
				var hi int64
				for _, a := range tt.wantAges {
					hi = max(hi, a)
				}
				if got := ages.Quantile(1).Microseconds(); got < hi*999/1000 || got > hi*1001/1000 {
					t.Errorf("oldest age %dµs, want %dµs", got, hi)
				}
			}
			behind := g.behind[slot]
			switch {
			case tt.wantBehindUs == 0 && behind != nil:
				t.Errorf("behind sampled: %d", behind.Count())
			case tt.wantBehindUs > 0 && (behind == nil || behind.Count() != 1):
				t.Errorf("behind samples %v, want one", behind)
			case tt.wantBehindUs > 0:
				if got := behind.Quantile(1).Microseconds(); got < tt.wantBehindUs*999/1000 || got > tt.wantBehindUs*1001/1000 {
					t.Errorf("behind %dµs, want %dµs", got, tt.wantBehindUs)
				}
			}
		})
	}
}

// TestThrottledFiguresWindow: groups' accounting adds up, and only the samples of slots
// within the publishing count (after it, every value only gets older).
func TestThrottledFiguresWindow(t *testing.T) {
	t.Parallel()
	w := int64(sampleEvery)
	from, to := time.Unix(0, 40*w), time.Unix(0, 44*w) // slots 40..43
	slots := func(ms map[int64]time.Duration) map[int64]*latency.Histogram {
		out := map[int64]*latency.Histogram{}
		for s, d := range ms {
			h := latency.New()
			h.Record(d)
			out[s] = h
		}
		return out
	}
	a := &GroupThrottled{Clients: 3, Subscribed: 3, Cut: map[string]int64{"eof": 1}, Messages: 100, Bytes: 20000, ReadSeconds: 2,
		ConflatedLines: 4, Skipped: 40, Latency: latency.New(), SlotNs: w,
		Ages:   slots(map[int64]time.Duration{39: time.Hour, 40: time.Second, 43: 2 * time.Second, 44: time.Hour}),
		Behind: slots(map[int64]time.Duration{41: 3 * time.Second, 50: time.Hour})}
	b := &GroupThrottled{Clients: 2, Subscribed: 2, Cut: map[string]int64{"eof": 1, "close_1008_slow": 2}, Messages: 50, Bytes: 10000, ReadSeconds: 1,
		Unannounced: 1, Latency: latency.New(), SlotNs: w,
		Ages: slots(map[int64]time.Duration{42: 1500 * time.Millisecond})}
	sc := &Scenario{ThrottleBytesPerSec: 20000, ThrottleConflate: ConflateBehind, SubsPerConn: 5, ThrottleSubs: 20}
	f := throttledFigures(sc, []*GroupResult{{Throttled: a}, {}, {Throttled: b}}, from, to)
	if f.Clients != 5 || f.Subscribed != 5 || f.Cut != 4 || f.CutBy["eof"] != 2 || f.CutBy["close_1008_slow"] != 2 {
		t.Errorf("clients %d subscribed %d cut %d %v, want 5, 5, 4 (eof=2 close_1008_slow=2)", f.Clients, f.Subscribed, f.Cut, f.CutBy)
	}
	if f.Messages != 150 || f.ConflatedLines != 4 || f.Skipped != 40 || f.Unannounced != 1 || f.ReadPerSec != 10000 {
		t.Errorf("messages %d lines %d skipped %d unannounced %d read %v B/s, want 150 4 40 1 10000", f.Messages, f.ConflatedLines, f.Skipped, f.Unannounced, f.ReadPerSec)
	}
	if f.ValueAge.Count != 3 || f.ValueAge.MaxMs < 1998 || f.ValueAge.MaxMs > 2002 {
		t.Errorf("value age %+v, want the 3 samples of slots 40-43, max 2 s", f.ValueAge)
	}
	if f.Behind.Count != 1 || f.Behind.MaxMs < 2998 || f.Behind.MaxMs > 3002 {
		t.Errorf("behind %+v, want the one sample of slot 41 (3 s)", f.Behind)
	}
	if f.Channels != 20 || f.Conflate != ConflateBehind || f.BytesPerSec != 20000 {
		t.Errorf("setup %d channels conflate %q %v B/s, want 20 behind 20000", f.Channels, f.Conflate, f.BytesPerSec)
	}
}

func TestValidateThrottle(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		mutate func(*Scenario)
		ok     bool
	}{
		{"throttled, conflating", func(s *Scenario) {}, true},
		{"throttled, not conflating", func(s *Scenario) { s.ThrottleConflate = "" }, true},
		{"no rate", func(s *Scenario) { s.ThrottleBytesPerSec = 0 }, false},
		{"fraction 1", func(s *Scenario) { s.ThrottleFraction = 1 }, false},
		{"negative fraction", func(s *Scenario) { s.ThrottleFraction = -0.1 }, false},
		{"with slow consumers", func(s *Scenario) { s.SlowFraction = 0.1 }, false},
		{"unknown conflate mode", func(s *Scenario) { s.ThrottleConflate = "always" }, false},
		{"conflate with another server's protocol", func(s *Scenario) { s.Send = []string{"{}"} }, false},
		{"more channels than there are", func(s *Scenario) { s.ThrottleSubs = 6 }, false},
		{"every channel", func(s *Scenario) { s.ThrottleSubs = 5 }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sc := testScenario("ws://127.0.0.1:3002/ws")
			sc.ThrottleFraction, sc.ThrottleBytesPerSec, sc.ThrottleConflate, sc.ThrottleSubs = 0.1, 20000, ConflateBehind, 3
			tt.mutate(&sc)
			if err := sc.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// TestThrottledClients runs throttled clients against the fake server: they subscribe to
// the hottest channels with conflate, read through the throttled link, and count apart
// from the healthy clients.
func TestThrottledClients(t *testing.T) {
	srv := newFakeServer(t, 3)
	sc := testScenario(srv.url())
	sc.Conns = 20
	sc.ThrottleFraction, sc.ThrottleBytesPerSec, sc.ThrottleConflate, sc.ThrottleSubs = 0.25, 50000, ConflateBehind, 3
	res, err := run(testCtx(t), sc, io.Discard, testWorkerCmd)
	if err != nil {
		t.Fatal(err)
	}
	th := res.Throttled
	if th == nil {
		t.Fatal("no throttled figures")
	}
	// 5 throttled clients x 3 channels x 3 messages; 15 healthy x 2 x 3.
	if th.Clients != 5 || th.Subscribed != 5 || th.Messages != 45 || th.Cut != 0 || th.Unannounced != 0 {
		t.Errorf("throttled %+v, want 5 clients subscribed, 45 messages, none cut", th)
	}
	if res.Messages.Received != 90 || res.Messages.Latency.Count != 90 {
		t.Errorf("healthy received %d (latency n=%d), want 90: throttled messages count apart", res.Messages.Received, res.Messages.Latency.Count)
	}
	if th.Bytes == 0 || th.ReadPerSec <= 0 {
		t.Errorf("bytes %d read %v B/s, want both counted", th.Bytes, th.ReadPerSec)
	}
	var conflating, hottest int
	for _, first := range srv.firsts {
		var req struct {
			Channels []string `json:"channels"`
			Conflate string   `json:"conflate"`
		}
		if err := json.Unmarshal([]byte(first), &req); err != nil {
			t.Fatal(err)
		}
		if req.Conflate == ConflateBehind {
			conflating++
			if strings.Join(req.Channels, ",") == "trades:lt-0,trades:lt-1,trades:lt-2" {
				hottest++
			}
		}
	}
	if conflating != 5 || hottest != 5 {
		t.Errorf("%d subscribes asked for conflation, %d of them on lt-0..2; want 5 and 5", conflating, hottest)
	}
}

func TestThrottledReadSpan(t *testing.T) {
	t.Parallel()
	type frame struct {
		n        int
		at       int64
		messages bool
	}
	tests := []struct {
		name        string
		frames      []frame
		bytes       int64
		first, last int64
	}{
		{"the subscribed reply does not start the span", []frame{{100, 1, false}, {1000, 50, true}, {1000, 60, true}}, 2100, 50, 60},
		{"control lines after the first message extend it", []frame{{1000, 5, true}, {80, 9, false}}, 1080, 5, 9},
		{"no message: no span", []frame{{100, 1, false}, {80, 2, false}}, 180, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			th := newThState(1)
			for _, f := range tt.frames {
				th.read(f.n, f.at, f.messages)
			}
			if th.bytes != tt.bytes || th.firstRead != tt.first || th.lastRead != tt.last {
				t.Errorf("bytes %d span %d-%d, want %d, %d-%d", th.bytes, th.firstRead, th.lastRead, tt.bytes, tt.first, tt.last)
			}
		})
	}
}
