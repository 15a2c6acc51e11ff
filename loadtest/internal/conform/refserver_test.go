package conform

// A minimal reference implementation of docs/PROTOCOL.md, only for testing the suite
// itself before (and independently of) the real servers: the suite must pass against it,
// and must fail when a fault is switched on. The real servers are checked by the e2e
// tests in loadtest/e2etest.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/IBM/sarama"
	"github.com/coder/websocket"
	"golang.org/x/time/rate"
)

// refFaults switches on one protocol violation each.
type refFaults struct {
	noDedup     bool // subscribed lists channels as sent
	noBatch     bool // one object per frame even when batching is expected
	trailingNL  bool // frames end in \n
	rawData     bool // data embedded as produced, not compacted
	twiceOnWild bool // a record matching a channel and the wildcard is sent twice
}

type refServer struct {
	topic     string
	maxConns  int64
	maxSubs   int
	readLimit int64
	batchMax  int
	faults    refFaults

	conns atomic.Int64
	ready atomic.Bool

	mu      sync.Mutex
	clients map[*refClient]struct{}
}

type refClient struct {
	conn *websocket.Conn
	subs map[string]bool // owned by the reader, read under srv.mu by the hub

	mu     sync.Mutex
	queue  [][]byte
	notify chan struct{} // size 1: coalesced wake-up of the writer
}

func (c *refClient) enqueue(b []byte) {
	c.mu.Lock()
	c.queue = append(c.queue, b)
	c.mu.Unlock()
	select {
	case c.notify <- struct{}{}:
	default:
	}
}

// startRefServer consumes topic from brokers and serves /ws, /readyz on a free port.
func startRefServer(t *testing.T, brokers []string, topic string, maxConns int, faults refFaults) string {
	t.Helper()
	srv := &refServer{topic: topic, maxConns: int64(maxConns), maxSubs: 100, readLimit: 4096, batchMax: 32768, faults: faults, clients: map[*refClient]struct{}{}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup

	consumer, err := sarama.NewConsumer(brokers, sarama.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	parts, err := consumer.Partitions(topic)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range parts {
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range pc.Messages() {
				srv.route(m)
			}
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-ctx.Done()
			pc.AsyncClose()
		}()
	}
	srv.ready.Store(true)

	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !srv.ready.Load() {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) { srv.serveWS(ctx, w, r) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: mux}
	wg.Add(1)
	go func() {
		defer wg.Done()
		_ = hs.Serve(ln)
	}()
	t.Cleanup(func() {
		cancel()
		_ = hs.Shutdown(context.Background())
		srv.mu.Lock()
		for c := range srv.clients {
			_ = c.conn.CloseNow()
		}
		srv.mu.Unlock()
		wg.Wait()
		_ = consumer.Close()
	})
	return "ws://" + ln.Addr().String() + "/ws"
}

func (srv *refServer) route(m *sarama.ConsumerMessage) {
	channel := m.Topic
	if len(m.Key) > 0 {
		channel += ":" + string(m.Key)
	}
	for _, h := range m.Headers {
		if string(h.Key) == "channel" {
			channel = string(h.Value)
		}
	}
	var data json.RawMessage
	switch {
	case len(m.Value) == 0:
		data = json.RawMessage("null")
	case json.Valid(m.Value):
		var buf bytes.Buffer
		_ = json.Compact(&buf, m.Value)
		data = buf.Bytes()
	default:
		data, _ = json.Marshal(string(m.Value))
	}
	line, _ := json.Marshal(map[string]any{"op": "message", "channel": channel, "topic": m.Topic, "partition": m.Partition, "offset": m.Offset, "ts": m.Timestamp.UnixMilli(), "data": data})
	if srv.faults.rawData && json.Valid(m.Value) {
		// Marshal compacts raw JSON by itself, so build the line by hand.
		line = fmt.Appendf(nil, `{"op":"message","channel":%q,"topic":%q,"partition":%d,"offset":%d,"ts":%d,"data":%s}`,
			channel, m.Topic, m.Partition, m.Offset, m.Timestamp.UnixMilli(), m.Value)
	}
	inTopic := channel == m.Topic || strings.HasPrefix(channel, m.Topic+":")
	srv.mu.Lock()
	defer srv.mu.Unlock()
	for c := range srv.clients {
		exact, wild := c.subs[channel], inTopic && c.subs[m.Topic+":*"]
		switch {
		case exact && wild && srv.faults.twiceOnWild:
			c.enqueue(line)
			c.enqueue(line)
		case exact || wild:
			c.enqueue(line)
		}
	}
}

func (srv *refServer) serveWS(ctx context.Context, w http.ResponseWriter, r *http.Request) {
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	if n := srv.conns.Add(1); srv.maxConns > 0 && n > srv.maxConns {
		srv.conns.Add(-1)
		_ = conn.Close(websocket.StatusTryAgainLater, "over_capacity")
		return
	}
	defer srv.conns.Add(-1)
	conn.SetReadLimit(srv.readLimit)
	c := &refClient{conn: conn, subs: map[string]bool{}, notify: make(chan struct{}, 1)}
	srv.mu.Lock()
	srv.clients[c] = struct{}{}
	srv.mu.Unlock()
	defer func() {
		srv.mu.Lock()
		delete(srv.clients, c)
		srv.mu.Unlock()
	}()
	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		srv.write(cctx, c)
	}()
	defer func() { cancel(); <-writerDone }()

	limiter := rate.NewLimiter(20, 40)
	for {
		typ, msg, err := conn.Read(cctx)
		if err != nil {
			return
		}
		if !limiter.Allow() {
			_ = conn.Close(websocket.StatusPolicyViolation, "rate_limit")
			return
		}
		if typ != websocket.MessageText {
			_ = conn.Close(websocket.StatusUnsupportedData, "binary")
			return
		}
		c.enqueue(srv.handle(c, msg))
	}
}

