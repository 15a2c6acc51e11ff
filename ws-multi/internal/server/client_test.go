package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// line is one server-to-client JSON line.
type line struct {
	Op        string          `json:"op"`
	ID        *string         `json:"id"`
	Code      string          `json:"code"`
	Channels  []string        `json:"channels"`
	Channel   string          `json:"channel"`
	Topic     string          `json:"topic"`
	Partition int32           `json:"partition"`
	Offset    int64           `json:"offset"`
	Data      json.RawMessage `json:"data"`
}

// client is a real coder/websocket client that splits frames into lines.
type client struct {
	t       *testing.T
	conn    *websocket.Conn
	pending []line
}

func (e *env) dial(header http.Header) (*client, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.url, "http")+"/ws", &websocket.DialOptions{
		HTTPHeader: header, HTTPClient: e.http,
	})
	if err != nil {
		return nil, resp, err
	}
	conn.SetReadLimit(16 << 20)
	c := &client{t: e.t, conn: conn}
	e.t.Cleanup(func() { conn.CloseNow() })
	return c, resp, nil
}

func (e *env) mustDial() *client {
	e.t.Helper()
	c, _, err := e.dial(nil)
	if err != nil {
		e.t.Fatalf("dial: %v", err)
	}
	return c
}

func (c *client) send(frame string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.conn.Write(ctx, websocket.MessageText, []byte(frame)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// next returns the next line, or the read error (a close, a timeout).
func (c *client) next(timeout time.Duration) (line, error) {
	for len(c.pending) == 0 {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		typ, data, err := c.conn.Read(ctx)
		cancel()
		if err != nil {
			return line{}, err
		}
		if typ != websocket.MessageText {
			return line{}, errors.New("binary frame from server")
		}
		for _, raw := range bytes.Split(data, []byte{'\n'}) {
			var l line
			if err := json.Unmarshal(raw, &l); err != nil {
				return line{}, fmt.Errorf("bad line %q: %w", raw, err)
			}
			c.pending = append(c.pending, l)
		}
	}
	l := c.pending[0]
	c.pending = c.pending[1:]
	return l, nil
}

func (c *client) mustNext() line {
	c.t.Helper()
	l, err := c.next(10 * time.Second)
	if err != nil {
		c.t.Fatalf("read: %v", err)
	}
	return l
}

// request sends a frame and returns the reply, skipping record messages before it.
func (c *client) request(frame string) line {
	c.t.Helper()
	c.send(frame)
	for {
		l := c.mustNext()
		if l.Op != "message" {
			return l
		}
	}
}

func (c *client) subscribe(channels ...string) {
	c.t.Helper()
	b, _ := json.Marshal(map[string]any{"op": "subscribe", "id": "s", "channels": channels})
	if r := c.request(string(b)); r.Op != "subscribed" {
		c.t.Fatalf("subscribe %v: got %+v", channels, r)
	}
}

// closeStatus reads until the connection ends and returns its close code and reason.
func (c *client) closeStatus(timeout time.Duration) (websocket.StatusCode, string) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		_, err := c.next(time.Until(deadline))
		if err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) {
				return ce.Code, ce.Reason
			}
			return -1, err.Error()
		}
	}
	return -1, "no close"
}

// collector reads every line of a client on its own goroutine.
type collector struct {
	mu    sync.Mutex
	lines []line
	done  chan struct{}
}

func (c *client) collect() *collector {
	col := &collector{done: make(chan struct{})}
	go func() {
		defer close(col.done)
		for {
			l, err := c.next(time.Minute)
			if err != nil {
				return
			}
			col.mu.Lock()
			col.lines = append(col.lines, l)
			col.mu.Unlock()
		}
	}()
	c.t.Cleanup(func() {
		c.conn.CloseNow()
		<-col.done
	})
	return col
}

func (col *collector) messages() []line {
	col.mu.Lock()
	defer col.mu.Unlock()
	var out []line
	for _, l := range col.lines {
		if l.Op == "message" {
			out = append(out, l)
		}
	}
	return out
}
