// This file is duplicated in ws-single (internal/server/write_test.go) on purpose: the server layer is
// the same for one hub loop and for N shards; they may diverge.

package server

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/adred-codev/ws_poc/ws-multi/internal/config"
	"github.com/adred-codev/ws_poc/ws-multi/internal/hub"
	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

func msgs(lines ...string) []*protocol.Message {
	out := make([]*protocol.Message, len(lines))
	for i, l := range lines {
		out[i] = &protocol.Message{Wire: []byte(l)}
	}
	return out
}

func TestFrameSpan(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		lines []string
		max   int
		want  int
	}{
		{name: "all fit", lines: []string{"aaa", "bbb", "ccc"}, max: 11, want: 3},
		{name: "newline counts", lines: []string{"aaa", "bbb", "ccc"}, max: 10, want: 2},
		{name: "exactly one", lines: []string{"aaa", "bbb"}, max: 3, want: 1},
		{name: "oversized first alone", lines: []string{"aaaaaaaa", "b"}, max: 4, want: 1},
		{name: "single", lines: []string{"a"}, max: 100, want: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := frameSpan(msgs(tt.lines...), tt.max); got != tt.want {
				t.Fatalf("frameSpan = %d, want %d", got, tt.want)
			}
		})
	}
	if got := string(appendFrame([]byte("x"), msgs("a", "b", "c"))); got != "xa\nb\nc" {
		t.Fatalf("appendFrame = %q", got)
	}
}

// writeServer is the part of a Server that conn.Write uses.
func writeServer(cfg config.Config) *Server {
	s := &Server{cfg: cfg}
	s.frames.New = func() any { b := make([]byte, 0, cfg.BatchMaxBytes); return &b }
	s.corks.New = func() any { b := make([]byte, 0, 64); return &b }
	return s
}

// acceptConn upgrades r the way the server does and returns its connection, or nil (the
// failure reported) when the handshake failed.
func acceptConn(t *testing.T, s *Server, w http.ResponseWriter, r *http.Request) *conn {
	c := newConn(s, "test")
	uw := &upgradeWriter{ResponseWriter: w, corks: &s.corks, timeout: s.cfg.WriteTimeout, limit: s.cfg.SendQueueBytes, cut: c.corkCut}
	ws, err := websocket.Accept(uw, r, nil)
	if err != nil {
		t.Error(err)
		return nil
	}
	c.attach(ws, uw.cork)
	return c
}

// TestWriteFrames drives conn.Write over a real WebSocket and checks the
// frames the client sees, batched and not.
func TestWriteFrames(t *testing.T) {
	batch := msgs(`{"n":1}`, `{"n":2}`, `{"n":3}`, `{"big":"`+strings.Repeat("x", 40)+`"}`, `{"n":5}`)
	tests := []struct {
		name   string
		batch  bool
		frames []string
	}{
		{name: "batched", batch: true, frames: []string{
			"{\"n\":1}\n{\"n\":2}\n{\"n\":3}", `{"big":"` + strings.Repeat("x", 40) + `"}`, `{"n":5}`}},
		{name: "unbatched", batch: false, frames: []string{
			`{"n":1}`, `{"n":2}`, `{"n":3}`, `{"big":"` + strings.Repeat("x", 40) + `"}`, `{"n":5}`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Batch = tt.batch
			cfg.BatchMaxBytes = 24 // three small messages and two newlines
			s := writeServer(cfg)
			var wr hub.Written

			ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				c := acceptConn(t, s, w, r)
				if c == nil {
					return
				}
				var (
					done bool
					err  error
				)
				wr, done, err = c.Write(batch)
				if err == nil && !done {
					err = c.Flush()
				}
				if err != nil || wr.Lines != len(batch) {
					t.Errorf("Write() = %+v, %v; want all %d", wr, err, len(batch))
				}
				_ = c.ws.Close(websocket.StatusNormalClosure, "")
				if c.writeTimer != nil {
					c.writeTimer.Stop()
				}
			}))
			defer ts.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			ws, _, err := websocket.Dial(ctx, strings.Replace(ts.URL, "http", "ws", 1), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer ws.CloseNow()
			var frames []string
			for {
				_, data, err := ws.Read(ctx)
				if err != nil {
					break
				}
				frames = append(frames, string(data))
			}
			if strings.Join(frames, "|") != strings.Join(tt.frames, "|") {
				t.Fatalf("frames = %q, want %q", frames, tt.frames)
			}
			if wr.Frames != len(tt.frames) || wr.Lines != 5 {
				t.Errorf("Written = %+v, want %d frames of 5 lines", wr, len(tt.frames))
			}
		})
	}
}

// TestWriteTimesOutOnStalledSocket: a batch far larger than the socket takes, to a client
// that does not read: Write (on the hub goroutine) returns at once, having handed the socket only
// a chunk (about corkFlushBytes waits in the cork; the rest of the batch stays with the
// caller), and Flush (the flusher) ends within the write timeout as write_timeout.
func TestWriteTimesOutOnStalledSocket(t *testing.T) {
	cfg := config.Default()
	cfg.Batch = false // many small frames, each one a corked write
	cfg.WriteTimeout = 200 * time.Millisecond
	s := writeServer(cfg)
	line := `{"v":"` + strings.Repeat("x", 1000) + `"}`
	batch := make([]string, 16<<10) // 16 MiB: more than loopback socket buffers take
	for i := range batch {
		batch[i] = line
	}

	type result struct {
		w         hub.Written
		waiting   int // bytes in the cork after Write
		done      bool
		err, ferr error
		elapsed   time.Duration // of Write
		flushTook time.Duration
		reason    Reason
	}
	done := make(chan result, 1)
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c := acceptConn(t, s, w, r)
		if c == nil {
			return
		}
		start := time.Now()
		res := result{}
		res.w, res.done, res.err = c.Write(msgs(batch...))
		res.elapsed = time.Since(start)
		res.waiting = c.cork.waiting()
		if !res.done && res.err == nil {
			start = time.Now()
			res.ferr = c.Flush()
			res.flushTook = time.Since(start)
		}
		res.reason = c.why()
		c.bg.Wait()
		done <- res
	}))
	defer ts.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, strings.Replace(ts.URL, "http", "ws", 1), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow() // never reads: the server's writes stall
	select {
	case res := <-done:
		if res.done || res.err != nil {
			t.Fatalf("Write of 16 MiB to a client that does not read = %v, %v; want the rest left over", res.done, res.err)
		}
		if res.elapsed > 2*time.Second {
			t.Errorf("Write waited %v for the socket", res.elapsed)
		}
		if res.w.Lines >= len(batch) || res.waiting > corkFlushBytes+len(line)+16 {
			t.Errorf("Write took %d of %d messages and left %d bytes in the cork; want a chunk of about %d bytes",
				res.w.Lines, len(batch), res.waiting, corkFlushBytes)
		}
		if res.ferr == nil {
			t.Fatal("Flush of 16 MiB to a client that does not read succeeded")
		}
		if res.reason != ReasonWriteTimeout {
			t.Errorf("reason = %v, want write_timeout", res.reason)
		}
		if res.flushTook > 5*time.Second {
			t.Errorf("stalled Flush returned after %v with a %v timeout", res.flushTook, cfg.WriteTimeout)
		}
	case <-ctx.Done():
		t.Fatal("stalled Flush never returned")
	}
}
