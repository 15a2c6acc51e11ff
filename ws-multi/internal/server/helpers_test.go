package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"go.uber.org/zap"

	"github.com/adred-codev/ws_poc/ws-multi/internal/await"
	"github.com/adred-codev/ws_poc/ws-multi/internal/config"
	"github.com/adred-codev/ws_poc/ws-multi/internal/hub"
	"github.com/adred-codev/ws_poc/ws-multi/internal/kafka"
	"github.com/adred-codev/ws_poc/ws-multi/internal/kafkatest"
	"github.com/adred-codev/ws_poc/ws-multi/internal/metrics"
	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// broker is a kfake cluster (kafkatest) on a fixed loopback port, so a test can stop it and
// start it again where the server expects it.
type broker struct {
	t          *testing.T
	port       int
	partitions int32
	cl         *kfake.Cluster
}

// startBroker starts a broker whose topics (kafkatest.Topics) have at least partitions
// partitions.
func startBroker(t *testing.T, partitions int32) *broker {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	b := &broker{t: t, port: port, partitions: partitions}
	b.start()
	t.Cleanup(b.stop)
	return b
}

func (b *broker) addr() string { return "127.0.0.1:" + strconv.Itoa(b.port) }

func (b *broker) start() {
	b.t.Helper()
	// A port just released can take a moment to be bindable again.
	await.True(b.t, 5*time.Second, func() bool {
		ln, err := net.Listen("tcp", b.addr())
		if err == nil {
			ln.Close()
		}
		return err == nil
	}, "broker port free")
	b.cl = kafkatest.NewCluster(b.t, b.port)
	if b.partitions > 2 { // kafkatest seeds two per topic
		admin, err := sarama.NewClusterAdmin([]string{b.addr()}, sarama.NewConfig())
		if err != nil {
			b.t.Fatal(err)
		}
		defer admin.Close()
		for _, topic := range kafkatest.Topics {
			if err := admin.CreatePartitions(topic, b.partitions, nil, false); err != nil {
				b.t.Fatalf("partitions of %s: %v", topic, err)
			}
		}
	}
}

func (b *broker) stop() {
	if b.cl != nil {
		b.cl.Close()
		b.cl = nil
	}
}

// send produces one record and returns its offset.
func (b *broker) send(t *testing.T, topic string, partition int32, key, value string) int64 {
	t.Helper()
	m := kafkatest.Record(topic, partition, key, value)
	kafkatest.Produce(t, []string{b.addr()}, m)
	return m.Offset
}

// fakeAdmission lets a test switch CPU admission off and on.
type fakeAdmission struct{ refuse atomic.Bool }

func (f *fakeAdmission) Allow() (bool, time.Duration) {
	if f.refuse.Load() {
		return false, 1500 * time.Millisecond
	}
	return true, 0
}

// env is a running server wired like main, against a kfake broker.
type env struct {
	t         *testing.T
	broker    *broker
	metrics   *metrics.Metrics
	hub       *hub.Hub
	admission *fakeAdmission
	url       string // http://127.0.0.1:port
	cancel    context.CancelFunc
	served    chan error
	http      *http.Client
}

type option func(cfg *config.Config, maxConns *int)

func testConfig(b *broker) config.Config {
	cfg := config.Default()
	cfg.KafkaBrokers = []string{b.addr()}
	cfg.KafkaTopics = []string{"trades", "tickers"}
	cfg.KafkaRetryBackoff = 50 * time.Millisecond
	cfg.KafkaRetryBackoffMax = 200 * time.Millisecond
	cfg.WriteTimeout = 2 * time.Second
	cfg.ShutdownTimeout = 5 * time.Second
	cfg.Shards = 3
	return cfg
}

func startEnv(t *testing.T, b *broker, opts ...option) *env {
	t.Helper()
	cfg := testConfig(b)
	maxConns := 1000
	for _, o := range opts {
		o(&cfg, &maxConns)
	}
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, metrics.BuildInfo{Variant: config.Variant, Version: "test", Commit: "test"}, metrics.Labels{
		Rejects: RejectReasons, Disconnects: ReasonLabels(), Errors: protocol.ErrorCodes,
	})
	log := zap.NewNop()
	h, err := hub.New(hub.Config{
		Shards: cfg.Shards, MaxSubscriptions: cfg.MaxSubscriptions,
		SendQueueMessages: cfg.SendQueueMessages, SendQueueBytes: cfg.SendQueueBytes,
		WriteTimeout: cfg.WriteTimeout,
	}, m, log)
	if err != nil {
		t.Fatal(err)
	}
	consumer, err := kafka.New(kafka.Config{
		Brokers: cfg.KafkaBrokers, Topics: cfg.KafkaTopics, ClientID: "test",
		StartOffset:  cfg.KafkaStartOffset,
		RetryBackoff: cfg.KafkaRetryBackoff, RetryBackoffMax: cfg.KafkaRetryBackoffMax,
		LagInterval: 200 * time.Millisecond, MaxRecordBytes: cfg.MaxRecordBytes,
	}, h, m, log)
	if err != nil {
		t.Fatal(err)
	}
	adm := &fakeAdmission{}
	srv, err := New(cfg, maxConns, Deps{Hub: h, Kafka: consumer, Admission: adm, Gatherer: reg, Metrics: m, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &env{t: t, broker: b, metrics: m, hub: h, admission: adm, url: "http://" + ln.Addr().String(),
		cancel: cancel, served: make(chan error, 1),
		http: &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}}
	go func() { e.served <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		e.cancel()
		select {
		case err := <-e.served:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Error("Serve did not return after cancel")
		}
	})
	e.waitReady(200)
	return e
}

// stopServer cancels the server's context and returns what Serve returned.
func (e *env) stopServer() error {
	e.cancel()
	err := <-e.served
	e.served <- nil // for the cleanup
	return err
}

func (e *env) get(path string, header http.Header) (*http.Response, string) {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, e.url+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := e.http.Do(req)
	if err != nil {
		e.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

func (e *env) waitReady(status int) {
	e.t.Helper()
	await.True(e.t, 20*time.Second, func() bool {
		resp, _ := e.get("/readyz", nil)
		return resp.StatusCode == status
	}, fmt.Sprintf("/readyz %d", status))
}

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
