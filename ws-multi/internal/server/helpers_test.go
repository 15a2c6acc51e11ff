package server

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
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

// producer sends records with explicit partitions.
type producer struct{ brokers []string }

func newProducer(_ *testing.T, b *broker) *producer { return &producer{[]string{b.addr()}} }

// send produces one record and returns its offset.
func (p *producer) send(t *testing.T, topic string, partition int32, key, value string) int64 {
	t.Helper()
	m := kafkatest.Record(topic, partition, key, value)
	kafkatest.Produce(t, p.brokers, m)
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

// waitDisconnect waits until ws_disconnects_total{reason} reaches n.
func (e *env) waitDisconnect(reason string, n float64) {
	e.t.Helper()
	await.True(e.t, 20*time.Second, func() bool {
		return testutil.ToFloat64(e.metrics.Disconnects.WithLabelValues(reason)) == n
	}, "disconnect "+reason)
}
