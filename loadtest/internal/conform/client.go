package conform

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/time/rate"
)

// frameStats collects, over every client of a run, how the server framed what it sent.
type frameStats struct {
	mu            sync.Mutex
	frames        int
	multiLine     int
	maxLines      int
	oversizeBatch []string // multi-line frames larger than the batch limit
	malformed     []string // frames that do not split into JSON objects
}

func (s *frameStats) add(frame []byte, lines int, err error, batchMax int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.frames++
	if err != nil {
		if len(s.malformed) < 5 {
			s.malformed = append(s.malformed, fmt.Sprintf("%v in frame %q", err, clip(frame)))
		}
		return
	}
	if lines > 1 {
		s.multiLine++
		if batchMax > 0 && len(frame) > batchMax && len(s.oversizeBatch) < 5 {
			s.oversizeBatch = append(s.oversizeBatch, fmt.Sprintf("%d lines in %d bytes", lines, len(frame)))
		}
	}
	s.maxLines = max(s.maxLines, lines)
}

func (s *frameStats) snapshot() (frames, multiLine, maxLines int, oversize, malformed []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.frames, s.multiLine, s.maxLines, append([]string(nil), s.oversizeBatch...), append([]string(nil), s.malformed...)
}

// item is one received object and the frame it came in.
type item struct {
	env        Envelope
	frame      int // sequence number of the frame on this connection
	frameLines int
	at         time.Time // when its frame was read
}

// client is a WebSocket connection under test. A reader goroutine receives every frame
// as soon as it arrives (so the server never sees us as a slow consumer), splits and logs
// it; checks then search the log.
type client struct {
	conn    *websocket.Conn
	pace    *rate.Limiter
	stats   *frameStats
	cancel  context.CancelFunc
	done    chan struct{}
	changed chan struct{} // size 1: a wake-up for waiters, coalesced

	mu       sync.Mutex
	log      []item
	claimed  map[int]bool
	frames   int
	closeErr error // why reading stopped, set before done closes
}

// dialOptions are the knobs of one dial.
type dialOptions struct {
	origin    string
	protocols []string // Sec-WebSocket-Protocol offers
}

// dial opens a connection to the suite's URL and starts its reader.
func (s *suite) dial(ctx context.Context, o dialOptions) (*client, *http.Response, error) {
	h := http.Header{}
	if o.origin != "" {
		h.Set("Origin", o.origin)
	}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(dctx, s.cfg.URL, &websocket.DialOptions{HTTPHeader: h, HTTPClient: s.http, Subprotocols: o.protocols})
	if err != nil {
		return nil, resp, fmt.Errorf("dial %s: %w", s.cfg.URL, err)
	}
	return s.newClient(conn), resp, nil
}

// newClient starts the suite's reader on an open connection: from now on everything the
// server sends is logged as it arrives.
func (s *suite) newClient(conn *websocket.Conn) *client {
	// A single message may exceed the batch limit; nothing the server sends should be
	// refused by our side.
	conn.SetReadLimit(64 << 20)
	rctx, rcancel := context.WithCancel(context.Background())
	c := &client{
		conn:    conn,
		pace:    s.pacer(),
		stats:   &s.frames,
		cancel:  rcancel,
		done:    make(chan struct{}),
		changed: make(chan struct{}, 1),
		claimed: map[int]bool{},
	}
	go c.read(rctx, s.cfg.BatchMaxBytes)
	return c
}

func (c *client) read(ctx context.Context, batchMax int) {
	defer close(c.done)
	for {
		typ, frame, err := c.conn.Read(ctx)
		if err != nil {
			c.mu.Lock()
			c.closeErr = err
			c.mu.Unlock()
			c.wake()
			return
		}
		if typ != websocket.MessageText {
			c.stats.add(frame, 0, errors.New("binary frame from the server"), batchMax)
			continue
		}
		now := time.Now()
		envs, err := SplitFrame(frame)
		c.stats.add(frame, len(envs), err, batchMax)
		c.mu.Lock()
		c.frames++
		for _, e := range envs {
			c.log = append(c.log, item{env: e, frame: c.frames, frameLines: len(envs), at: now})
		}
		c.mu.Unlock()
		c.wake()
	}
}

func (c *client) wake() {
	select {
	case c.changed <- struct{}{}:
	default:
	}
}

// close ends the connection with a normal closure and waits for the reader.
func (c *client) close() {
	// Close waits for the server's close frame; bound it so a stuck server cannot hang us.
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = c.conn.Close(websocket.StatusNormalClosure, "")
	}()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		_ = c.conn.CloseNow()
		<-done
	}
	c.cancel()
	<-c.done
}

// send writes v as JSON in one text frame, paced below the server's rate limit.
func (c *client) send(ctx context.Context, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	return c.sendRaw(ctx, websocket.MessageText, b)
}

