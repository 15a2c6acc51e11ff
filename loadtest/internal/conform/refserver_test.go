package conform

// A minimal reference implementation of docs/PROTOCOL.md, only for testing the suite
// itself before (and independently of) the real servers: the suite must pass against it,
// and must fail when a fault is switched on. The real servers are checked by the e2e
// tests in loadtest/e2etest.

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

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

// refOptions are the reference server's settings beyond the README defaults.
type refOptions struct {
	maxConns      int           // WS_MAX_CONNECTIONS; 0: none
	maxRecord     int           // WS_MAX_RECORD_BYTES; 0: 1 MiB
	writeTimeout  time.Duration // WS_WRITE_TIMEOUT; 0: 5 s
	idleTimeout   time.Duration // WS_HTTP_IDLE_TIMEOUT; 0: 30 s
	maxConnsPerIP int           // WS_HTTP_MAX_CONNS_PER_IP; 0: no cap
	faults        refFaults
}

type refServer struct {
	topic        string
	maxConns     int64
	maxSubs      int
	readLimit    int64
	batchMax     int
	maxRecord    int
	writeTimeout time.Duration
	maxPerIP     int
	faults       refFaults

	conns atomic.Int64
	ready atomic.Bool

	mu      sync.Mutex
	clients map[*refClient]struct{}

	ipMu    sync.Mutex
	ipCount map[string]int
	ipConns map[net.Conn]string
}

type refClient struct {
	conn *websocket.Conn
	subs map[string]bool // owned by the reader, read under srv.mu by the hub

	mu      sync.Mutex
	queue   [][]byte
	writing bool          // the writer holds frames taken from queue
	notify  chan struct{} // size 1: coalesced wake-up of the writer
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

// idle reports whether everything queued so far has been handed to the connection.
func (c *refClient) idle() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue) == 0 && !c.writing
}

// rawConnKey carries a connection's net.Conn in its requests' contexts.
type rawConnKey struct{}

// startRefServer consumes topic from brokers and serves /ws, /readyz, /healthz on a free
// port.
func startRefServer(t *testing.T, brokers []string, topic string, o refOptions) string {
	t.Helper()
	srv := &refServer{
		topic: topic, maxConns: int64(o.maxConns), maxSubs: 100, readLimit: 4096, batchMax: 32768,
		maxRecord: cmp.Or(o.maxRecord, 1<<20), writeTimeout: cmp.Or(o.writeTimeout, 5*time.Second), maxPerIP: o.maxConnsPerIP,
		faults: o.faults, clients: map[*refClient]struct{}{}, ipCount: map[string]int{}, ipConns: map[net.Conn]string{},
	}
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
	mux.HandleFunc("/healthz", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) { srv.serveWS(ctx, w, r) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       cmp.Or(o.idleTimeout, 30*time.Second),
		MaxHeaderBytes:    16384,
		ConnState:         srv.connState,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, rawConnKey{}, c)
		},
	}
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

// connState caps the connections of one address that have not upgraded.
func (srv *refServer) connState(nc net.Conn, st http.ConnState) {
	srv.ipMu.Lock()
	defer srv.ipMu.Unlock()
	switch st {
	case http.StateNew:
		ip, _, _ := net.SplitHostPort(nc.RemoteAddr().String())
		if srv.maxPerIP > 0 && srv.ipCount[ip] >= srv.maxPerIP {
			_ = nc.Close()
			return
		}
		srv.ipCount[ip]++
		srv.ipConns[nc] = ip
	case http.StateHijacked, http.StateClosed:
		if ip, ok := srv.ipConns[nc]; ok {
			delete(srv.ipConns, nc)
			srv.ipCount[ip]--
		}
	}
}

// recordChannel is the channel of m, or false when its channel header makes it go to
// nobody: more than one, or one that is not a valid channel of m's own topic.
func recordChannel(m *sarama.ConsumerMessage) (string, bool) {
	var headers []string
	for _, h := range m.Headers {
		if string(h.Key) == "channel" {
			headers = append(headers, string(h.Value))
		}
	}
	switch {
	case len(headers) > 1:
		return "", false
	case len(headers) == 1:
		ch := headers[0]
		if validChannel(ch) != nil || strings.HasSuffix(ch, ":*") || (ch != m.Topic && !strings.HasPrefix(ch, m.Topic+":")) {
			return "", false
		}
		return ch, true
	case len(m.Key) > 0:
		return m.Topic + ":" + string(m.Key), true
	}
	return m.Topic, true
}

