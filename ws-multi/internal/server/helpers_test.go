// This file is duplicated in ws-single (internal/server/helpers_test.go) on purpose: the server layer is
// the same for one hub loop and for N shards; they may diverge.

package server

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	gometrics "github.com/rcrowley/go-metrics"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/goleak"
	"go.uber.org/zap"

	"github.com/adred-codev/ws_poc/ws-multi/internal/auth"
	"github.com/adred-codev/ws_poc/ws-multi/internal/await"
	"github.com/adred-codev/ws_poc/ws-multi/internal/config"
	"github.com/adred-codev/ws_poc/ws-multi/internal/history"
	"github.com/adred-codev/ws_poc/ws-multi/internal/kafka"
	"github.com/adred-codev/ws_poc/ws-multi/internal/kafkatest"
	"github.com/adred-codev/ws_poc/ws-multi/internal/metrics"
	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

func TestMain(m *testing.M) {
	// As in main: no go-metrics meter goroutine from sarama.
	gometrics.UseNilMetrics = true
	goleak.VerifyTestMain(m)
}

// fixture is a running server on a loopback port with its own kfake broker.
type fixture struct {
	t       *testing.T
	cluster *kfake.Cluster
	brokers []string
	srv     *Server
	m       *metrics.Metrics
	addr    string
	roots   *x509.CertPool // serving TLS: the roots its certificate chains to; nil: plain
	cancel  context.CancelFunc
	done    chan error
}

// allow is an Admission with a fixed answer.
type allow struct {
	ok    bool
	retry time.Duration
}

func (a allow) Allow() (bool, time.Duration) { return a.ok, a.retry }

// setup is what an option may change besides the config.
type setup struct {
	maxConns  int
	admission Admission
	roots     *x509.CertPool // with TLS on (tls_test.go's withTLS), the roots to trust
}

type option func(*config.Config, *setup)

func start(t *testing.T, opts ...option) *fixture {
	t.Helper()
	return startOn(t, nil, opts...)
}

// startOn is start with the listener wrapped by wrap (nil: as is).
func startOn(t *testing.T, wrap func(net.Listener) net.Listener, opts ...option) *fixture {
	t.Helper()
	return startWith(t, wrap, nil, opts...)
}

// startWith is startOn with prepare (nil: none) run on the server between New
// and Serve, for what New's validation would refuse.
func startWith(t *testing.T, wrap func(net.Listener) net.Listener, prepare func(*Server), opts ...option) *fixture {
	t.Helper()
	cluster := kafkatest.NewCluster(t, 0)
	brokers := cluster.ListenAddrs()
	cfg := config.Default()
	cfg.Addr = "127.0.0.1:0"
	cfg.KafkaBrokers = brokers
	cfg.KafkaRetryBackoff = 50 * time.Millisecond
	cfg.KafkaRetryBackoffMax = 200 * time.Millisecond
	cfg.ShutdownTimeout = 10 * time.Second
	o := setup{maxConns: 100, admission: allow{ok: true}}
	for _, opt := range opts {
		opt(&cfg, &o)
	}
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, metrics.BuildInfo{Variant: config.Variant}, metrics.Labels{
		Rejects: RejectReasons, Disconnects: ReasonLabels(), Errors: protocol.ErrorCodes, AuthFailures: auth.Reasons,
	})
	d := newDeps(t, cfg, m, reg)
	d.Admission = o.admission
	srv, err := New(cfg, o.maxConns, d)
	if err != nil {
		t.Fatalf("New() = %v", err)
	}
	if prepare != nil {
		prepare(srv)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	f := &fixture{t: t, cluster: cluster, brokers: brokers, srv: srv, m: m, addr: ln.Addr().String(), roots: o.roots,
		cancel: cancel, done: make(chan error, 1)}
	if wrap != nil {
		ln = wrap(ln)
	}
	go func() { f.done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		f.stop()
		f.cluster.Close()
	})
	f.waitStatus("/readyz", http.StatusOK)
	return f
}

// stop cancels the server and checks that Serve returned nil.
func (f *fixture) stop() {
	f.t.Helper()
	if f.cancel == nil {
		return
	}
	f.cancel()
	f.cancel = nil
	select {
	case err := <-f.done:
		if err != nil {
			f.t.Errorf("Serve() = %v, want nil", err)
		}
	case <-time.After(30 * time.Second):
		f.t.Fatal("Serve did not return after cancel")
	}
}

func (f *fixture) url(path string) string {
	if f.roots != nil {
		return "https://" + f.addr + path
	}
	return "http://" + f.addr + path
}

func (f *fixture) get(path string) (*http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.url(path), nil)
	if err != nil {
		return nil, err
	}
	resp, err := f.httpClient().Do(req)
	if err != nil {
		return nil, err
	}
	resp.Body.Close()
	return resp, nil
}

// httpClient speaks to the server, trusting its roots under TLS, and keeps no connection: an
// idle pooled one would outlive the test (goleak).
func (f *fixture) httpClient() *http.Client { return httpClient(f.roots) }

// httpClient keeps no connection and, with roots, speaks TLS trusting only them.
func httpClient(roots *x509.CertPool) *http.Client {
	t := &http.Transport{DisableKeepAlives: true}
	if roots != nil {
		t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}
	}
	return &http.Client{Transport: t}
}

func (f *fixture) waitStatus(path string, status int) {
	f.t.Helper()
	await.True(f.t, 20*time.Second, func() bool {
		resp, err := f.get(path)
		return err == nil && resp.StatusCode == status
	}, fmt.Sprintf("GET %s = %d", path, status))
}