func (srv *refServer) write(ctx context.Context, c *refClient) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-c.notify:
		}
		c.mu.Lock()
		q := c.queue
		c.queue = nil
		c.mu.Unlock()
		for len(q) > 0 {
			var frame []byte
			n := 0
			for n < len(q) && (n == 0 || len(frame)+1+len(q[n]) <= srv.batchMax) && (n == 0 || !srv.faults.noBatch) {
				if n > 0 {
					frame = append(frame, '\n')
				}
				frame = append(frame, q[n]...)
				n++
			}
			if srv.faults.trailingNL {
				frame = append(frame, '\n')
			}
			q = q[n:]
			if err := c.conn.Write(ctx, websocket.MessageText, frame); err != nil {
				return
			}
		}
	}
}

func (srv *refServer) handle(c *refClient, msg []byte) []byte {
	var fields map[string]json.RawMessage
	var id *string
	reply := func(v map[string]any) []byte {
		if id != nil {
			v["id"] = *id
		}
		b, _ := json.Marshal(v)
		return b
	}
	fail := func(code, text string) []byte {
		return reply(map[string]any{"op": "error", "code": code, "message": text})
	}
	if err := json.Unmarshal(msg, &fields); err != nil || fields == nil {
		return fail("invalid_json", "not a JSON object")
	}
	if raw, ok := fields["id"]; ok {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil || len(s) > 64 {
			return fail("invalid_request", "id must be a string of at most 64 bytes")
		}
		id = &s
	}
	var op string
	if raw, ok := fields["op"]; ok {
		if err := json.Unmarshal(raw, &op); err != nil {
			return fail("invalid_request", "op must be a string")
		}
	}
	switch op {
	case "ping":
		return reply(map[string]any{"op": "pong"})
	case "subscribe", "unsubscribe":
	default:
		return fail("unknown_op", fmt.Sprintf("op %q", op))
	}
	var channels []string
	if err := json.Unmarshal(fields["channels"], &channels); err != nil || len(channels) == 0 {
		return fail("invalid_request", "channels must be a non-empty array of strings")
	}
	var uniq []string
	seen := map[string]bool{}
	for _, ch := range channels {
		if err := validChannel(ch); err != nil {
			return fail("invalid_channel", err.Error())
		}
		if !seen[ch] || srv.faults.noDedup {
			uniq = append(uniq, ch)
		}
		seen[ch] = true
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if op == "unsubscribe" {
		for _, ch := range uniq {
			delete(c.subs, ch)
		}
		return reply(map[string]any{"op": "unsubscribed", "channels": uniq})
	}
	added := 0
	for ch := range seen {
		if !c.subs[ch] {
			added++
		}
	}
	if len(c.subs)+added > srv.maxSubs {
		return fail("too_many_subscriptions", "limit")
	}
	for ch := range seen {
		c.subs[ch] = true
	}
	return reply(map[string]any{"op": "subscribed", "channels": uniq})
}

func validChannel(ch string) error {
	if len(ch) == 0 || len(ch) > 256 {
		return errors.New("length")
	}
	topic, rest, hasColon := strings.Cut(ch, ":")
	if topic == "" {
		return errors.New("empty topic")
	}
	for i := 0; i < len(ch); i++ {
		b := ch[i]
		if b < '!' || b > '~' || b == '"' || b == '\\' {
			return fmt.Errorf("invalid character %q", b)
		}
	}
	if strings.Contains(ch, "*") && !(hasColon && rest == "*" && !strings.Contains(topic, "*")) {
		return errors.New("* only as <topic>:*")
	}
	return nil
}
