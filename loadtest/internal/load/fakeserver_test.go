package load

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// fakeServer speaks enough of the protocol for the load generator's own tests: it answers
// subscribe with subscribed, then sends perChannel numbered, timestamped messages on every
// channel subscribed, batched two lines per frame. Its /metrics reports ws_connections.
// The real servers are exercised by the broadcast integration test.
//
// With token set it is a server with WS_AUTH=required: the first request must be an auth
// op, answered authed for that token and invalid_token for any other (the subscribe then
// gets unauthorized). It reads the subscribe before it answers the auth, so a client that
// waited for authed before subscribing stalls.
type fakeServer struct {
	srv        *httptest.Server
	perChannel int
	open       atomic.Int64
	wg         sync.WaitGroup
	reject     bool
	token      string
	authOrder  string // "" authed then subscribed; "late": subscribed then authed; "none": no authed
	mu         sync.Mutex
	firsts     []string // every connection's first request, as sent
}

func newFakeServer(t *testing.T, perChannel int) *fakeServer {
	t.Helper()
	f := &fakeServer{perChannel: perChannel}
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", f.serveWS)
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "# TYPE ws_connections gauge\nws_connections %d\n", f.open.Load())
		fmt.Fprintf(w, "# TYPE process_resident_memory_bytes gauge\nprocess_resident_memory_bytes %d\n", 1000+f.open.Load()*100)
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(func() {
		f.srv.CloseClientConnections()
		f.srv.Close()
		f.wg.Wait()
	})
	return f
}

func (f *fakeServer) url() string { return "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/ws" }

func (f *fakeServer) serveWS(w http.ResponseWriter, r *http.Request) {
	if f.reject {
		w.Header().Set("Retry-After", "1")
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	acceptWS(&f.wg, f.serveConn)(w, r)
}

func (f *fakeServer) serveConn(ctx context.Context, c *websocket.Conn) {
	f.open.Add(1)
	defer f.open.Add(-1)
	_, b, err := c.Read(ctx)
	if err != nil {
		return
	}
	f.mu.Lock()
	f.firsts = append(f.firsts, string(b))
	f.mu.Unlock()
	var req struct {
		Op       string   `json:"op"`
		ID       string   `json:"id"`
		Channels []string `json:"channels"`
		Token    string   `json:"token"`
	}
	var authed []byte // the reply to the auth, once the subscribe has been read
	denied := false   // the token was not valid: the subscribe is unauthorized
	if f.token != "" {
		if json.Unmarshal(b, &req) != nil || req.Op != "auth" {
			return
		}
		if denied = req.Token != f.token; denied {
			authed, _ = json.Marshal(map[string]any{"op": "error", "id": req.ID, "code": "invalid_token", "message": "signature"})
		} else if f.authOrder != "none" {
			authed, _ = json.Marshal(map[string]any{"op": "authed", "id": req.ID, "exp": 1767225600})
		}
		if _, b, err = c.Read(ctx); err != nil {
			return
		}
	}
	if json.Unmarshal(b, &req) != nil || req.Op != "subscribe" {
		return
	}
	var replies [][]byte
	if denied {
		refused, _ := json.Marshal(map[string]any{"op": "error", "id": req.ID, "code": "unauthorized", "channel": req.Channels[0], "message": "no token"})
		replies = append(replies, authed, refused)
	} else {
		subscribed, _ := json.Marshal(map[string]any{"op": "subscribed", "id": req.ID, "channels": req.Channels})
		replies = append(replies, authed, subscribed)
		if f.authOrder == "late" {
			replies[0], replies[1] = replies[1], replies[0]
		}
	}
	for _, r := range replies {
		if r != nil && c.Write(ctx, websocket.MessageText, r) != nil {
			return
		}
	}
	if denied {
		readToEnd(ctx, c)
		return
	}
	for seq := 1; seq <= f.perChannel; seq++ {
		var lines []string
		for _, ch := range req.Channels {
			lines = append(lines, fmt.Sprintf(`{"op":"message","channel":%q,"topic":"trades","partition":0,"offset":%d,"ts":1,"data":{"sent_ns":%d,"seq":%d,"step":0}}`,
				ch, seq, time.Now().UnixNano(), seq))
		}
		if c.Write(ctx, websocket.MessageText, []byte(strings.Join(lines, "\n"))) != nil {
			return
		}
	}
	// Keep the connection open (and answer pings) until the client goes.
	readToEnd(ctx, c)
}

func testScenario(url string) Scenario {
	return Scenario{
		Mode:             ModeConnect,
		URL:              url,
		Conns:            40,
		RampRate:         0,
		Inflight:         16,
		Topic:            "trades",
		ChannelPrefix:    "lt-",
		Channels:         5,
		SubsPerConn:      2,
		Distribution:     "uniform",
		Seed:             1,
		Hold:             Duration(300 * time.Millisecond),
		HandshakeTimeout: Duration(5 * time.Second),
		SubscribeTimeout: Duration(5 * time.Second),
		MaxTime:          Duration(30 * time.Second),
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// genericServer is "another server": its own subscribe command ({"method":"SUB","params":
// [channels]}) with no reply, and messages {"s":channel,"p":{"ts":<ms>,"n":<seq>}}, one per
// frame, perChannel per subscribed channel.
func newGenericServer(t *testing.T, perChannel int) string {
	t.Helper()
	var wg sync.WaitGroup
	srv := httptest.NewServer(acceptWS(&wg, func(ctx context.Context, c *websocket.Conn) {
		_, b, err := c.Read(ctx)
		if err != nil {
			return
		}
		var req struct {
			Method string   `json:"method"`
			Params []string `json:"params"`
		}
		if json.Unmarshal(b, &req) != nil || req.Method != "SUB" {
			return
		}
		for seq := 1; seq <= perChannel; seq++ {
			for _, ch := range req.Params {
				msg := fmt.Sprintf(`{"s":%q,"p":{"ts":%d,"n":%d}}`, ch, time.Now().UnixMilli(), seq)
				if c.Write(ctx, websocket.MessageText, []byte(msg)) != nil {
					return
				}
			}
		}
		readToEnd(ctx, c)
	}))
	t.Cleanup(func() {
		srv.CloseClientConnections()
		srv.Close()
		wg.Wait()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/"
}
