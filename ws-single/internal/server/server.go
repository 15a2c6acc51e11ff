package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/adred-codev/ws_poc/ws-single/internal/config"
	"github.com/adred-codev/ws_poc/ws-single/internal/hub"
	"github.com/adred-codev/ws_poc/ws-single/internal/kafka"
	"github.com/adred-codev/ws_poc/ws-single/internal/metrics"
)

// Admitter decides whether a new upgrade may proceed (CPU admission);
// *limits.Admission is one.
type Admitter interface {
	Allow() (ok bool, retryAfter time.Duration)
}

// Options are the server's dependencies.
type Options struct {
	// Config is the validated configuration.
	Config config.Config
	// MaxConnections is the resolved connection limit (limits.MaxConnections).
	MaxConnections int
	// Metrics are registered on Gatherer's registry, which /metrics serves.
	Metrics  *metrics.Metrics
	Gatherer prometheus.Gatherer
	// Admission refuses upgrades under CPU pressure; nil admits everyone.
	Admission Admitter
	// Log is the server's logger.
	Log *zap.Logger
}

// Server serves WebSocket clients from Kafka. Create it with New, run it with Run or Serve.
type Server struct {
	cfg      config.Config
	maxConns int64
	m        *metrics.Metrics
	gatherer prometheus.Gatherer
	admit    Admitter
	log      *zap.Logger
	audit    *zap.Logger // sampled: rejections come in storms
	connLog  *zap.Logger // sampled: per-connection events
	hub      *hub.Hub
	kafka    *kafka.Consumer
	accept   *websocket.AcceptOptions // shared; each upgrade copies it to add its ping callback
	perIP    *ipLimit                 // nil: no per-IP cap
	frames   sync.Pool                // *[]byte batch frame buffers, shared by all writers
	corks    sync.Pool                // *[]byte cork buffers, shared by all writers

	// base is the context of hub calls: it lives until the hub stops, after
	// the drain. Set by Serve before the first request.
	base context.Context

	draining atomic.Bool
	active   atomic.Int64 // connections holding a slot of MaxConnections

	// handlers counts running /ws handlers; idle is closed once draining and
	// none is left.
	hmu      sync.Mutex
	handlers int
	drained  bool
	idle     chan struct{}
}

// sampled keeps the first 5 entries per message per second, then 1 in 100.
func sampled(log *zap.Logger) *zap.Logger {
	return log.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewSamplerWithOptions(c, time.Second, 5, 100)
	}))
}

// New builds the server, its hub and its Kafka consumer.
func New(o Options) (*Server, error) {
	cfg := o.Config
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if o.MaxConnections <= 0 {
		return nil, fmt.Errorf("server: max connections %d: must be positive", o.MaxConnections)
	}
	log := o.Log
	if log == nil {
		log = zap.NewNop()
	}
	s := &Server{
		cfg:      cfg,
		maxConns: int64(o.MaxConnections),
		m:        o.Metrics,
		gatherer: o.Gatherer,
		admit:    o.Admission,
		log:      log,
		audit:    sampled(log.Named("audit")),
		connLog:  sampled(log.Named("conn")),
		accept: &websocket.AcceptOptions{
			OriginPatterns:  cfg.AllowedOrigins,
			CompressionMode: websocket.CompressionDisabled, // per-conn flate state costs ~tens of KB
		},
		idle: make(chan struct{}),
	}
	if cfg.HTTPMaxConnsPerIP > 0 {
		s.perIP = newIPLimit(cfg.HTTPMaxConnsPerIP, o.Metrics.ConnectionsRejected.WithLabelValues(metrics.RejectIPLimit), s.audit)
	}
	s.frames.New = func() any {
		b := make([]byte, 0, cfg.BatchMaxBytes)
		return &b
	}
	s.corks.New = func() any {
		b := make([]byte, 0, corkFlushBytes+cfg.BatchMaxBytes)
		return &b
	}
	s.hub = hub.New(hub.Config{
		MaxSubscriptions:  cfg.MaxSubscriptions,
		SendQueueMessages: cfg.SendQueueMessages,
		SendQueueBytes:    cfg.SendQueueBytes,
		WriteTimeout:      cfg.WriteTimeout,
	}, o.Metrics)
	k, err := kafka.New(kafka.Config{
		Brokers:         cfg.KafkaBrokers,
		Topics:          cfg.KafkaTopics,
		StartOffset:     cfg.KafkaStartOffset,
		ClientID:        cfg.KafkaClientID,
		RetryBackoff:    cfg.KafkaRetryBackoff,
		RetryBackoffMax: cfg.KafkaRetryBackoffMax,
		MaxRecordBytes:  cfg.MaxRecordBytes,
	}, s.hub, o.Metrics, sampled(log.Named("kafka")))
	if err != nil {
		return nil, err
	}
	s.kafka = k
	return s, nil
}