func (srv *refServer) route(m *sarama.ConsumerMessage) {
	channel, ok := recordChannel(m)
	if !ok {
		return
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
	if len(m.Value) > srv.maxRecord {
		line = appendString([]byte(`{"op":"skipped","channel":`), channel)
		line = appendString(append(line, `,"topic":`...), m.Topic)
		line = fmt.Appendf(line, `,"partition":%d,"offset":%d,"ts":%d,"reason":"too_large","size":%d}`, m.Partition, m.Offset, m.Timestamp.UnixMilli(), len(m.Value))
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
	// Every refusal releases its socket.
	w.Header().Set("Connection", "close")
	if !strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
		http.Error(w, "WebSocket upgrade required", http.StatusUpgradeRequired)
		return
	}
	limiter := rate.NewLimiter(20, 40)
	var limited atomic.Bool
	var closers sync.WaitGroup
	var c *refClient
	// startRateClose stops the handling of requests and closes with 1008 rate_limit once
	// every reply owed has been handed to the connection.
	var once sync.Once
	startRateClose := func() {
		once.Do(func() {
			limited.Store(true)
			closers.Go(func() {
				deadline := time.Now().Add(srv.writeTimeout)
				for !c.idle() && time.Now().Before(deadline) {
					time.Sleep(2 * time.Millisecond)
				}
				_ = c.conn.Close(websocket.StatusPolicyViolation, "rate_limit")
			})
		})
	}
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{
		OnPingReceived: func(context.Context, []byte) bool {
			if limited.Load() {
				return false
			}
			if !limiter.Allow() {
				startRateClose()
				return false
			}
			return true
		},
	})
	if err != nil {
		return
	}
	defer func() { closers.Wait(); _ = conn.CloseNow() }()
	raw, _ := r.Context().Value(rawConnKey{}).(net.Conn)
	if n := srv.conns.Add(1); srv.maxConns > 0 && n > srv.maxConns {
		srv.conns.Add(-1)
		// Write the close frame and drop the socket at once: the close handshake's wait
		// for the client's close fails on the past deadline.
		_ = raw.SetReadDeadline(time.Now())
		_ = conn.Close(websocket.StatusTryAgainLater, "over_capacity")
		return
	}
	defer srv.conns.Add(-1)
	conn.SetReadLimit(srv.readLimit)
	c = &refClient{conn: conn, subs: map[string]bool{}, notify: make(chan struct{}, 1)}
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

	for {
		typ, rd, err := conn.Reader(cctx)
		if err != nil {
			// A framing error: the library wrote 1002 itself for most, not for an
			// unmasked frame.
			if websocket.CloseStatus(err) == -1 && cctx.Err() == nil && !errors.Is(err, io.EOF) &&
				!errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, net.ErrClosed) {
				_ = conn.Close(websocket.StatusProtocolError, "protocol")
			}
			return
		}
		// The payload of a frame whose header has arrived must follow within the write
		// timeout.
		_ = raw.SetReadDeadline(time.Now().Add(srv.writeTimeout))
		msg, err := io.ReadAll(rd)
		_ = raw.SetReadDeadline(time.Time{})
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
			_ = conn.Close(websocket.StatusPolicyViolation, "read_timeout")
			return
		case errors.Is(err, websocket.ErrMessageTooBig):
			// The library wrote the 1009 frame; Close reads on until the client's close.
			_ = conn.Close(websocket.StatusMessageTooBig, "")
			return
		case err != nil:
			return
		case limited.Load():
			continue // frames after the rate limit are read and discarded
		case !limiter.Allow():
			startRateClose()
			continue
		case typ != websocket.MessageText:
			_ = conn.Close(websocket.StatusUnsupportedData, "binary")
			return
		case !utf8.Valid(msg):
			_ = conn.Close(websocket.StatusInvalidFramePayloadData, "invalid_utf8")
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
		c.writing = true
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
		c.mu.Lock()
		c.writing = false
		c.mu.Unlock()
	}
}