// client is a real coder/websocket client.
type client struct {
	t     *testing.T
	ws    *websocket.Conn
	lines []string // read but not yet consumed
}

func (f *fixture) dial(opts *websocket.DialOptions) (*websocket.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return websocket.Dial(ctx, "ws://"+f.addr+"/ws", opts)
}

func (f *fixture) connect() *client {
	f.t.Helper()
	ws, _, err := f.dial(nil)
	if err != nil {
		f.t.Fatalf("dial: %v", err)
	}
	ws.SetReadLimit(-1)
	f.t.Cleanup(func() { _ = ws.CloseNow() })
	return &client{t: f.t, ws: ws}
}

func (c *client) send(s string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.ws.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		c.t.Fatalf("write %s: %v", s, err)
	}
}

// next returns the next line, reading frames (split on '\n') as needed.
func (c *client) next(timeout time.Duration) (string, error) {
	for len(c.lines) == 0 {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		typ, data, err := c.ws.Read(ctx)
		cancel()
		if err != nil {
			return "", err
		}
		if typ != websocket.MessageText {
			return "", errors.New("binary frame from server")
		}
		c.lines = append(c.lines, strings.Split(string(data), "\n")...)
	}
	line := c.lines[0]
	c.lines = c.lines[1:]
	return line, nil
}

// expect reads the next line as JSON and checks the given fields.
func (c *client) expect(fields map[string]any) map[string]any {
	c.t.Helper()
	line, err := c.next(10 * time.Second)
	if err != nil {
		c.t.Fatalf("reading, want %v: %v", fields, err)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(line), &got); err != nil {
		c.t.Fatalf("line %q is not JSON: %v", line, err)
	}
	for k, v := range fields {
		if fmt.Sprint(got[k]) != fmt.Sprint(v) {
			c.t.Fatalf("line %s: %s = %v, want %v", line, k, got[k], v)
		}
	}
	return got
}

// expectClose reads until the connection ends and checks the close code and reason.
func (c *client) expectClose(code websocket.StatusCode, reason string) {
	c.t.Helper()
	for {
		_, err := c.next(15 * time.Second)
		if err == nil {
			continue
		}
		var ce websocket.CloseError
		if !errors.As(err, &ce) {
			c.t.Fatalf("connection ended with %v, want close %d %q", err, code, reason)
		}
		if ce.Code != code || (reason != "" && ce.Reason != reason) {
			c.t.Fatalf("close = %d %q, want %d %q", ce.Code, ce.Reason, code, reason)
		}
		return
	}
}

// smallReadBuffer is a dialer whose sockets have a tiny receive buffer, so a
// client that stops reading stalls the server's writes quickly.
func smallReadBuffer() *http.Client {
	d := &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// newDeps builds the hub (newHub, the one variant-specific part) and the Kafka
// consumer as main does.
func newDeps(t *testing.T, cfg config.Config, m *metrics.Metrics, reg *prometheus.Registry) Deps {
	t.Helper()
	hist, err := history.New(history.Config{Records: cfg.HistoryRecords, Bytes: cfg.HistoryBytes, MaxAge: cfg.HistoryMaxAge}, cfg.KafkaTopics)
	if err != nil {
		t.Fatalf("history.New() = %v", err)
	}
	rd, err := kafka.NewReader(kafka.ReaderConfig{
		Brokers: cfg.KafkaBrokers, ClientID: cfg.KafkaClientID, MaxRecordBytes: cfg.MaxRecordBytes,
		Readers: cfg.ResumeReaders, Wait: cfg.ResumeWait, MaxScanRecords: cfg.ResumeMaxScanRecords, MaxScanBytes: cfg.ResumeMaxScanBytes,
	}, m, zap.NewNop())
	if err != nil {
		t.Fatalf("kafka.NewReader() = %v", err)
	}
	t.Cleanup(func() { _ = rd.Close() })
	h := newHub(t, cfg, hist, rd, m) // variant_test.go
	k, err := kafka.New(kafka.Config{
		Brokers:         cfg.KafkaBrokers,
		Topics:          cfg.KafkaTopics,
		StartOffset:     cfg.KafkaStartOffset,
		ClientID:        cfg.KafkaClientID,
		RetryBackoff:    cfg.KafkaRetryBackoff,
		RetryBackoffMax: cfg.KafkaRetryBackoffMax,
		MaxRecordBytes:  cfg.MaxRecordBytes,
		ReadyMaxLag:     cfg.ReadyMaxLag,
	}, h, hist, m, zap.NewNop())
	if err != nil {
		t.Fatalf("kafka.New() = %v", err)
	}
	d := Deps{Hub: h, Kafka: k, Gatherer: reg, Metrics: m, Log: zap.NewNop()}
	if cfg.Auth != config.AuthOff {
		// Canceled at the test's end, which stops a JWK Set refresh.
		v, err := auth.New(t.Context(), auth.Config{
			HMACSecret: []byte(cfg.JWTHMACSecret), JWKSURL: cfg.JWTJWKSURL,
			JWKSRefresh: cfg.JWTJWKSRefresh, JWKSTimeout: cfg.JWTJWKSTimeout,
			Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, Algs: cfg.JWTAlgorithms(), Leeway: cfg.JWTLeeway,
		})
		if err != nil {
			t.Fatalf("auth.New() = %v", err)
		}
		d.Verifier = v
	}
	return d
}
