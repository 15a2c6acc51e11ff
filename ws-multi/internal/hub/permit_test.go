package hub

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// allowOnly is a Permit's Allows for exactly channels.
func allowOnly(channels ...string) func(string) bool {
	return func(ch string) bool {
		for _, c := range channels {
			if c == ch {
				return true
			}
		}
		return false
	}
}

// TestPermitRevokes: a permit that no longer allows some channels unsubscribes them in one
// sorted line with reason forbidden, before its reply; their records stop, the rest flow.
func TestPermitRevokes(t *testing.T) {
	f := start(t, Config{Shards: 2, MaxSubscriptions: 5, SendQueueMessages: 1000, SendQueueBytes: 1 << 20, WriteTimeout: time.Second})
	conn := newFake()
	c := f.client(t, conn)
	f.do(t, c, protocol.OpSubscribe, "1", "t:b", "t:a", "u:*")
	waitLines(t, conn, 1)
	reply := protocol.EncodeAuthed("a", true, 42)
	if err := f.h.Permit(f.ctx, c, Permit{Allows: allowOnly("t:a"), Reply: reply}); err != nil {
		t.Fatal(err)
	}
	waitLines(t, conn, 3)
	for i, ch := range []string{"t:b", "u:x", "t:a"} {
		topic, _, _ := strings.Cut(ch, ":")
		publish(t, f.h, &protocol.Message{Kind: protocol.KindRecord, Channel: ch, Topic: topic, Wire: []byte(fmt.Sprintf("%s#%d", ch, i+1))})
	}
	got := waitLines(t, conn, 4)
	want := []string{
		`{"op":"subscribed","id":"1","channels":["t:b","t:a","u:*"]}`,
		`{"op":"unsubscribed","channels":["t:b","u:*"],"reason":"forbidden"}`,
		`{"op":"authed","id":"a","exp":42}`,
		"t:a#3",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("lines =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if n := testutil.ToFloat64(f.m.Subscriptions); n != 1 {
		t.Errorf("ws_subscriptions = %v, want 1", n)
	}
}

// TestPermitNothingRevoked: a permit allowing every channel held sends only its reply.
func TestPermitNothingRevoked(t *testing.T) {
	f := start(t, testConfig())
	conn := newFake()
	c := f.client(t, conn)
	f.do(t, c, protocol.OpSubscribe, "1", "t:a")
	if err := f.h.Permit(f.ctx, c, Permit{Allows: allowOnly("t:a"), Reply: protocol.EncodeAuthed("", false, 7)}); err != nil {
		t.Fatal(err)
	}
	got := waitLines(t, conn, 2)
	if got[1] != `{"op":"authed","exp":7}` {
		t.Fatalf("lines %q, want the subscribe reply then only the authed line", got)
	}
}

// TestPermitCapsSubscriptions: a permit's cap lowers the channel limit (named in the error);
// one above Config.MaxSubscriptions does not raise it.
func TestPermitCapsSubscriptions(t *testing.T) {
	tests := []struct {
		cap, limit int
	}{
		{cap: 1, limit: 1},
		{cap: 10, limit: testConfig().MaxSubscriptions},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.cap), func(t *testing.T) {
			f := start(t, testConfig())
			conn := newFake()
			c := f.client(t, conn)
			if err := f.h.Permit(f.ctx, c, Permit{MaxSubscriptions: tt.cap}); err != nil {
				t.Fatal(err)
			}
			channels := make([]string, tt.limit+1)
			for i := range channels {
				channels[i] = fmt.Sprint("t:", i)
			}
			f.do(t, c, protocol.OpSubscribe, "s", channels...)
			got := waitLines(t, conn, 1)
			want := string(protocol.EncodeError(protocol.TooManySubscriptions(tt.limit, "s", true)).Wire)
			if got[0] != want {
				t.Fatalf("line %s, want %s", got[0], want)
			}
		})
	}
}

// TestPermitWaitsBehindAResume: a permit read while a resume reads Kafka applies after the
// requests before it, even past the bound of deferred requests (it is never refused): the
// channel subscribed behind the resume and no longer allowed is revoked after its reply.
func TestPermitWaitsBehindAResume(t *testing.T) {
	f, _, rd := kafkaFixture(t, Config{Shards: 2, MaxSubscriptions: 5, SendQueueMessages: 1000, SendQueueBytes: 1 << 20, WriteTimeout: time.Second}, nil)
	conn := newFake()
	c := f.client(t, conn)
	syncClient(t, f.h, c)
	f.resume(t, c, "r", &protocol.Resume{Positions: protocol.Positions{"t": {0: 3}}}, "t:a")
	f.do(t, c, protocol.OpSubscribe, "s", "t:b")
	for i := range maxDeferred {
		f.do(t, c, protocol.OpPing, fmt.Sprint(i))
	}
	if err := f.h.Permit(f.ctx, c, Permit{Allows: allowOnly("t:a"), Reply: protocol.EncodeAuthed("a", true, 1)}); err != nil {
		t.Fatal(err)
	}
	close(rd.release)
	syncClient(t, f.h, c)
	var ops []string
	for _, l := range parseLines(t, conn.got()) {
		if l.Op != "message" && l.Op != "pong" && l.Op != "error" {
			ops = append(ops, l.Op+l.ID)
		}
	}
	want := "subscribedr recoveredr subscribeds unsubscribed autheda"
	if got := strings.Join(ops, " "); got != want {
		t.Fatalf("ops = %s, want %s", got, want)
	}
}

// TestPermitAndRequestOneWrite: an auth's permit and the subscribe sent right behind it,
// both waiting when the shard wakes, are answered in one write: a round takes the control
// events waiting, not one.
func TestPermitAndRequestOneWrite(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		f := newIdleHub(t, testConfig())
		conn := newFake()
		c := f.idleClient(conn)
		ctx, cancel := context.WithCancel(context.Background())
		permit := Permit{Allows: allowOnly("t:a"), Reply: protocol.EncodeAuthed("a", true, 42)}
		if err := f.h.send(ctx, event{kind: evPermit, client: c, permit: permit}); err != nil {
			t.Fatal(err)
		}
		req := protocol.Request{Op: protocol.OpSubscribe, ID: "1", HasID: true, Channels: []string{"t:a"}}
		if err := f.h.send(ctx, event{kind: evRequest, client: c, req: req}); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { f.h.run(ctx); close(done) }()
		synctest.Wait()
		cancel()
		<-done
		want := [][]string{{`{"op":"authed","id":"a","exp":42}`, `{"op":"subscribed","id":"1","channels":["t:a"]}`}}
		if got := conn.socketWrites(); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("socket writes = %q, want %q: the two replies in one", got, want)
		}
	})
}