// Handler returns the HTTP routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", s.handleWS)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.handleReady)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.gatherer, promhttp.HandlerOpts{}))
	mux.Handle("GET /{$}", demoHandler())
	return mux
}

func (s *Server) handleReady(w http.ResponseWriter, _ *http.Request) {
	switch {
	case s.draining.Load():
		http.Error(w, "draining", http.StatusServiceUnavailable)
	case !s.kafka.Attached():
		http.Error(w, "kafka not attached", http.StatusServiceUnavailable)
	default:
		_, _ = w.Write([]byte("ready\n"))
	}
}

// Run listens on the configured address and serves until ctx ends; see Serve.
func (s *Server) Run(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("server: listen %s: %w", s.cfg.Addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends, then drains: readiness and new upgrades
// answer 503, every client is closed with 1001 "shutdown" in parallel within
// the shutdown timeout, then the Kafka consumer and the hub stop. It returns
// nil after a clean drain.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	// The hub and the consumer outlive ctx: the drain still needs the hub.
	hubCtx, stopHub := context.WithCancel(context.Background())
	defer stopHub()
	s.base = hubCtx
	hubDone := make(chan struct{})
	go func() { defer close(hubDone); _ = s.hub.Run(hubCtx) }()
	defer func() { stopHub(); <-hubDone }()

	kafkaCtx, stopKafka := context.WithCancel(context.Background())
	defer stopKafka()
	kafkaDone := make(chan struct{})
	go func() { defer close(kafkaDone); _ = s.kafka.Run(kafkaCtx) }()
	defer func() { stopKafka(); <-kafkaDone }()

	srv := s.httpServer()
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(countingListener{Listener: ln, errors: s.m.AcceptErrors}) }()

	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
		err = fmt.Errorf("server: serve: %w", err)
	}
	s.drain(hubCtx)

	// Upgrades are refused while draining; now close the listener and idle
	// keep-alive connections.
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if shutErr := srv.Shutdown(shutCtx); shutErr != nil && err == nil {
		err = fmt.Errorf("server: shutdown: %w", shutErr)
	}
	if serr := <-serveErr; !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = fmt.Errorf("server: serve: %w", serr)
	}
	return err
}

// httpServer is the HTTP side's hygiene: a request's headers within 10 s and
// WS_MAX_HEADER_BYTES (net/http answers 431), idle keep-alive connections closed
// after WS_HTTP_IDLE_TIMEOUT, and at most WS_HTTP_MAX_CONNS_PER_IP connections
// per source address that are not WebSocket connections (ipLimit).
func (s *Server) httpServer() *http.Server {
	srv := &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       s.cfg.HTTPIdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		ErrorLog:          zap.NewStdLog(s.log.Named("http")),
	}
	if s.perIP != nil {
		srv.ConnState = s.perIP.connState
	}
	return srv
}

// drain closes every client with 1001 "shutdown", in parallel, and waits for
// their handlers up to the shutdown timeout; after that it drops the rest.
func (s *Server) drain(ctx context.Context) {
	s.draining.Store(true)
	s.hmu.Lock()
	s.drained = true
	if s.handlers == 0 {
		close(s.idle)
	}
	clients := s.handlers
	s.hmu.Unlock()
	s.log.Info("draining", zap.Int("connections", clients), zap.Duration("timeout", s.cfg.ShutdownTimeout))

	_ = s.hub.Each(ctx, func(c hub.Conn) { c.(*conn).closeWith(metrics.DisconnectShutdown) })
	t := time.NewTimer(s.cfg.ShutdownTimeout)
	defer t.Stop()
	select {
	case <-s.idle:
		s.log.Info("drained")
		return
	case <-t.C:
	}
	s.log.Warn("shutdown timeout passed; dropping the remaining connections")
	_ = s.hub.Each(ctx, func(c hub.Conn) { c.(*conn).forceClose() })
	// The remaining handlers end as soon as their sockets are closed; the
	// bound only guards against a handler stuck elsewhere.
	select {
	case <-s.idle:
	case <-time.After(5 * time.Second):
		s.log.Error("connections still open after forced close")
	}
}

// enter counts a /ws handler; false while draining.
func (s *Server) enter() bool {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	if s.drained {
		return false
	}
	s.handlers++
	return true
}

func (s *Server) leave() {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	s.handlers--
	if s.drained && s.handlers == 0 {
		close(s.idle)
	}
}

// Attached reports whether Kafka is attached (every partition consumed).
func (s *Server) Attached() bool { return s.kafka.Attached() }