// sendRaw writes one frame of the given type, paced below the server's rate limit.
func (c *client) sendRaw(ctx context.Context, typ websocket.MessageType, b []byte) error {
	if err := c.pace.Wait(ctx); err != nil {
		return fmt.Errorf("pace: %w", err)
	}
	return c.write(ctx, typ, b)
}

// write writes one frame without pacing.
func (c *client) write(ctx context.Context, typ websocket.MessageType, b []byte) error {
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := c.conn.Write(wctx, typ, b); err != nil {
		return fmt.Errorf("write: %w", err)
	}
	return nil
}

// waitFor returns the first unclaimed received object that match accepts, and claims it.
// It fails when ctx ends or the connection ends first.
func (c *client) waitFor(ctx context.Context, what string, match func(Envelope) bool) (Envelope, error) {
	for {
		c.mu.Lock()
		for i, it := range c.log {
			if !c.claimed[i] && match(it.env) {
				c.claimed[i] = true
				c.mu.Unlock()
				return it.env, nil
			}
		}
		closeErr := c.closeErr
		c.mu.Unlock()
		if closeErr != nil {
			return Envelope{}, fmt.Errorf("waiting for %s: connection ended: %w", what, closeErr)
		}
		select {
		case <-c.changed:
		case <-ctx.Done():
			return Envelope{}, fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		}
	}
}

// reply waits for the reply carrying id.
func (c *client) reply(ctx context.Context, id string) (Envelope, error) {
	return c.waitFor(ctx, fmt.Sprintf("reply with id %q", id), func(e Envelope) bool {
		return e.Op != "message" && e.IDIs(id)
	})
}

// request sends v and waits for the reply carrying id.
func (c *client) request(ctx context.Context, id string, v any) (Envelope, error) {
	if err := c.send(ctx, v); err != nil {
		return Envelope{}, err
	}
	return c.reply(ctx, id)
}

// subscribe subscribes to channels and insists on a `subscribed` reply.
func (c *client) subscribe(ctx context.Context, id string, channels ...string) error {
	r, err := c.request(ctx, id, map[string]any{"op": "subscribe", "id": id, "channels": channels})
	if err != nil {
		return err
	}
	if r.Op != "subscribed" {
		return fmt.Errorf("subscribe %v: reply %s", channels, r.Raw)
	}
	return nil
}

// ping sends a ping and waits for its pong: proof the connection is open and every
// earlier request has been handled.
func (c *client) ping(ctx context.Context, id string) error {
	r, err := c.request(ctx, id, map[string]any{"op": "ping", "id": id})
	if err != nil {
		return err
	}
	if r.Op != "pong" {
		return fmt.Errorf("ping %q: reply %s", id, r.Raw)
	}
	return nil
}

// items returns a copy of everything received so far.
func (c *client) items() []item {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]item(nil), c.log...)
}

// messages returns the received messages that match accepts.
func (c *client) messages(match func(Envelope) bool) []Envelope {
	var out []Envelope
	for _, it := range c.items() {
		if it.env.Op == "message" && match(it.env) {
			out = append(out, it.env)
		}
	}
	return out
}

// waitMessages waits until n messages matching accepts have arrived and returns them.
func (c *client) waitMessages(ctx context.Context, what string, n int, match func(Envelope) bool) ([]Envelope, error) {
	for {
		got := c.messages(match)
		if len(got) >= n {
			return got, nil
		}
		c.mu.Lock()
		closeErr := c.closeErr
		c.mu.Unlock()
		if closeErr != nil {
			return got, fmt.Errorf("waiting for %d %s (have %d): connection ended: %w", n, what, len(got), closeErr)
		}
		select {
		case <-c.changed:
		case <-ctx.Done():
			return got, fmt.Errorf("waiting for %d %s (have %d): %w", n, what, len(got), ctx.Err())
		}
	}
}

// waitClose waits for the connection to end and returns the close code and reason the
// server sent (-1 and the error when it ended without a close frame).
func (c *client) waitClose(ctx context.Context) (websocket.StatusCode, string, error) {
	select {
	case <-c.done:
	case <-ctx.Done():
		return -1, "", fmt.Errorf("waiting for the server to close: %w", ctx.Err())
	}
	c.mu.Lock()
	err := c.closeErr
	c.mu.Unlock()
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code, ce.Reason, nil
	}
	return -1, "", err
}

// closedWith reports, without waiting, whether the connection has ended, and the close
// code and reason the server sent (-1 when it ended without a close frame).
func (c *client) closedWith() (websocket.StatusCode, string, bool) {
	select {
	case <-c.done:
	default:
		return 0, "", false
	}
	code, reason, _ := c.waitClose(context.Background())
	return code, reason, true
}

// channelIs matches messages of one channel.
func channelIs(ch string) func(Envelope) bool {
	return func(e Envelope) bool { return e.Channel == ch }
}
