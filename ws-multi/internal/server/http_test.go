package server

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/adred-codev/ws_poc/ws-multi/internal/await"
	"github.com/adred-codev/ws_poc/ws-multi/internal/config"
	"github.com/adred-codev/ws_poc/ws-multi/internal/hub"
	"github.com/adred-codev/ws_poc/ws-multi/internal/metrics"
)

func TestHTTPRefusals(t *testing.T) {
	b := startBroker(t, 1)
	e := startEnv(t, b, func(cfg *config.Config, maxConns *int) {
		cfg.AllowedOrigins = []string{"*.example.com"}
		*maxConns = 2
	})

	// Origin: same-origin, allowed pattern and no Origin pass; others get 403.
	for _, origin := range []string{"", e.url, "https://app.example.com"} {
		h := http.Header{}
		if origin != "" {
			h.Set("Origin", origin)
		}
		c, _, err := e.dial(h)
		if err != nil {
			t.Fatalf("Origin %q refused: %v", origin, err)
		}
		c.conn.Close(websocket.StatusNormalClosure, "")
	}
	_, resp, err := e.dial(http.Header{"Origin": {"https://evil.test"}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin upgrade: err %v, resp %v, want 403", err, resp)
	}
	if got := testutil.ToFloat64(e.metrics.ConnectionsRejected.WithLabelValues("origin")); got != 1 {
		t.Errorf("rejected{origin} = %v", got)
	}

	// CPU admission: 503 with Retry-After.
	e.admission.refuse.Store(true)
	_, resp, err = e.dial(nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "2" {
		t.Errorf("CPU refusal: err %v, resp %+v, want 503 Retry-After 2", err, resp)
	}
	e.admission.refuse.Store(false)
	if got := testutil.ToFloat64(e.metrics.ConnectionsRejected.WithLabelValues("cpu")); got != 1 {
		t.Errorf("rejected{cpu} = %v", got)
	}

	// Capacity: the third connection is upgraded and closed with 1013.
	await.True(t, 20*time.Second, func() bool { return testutil.ToFloat64(e.metrics.Connections) == 0 }, "earlier connections gone")
	c1, c2 := e.mustDial(), e.mustDial()
	await.True(t, 20*time.Second, func() bool { return testutil.ToFloat64(e.metrics.Connections) == 2 }, "two connections")
	c3 := e.mustDial()
	if code, reason := c3.closeStatus(10 * time.Second); code != websocket.StatusTryAgainLater || reason != "over_capacity" {
		t.Errorf("over capacity: closed with %d %q, want 1013 over_capacity", code, reason)
	}
	if got := testutil.ToFloat64(e.metrics.ConnectionsRejected.WithLabelValues("max_connections")); got != 1 {
		t.Errorf("rejected{max_connections} = %v", got)
	}
	c1.conn.Close(websocket.StatusNormalClosure, "")
	await.True(t, 20*time.Second, func() bool { return testutil.ToFloat64(e.metrics.Connections) == 1 }, "slot back")
	c4 := e.mustDial()
	if r := c4.request(`{"op":"ping","id":"x"}`); r.Op != "pong" {
		t.Errorf("after a slot came back: %+v", r)
	}
	_ = c2

	// Plain endpoints.
	if resp, body := e.get("/healthz", nil); resp.StatusCode != 200 || body != "ok\n" {
		t.Errorf("/healthz = %d %q", resp.StatusCode, body)
	}
	if resp, body := e.get("/metrics", nil); resp.StatusCode != 200 || !strings.Contains(body, `ws_build_info{`) || !strings.Contains(body, "ws_shard_queue_depth") {
		t.Errorf("/metrics = %d, missing series", resp.StatusCode)
	}
	if resp, body := e.get("/", nil); resp.StatusCode != 200 || !strings.Contains(body, `id="subscribe"`) {
		t.Errorf("/ = %d, no demo page", resp.StatusCode)
	}
	if resp, _ := e.get("/ws", nil); resp.StatusCode != http.StatusUpgradeRequired {
		t.Errorf("plain GET /ws = %d, want 426", resp.StatusCode)
	}
}

func TestCheckHealth(t *testing.T) {
	b := startBroker(t, 1)
	e := startEnv(t, b)
	port := e.url[strings.LastIndex(e.url, ":")+1:]
	if err := CheckHealth(t.Context(), ":"+port); err != nil {
		t.Errorf("CheckHealth of a live server: %v", err)
	}
	if err := CheckHealth(t.Context(), "no-port"); err == nil {
		t.Error("CheckHealth accepted an address without a port")
	}
	if err := e.stopServer(); err != nil {
		t.Fatal(err)
	}
	if err := CheckHealth(t.Context(), ":"+port); err == nil {
		t.Error("CheckHealth of a stopped server succeeded")
	}
}

// rawRequest writes an HTTP/1.1 request (keep-alive) on conn and reads the answer.
func rawRequest(t *testing.T, conn net.Conn, br *bufio.Reader, method, path, headers string) *http.Response {
	t.Helper()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: test\r\n%s\r\n", method, path, headers); err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

// TestHTTPConnectionHygiene: keep-alive connections idle for WS_HTTP_IDLE_TIMEOUT are
// closed; headers past WS_MAX_HEADER_BYTES get 431; every refused upgrade (426 whatever the
// method, 403, 503) carries Connection: close and the socket is closed after it.
func TestHTTPConnectionHygiene(t *testing.T) {
	b := startBroker(t, 1)
	e := startEnv(t, b, func(cfg *config.Config, _ *int) {
		cfg.HTTPIdleTimeout = 300 * time.Millisecond
		cfg.AllowedOrigins = nil
	})

	t.Run("idle keep-alive closed", func(t *testing.T) {
		conn := e.dialTCP()
		br := bufio.NewReader(conn)
		if resp := rawRequest(t, conn, br, "GET", "/healthz", ""); resp.StatusCode != http.StatusOK || resp.Close {
			t.Fatalf("GET /healthz = %d (close %v), want 200 kept alive", resp.StatusCode, resp.Close)
		}
		if el := waitEOF(t, conn, br, 5*time.Second); el > 2*time.Second {
			t.Errorf("idle connection closed after %v, want about 300ms", el)
		}
	})

	t.Run("header limit", func(t *testing.T) {
		for _, tt := range []struct {
			size int
			want int
		}{{8 << 10, http.StatusOK}, {64 << 10, http.StatusRequestHeaderFieldsTooLarge}} {
			conn := e.dialTCP()
			resp := rawRequest(t, conn, bufio.NewReader(conn), "GET", "/healthz", "X-Big: "+strings.Repeat("b", tt.size)+"\r\n")
			if resp.StatusCode != tt.want {
				t.Errorf("%d bytes of headers: %d, want %d", tt.size, resp.StatusCode, tt.want)
			}
		}
	})

	upgrade := "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
	for _, tt := range []struct {
		name, method, headers string
		cpu                   bool
		want                  int
		retryAfter            string
	}{
		{name: "plain GET", method: "GET", want: http.StatusUpgradeRequired},
		{name: "plain POST", method: "POST", headers: "Content-Length: 0\r\n", want: http.StatusUpgradeRequired},
		{name: "plain PUT", method: "PUT", headers: "Content-Length: 0\r\n", want: http.StatusUpgradeRequired},
		{name: "cross origin", method: "GET", headers: upgrade + "Origin: https://evil.test\r\n", want: http.StatusForbidden},
		{name: "cpu", method: "GET", headers: upgrade, cpu: true, want: http.StatusServiceUnavailable, retryAfter: "2"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e.admission.refuse.Store(tt.cpu)
			defer e.admission.refuse.Store(false)
			conn := e.dialTCP()
			br := bufio.NewReader(conn)
			resp := rawRequest(t, conn, br, tt.method, "/ws", tt.headers)
			if resp.StatusCode != tt.want || !resp.Close || resp.Header.Get("Retry-After") != tt.retryAfter {
				t.Errorf("%s /ws = %d, Connection: close %v, Retry-After %q; want %d, close, %q",
					tt.method, resp.StatusCode, resp.Close, resp.Header.Get("Retry-After"), tt.want, tt.retryAfter)
			}
			if el := waitEOF(t, conn, br, 5*time.Second); el > time.Second {
				t.Errorf("socket closed %v after the answer", el)
			}
		})
	}
}

// TestConnectionsPerIP: past WS_HTTP_MAX_CONNS_PER_IP connections from one address that are
// not WebSocket connections, a new one is closed at accept and counted ip_limit; upgraded
// connections do not count.
func TestConnectionsPerIP(t *testing.T) {
	b := startBroker(t, 1)
	e := startEnv(t, b, func(cfg *config.Config, _ *int) { cfg.HTTPMaxConnsPerIP = 2 })
	// Two keep-alive connections hold both slots: a request on each proves it is counted.
	// startEnv's readiness probes (Connection: close) hold a slot until net/http reports
	// them closed, which can come just after their answer: a connection refused meanwhile
	// is dialled again, and the refusals count from here on.
	keepAlive := func() net.Conn {
		var c net.Conn
		await.True(t, 20*time.Second, func() bool {
			c = e.dialTCP()
			_ = c.SetDeadline(time.Now().Add(5 * time.Second))
			defer c.SetDeadline(time.Time{})
			if _, err := fmt.Fprintf(c, "GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n"); err != nil {
				return false
			}
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		}, "a keep-alive connection answered")
		return c
	}
	_, idle2 := keepAlive(), keepAlive()
	rejected := testutil.ToFloat64(e.metrics.ConnectionsRejected.WithLabelValues("ip_limit"))
	third := e.dialTCP()
	if el := waitEOF(t, third, third, 5*time.Second); el > time.Second {
		t.Errorf("the connection past the cap was closed after %v, want at once", el)
	}
	if got := testutil.ToFloat64(e.metrics.ConnectionsRejected.WithLabelValues("ip_limit")) - rejected; got != 1 {
		t.Errorf("rejected{ip_limit} went up by %v, want 1", got)
	}

	idle2.Close() // a slot comes back
	await.True(t, 20*time.Second, func() bool {
		resp, err := e.http.Get(e.url + "/healthz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, "a request gets through again")
	// WebSocket connections are hijacked: they stop counting once upgraded, so four get
	// through a cap of 2 with one slot held (a dial may be refused while the request above
	// still holds its slot: it is dialled again; were upgraded ones counted, it never
	// would get through).
	for i := range 4 {
		var c *client
		await.True(t, 20*time.Second, func() bool {
			var err error
			c, _, err = e.dial(nil)
			return err == nil
		}, fmt.Sprintf("WebSocket %d upgraded", i))
		if r := c.request(`{"op":"ping","id":"p"}`); r.Op != "pong" {
			t.Fatalf("ping reply %+v", r)
		}
	}
}

// flakyListener fails its first Accept calls with a temporary error, as a listener out of
// file descriptors does.
type flakyListener struct {
	net.Listener
	failures atomic.Int32
}

type tempErr struct{}

func (tempErr) Error() string { return "accept: too many open files (test)" }

func (tempErr) Timeout() bool { return false }

func (tempErr) Temporary() bool { return true }

func (l *flakyListener) Accept() (net.Conn, error) {
	if l.failures.Add(-1) >= 0 {
		return nil, tempErr{}
	}
	return l.Listener.Accept()
}

// fakeKafka is an attached consumer that consumes nothing.
type fakeKafka struct{}

func (fakeKafka) Run(ctx context.Context) error { <-ctx.Done(); return nil }

func (fakeKafka) Attached() bool { return true }

// TestAcceptErrorsAreCounted: errors of the listener's Accept are counted in
// ws_accept_errors_total and the server goes on serving.
func TestAcceptErrorsAreCounted(t *testing.T) {
	cfg := config.Default()
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, metrics.BuildInfo{Variant: config.Variant}, metrics.Labels{})
	h, err := hub.New(hub.Config{Shards: 1, MaxSubscriptions: 1, SendQueueMessages: 1, SendQueueBytes: 1,
		WriteTimeout: time.Second}, m, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := New(cfg, 10, Deps{Hub: h, Kafka: fakeKafka{}, Admission: &fakeAdmission{}, Gatherer: reg, Metrics: m, Log: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fl := &flakyListener{Listener: ln}
	fl.failures.Store(2)
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, fl) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := testutil.ToFloat64(m.AcceptErrors); got != 2 {
		t.Errorf("ws_accept_errors_total = %v, want 2", got)
	}
}