// echo is how an error message quotes client text: its first 64 bytes and "...", quoted.
func echo(text string) string {
	if len(text) > 64 {
		text = text[:64] + "..."
	}
	return fmt.Sprintf("%q", text)
}

// appendString appends s as a JSON string: `<`, `>`, `&` raw, invalid UTF-8 as U+FFFD.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

func (srv *refServer) handle(c *refClient, msg []byte) []byte {
	var fields map[string]json.RawMessage
	var id *string
	reply := func(op string) []byte {
		b := appendString([]byte(`{"op":`), op)
		if id != nil {
			b = appendString(append(b, `,"id":`...), *id)
		}
		return b
	}
	fail := func(code, text string) []byte {
		b := appendString(append(reply("error"), `,"code":`...), code)
		b = appendString(append(b, `,"message":`...), text)
		return append(b, '}')
	}
	isNull := func(raw json.RawMessage) bool { return string(raw) == "null" }
	if err := json.Unmarshal(msg, &fields); err != nil || fields == nil {
		return fail("invalid_json", "frame is not a JSON object")
	}
	if raw, ok := fields["id"]; ok && !isNull(raw) {
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return fail("invalid_request", "id must be a string")
		}
		if len(s) > 64 {
			return fail("invalid_request", "id is longer than 64 bytes")
		}
		id = &s
	}
	raw, ok := fields["op"]
	if !ok || isNull(raw) {
		return fail("unknown_op", "op is missing")
	}
	var op string
	if err := json.Unmarshal(raw, &op); err != nil {
		return fail("invalid_request", "op must be a string")
	}
	switch op {
	case "ping":
		return append(reply("pong"), '}')
	case "subscribe", "unsubscribe":
	default:
		return fail("unknown_op", "unknown op "+echo(op))
	}
	var channels []string
	if raw, ok := fields["channels"]; !ok || isNull(raw) || json.Unmarshal(raw, &channels) != nil {
		return fail("invalid_request", "channels must be an array of strings")
	}
	if len(channels) == 0 {
		return fail("invalid_request", "channels must not be empty")
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
	list := func(op string) []byte {
		b := append(reply(op), `,"channels":[`...)
		for i, ch := range uniq {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, ch)
		}
		return append(b, "]}"...)
	}
	srv.mu.Lock()
	defer srv.mu.Unlock()
	if op == "unsubscribe" {
		for _, ch := range uniq {
			delete(c.subs, ch)
		}
		return list("unsubscribed")
	}
	added := 0
	for ch := range seen {
		if !c.subs[ch] {
			added++
		}
	}
	if len(c.subs)+added > srv.maxSubs {
		return fail("too_many_subscriptions", fmt.Sprintf("subscribe would pass the limit of %d channels per client", srv.maxSubs))
	}
	for ch := range seen {
		c.subs[ch] = true
	}
	return list("subscribed")
}

// validChannel checks a channel name as the servers do, in their order, with their texts.
func validChannel(ch string) error {
	const star = `'*' is allowed only as "<topic>:*"`
	switch {
	case ch == "":
		return fmt.Errorf("channel %s: empty", echo(ch))
	case len(ch) > 256:
		return fmt.Errorf("channel %s: longer than 256 bytes", echo(ch))
	}
	body := strings.TrimSuffix(ch, ":*")
	for i := 0; i < len(body); i++ {
		switch b := body[i]; {
		case b == '*':
			return fmt.Errorf("channel %s: %s", echo(ch), star)
		case b < '!' || b > '~' || b == '"' || b == '\\':
			return fmt.Errorf("channel %s: invalid character %q", echo(ch), rune(b))
		}
	}
	topic, _, _ := strings.Cut(body, ":")
	if topic == "" {
		return fmt.Errorf("channel %s: empty topic", echo(ch))
	}
	if body != ch && strings.Contains(body, ":") {
		return fmt.Errorf("channel %s: %s", echo(ch), star)
	}
	return nil
}
