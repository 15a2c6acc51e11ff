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
type fakeServer struct {
	srv        *httptest.Server
	perChannel int
	open       atomic.Int64
	wg         sync.WaitGroup
	reject     bool
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
	var req struct {
		Op       string   `json:"op"`
		ID       string   `json:"id"`
		Channels []string `json:"channels"`
	}
	if json.Unmarshal(b, &req) != nil || req.Op != "subscribe" {
		return
	}
	reply, _ := json.Marshal(map[string]any{"op": "subscribed", "id": req.ID, "channels": req.Channels})
	if c.Write(ctx, websocket.MessageText, reply) != nil {
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
