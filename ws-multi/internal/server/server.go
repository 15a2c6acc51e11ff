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

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/adred-codev/ws_poc/ws-multi/internal/config"
	"github.com/adred-codev/ws_poc/ws-multi/internal/hub"
	"github.com/adred-codev/ws_poc/ws-multi/internal/metrics"
)

// Runner is a component that works until its context ends.
type Runner interface {
	Run(ctx context.Context) error
}

// Kafka is the consumer as the server sees it.
type Kafka interface {
	Runner
	Attached() bool
}

// Admission decides whether a new upgrade may proceed (limits.Admission).
type Admission interface {
	Allow() (ok bool, retryAfter time.Duration)
}

// Deps are the parts the server wires together; main builds them.
type Deps struct {
	Hub        *hub.Hub
	Kafka      Kafka
	Admission  Admission
	Background []Runner            // run alongside until shutdown (the admission sampler)
	Gatherer   prometheus.Gatherer // /metrics
	Metrics    *metrics.Metrics
	Log        *zap.Logger
}

// Server serves WebSocket clients.
type Server struct {
	cfg      config.Config
	maxConns int64
	d        Deps
	http     *http.Server
	audit    *zap.Logger // sampled: one entry per refused upgrade, and they come in storms
	connLog  *zap.Logger // sampled: per-connection events

	draining atomic.Bool
	active   atomic.Int64 // open WebSocket connections
	// handlers counts upgrades in progress and connection goroutines. mu orders its Adds
	// before drain's Wait: enter refuses once closing is set. conns is the live set the
	// drain closes: a connection joins it once registered with the hub, unless closing is
	// set (then it is closed at once), and leaves it when it ends.
	mu       sync.Mutex
	closing  bool
	handlers sync.WaitGroup
	conns    map[*conn]struct{}
	// connCtx is the context of every socket read; cancelling it closes the sockets still
	// open when the shutdown timeout ran out.
	connCtx  context.Context
	hardStop context.CancelFunc
	corks    sync.Pool // *[]byte cork buffers, shared by every connection's writer
	frames   sync.Pool // *[]byte batched frame buffers of cap WS_BATCH_MAX_BYTES, shared likewise
}

// sampled keeps the first 5 entries per message per second, then 1 in 100.
func sampled(log *zap.Logger) *zap.Logger {
	return log.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewSamplerWithOptions(c, time.Second, 5, 100)
	}))
}

// drainRetryAfter is the Retry-After sent while draining: the instance is going away, so a
// client should come back (to another instance) soon.
const drainRetryAfter = time.Second

// readHeaderTimeout closes a connection that has not sent its request headers in time.
const readHeaderTimeout = 10 * time.Second

// New builds a server; maxConns is the resolved connection limit (limits.MaxConnections).
func New(cfg config.Config, maxConns int, d Deps) (*Server, error) {
	if maxConns < 1 {
		return nil, fmt.Errorf("server: connection limit %d: want at least 1", maxConns)
	}
	if d.Hub == nil || d.Kafka == nil || d.Admission == nil || d.Gatherer == nil || d.Metrics == nil || d.Log == nil {
		return nil, errors.New("server: missing dependency")
	}
	s := &Server{
		cfg: cfg, maxConns: int64(maxConns), d: d,
		audit:   sampled(d.Log.Named("audit")),
		connLog: sampled(d.Log.Named("conn")),
		conns:   make(map[*conn]struct{}),
	}
	s.connCtx, s.hardStop = context.WithCancel(context.Background())
	s.corks.New = func() any {
		// A write up to corkFlushBytes plus one batched frame fits without growing.
		b := make([]byte, 0, corkFlushBytes+cfg.BatchMaxBytes)
		return &b
	}
	s.frames.New = func() any {
		b := make([]byte, 0, cfg.BatchMaxBytes)
		return &b
	}
	s.http = &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       cfg.HTTPIdleTimeout, // WebSocket connections are hijacked: not affected
		MaxHeaderBytes:    cfg.MaxHeaderBytes,  // past it net/http answers 431
		ErrorLog:          zap.NewStdLog(d.Log.Named("http")),
	}
	if cfg.HTTPMaxConnsPerIP > 0 {
		lim := newIPLimit(cfg.HTTPMaxConnsPerIP, d.Metrics.ConnectionsRejected.WithLabelValues(RejectIPLimit), s.audit)
		s.http.ConnState = lim.connState
	}
	return s, nil
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

// Serve serves on ln until ctx ends, then drains: /ws and /readyz answer 503, every client
// is closed with 1001 "shutdown" in parallel within the shutdown timeout, and then the HTTP
// server, the Kafka consumer, the background runners and the hub stop, in that order. It
// returns nil after a clean drain.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	defer s.hardStop()
	hubCtx, stopHub := context.WithCancel(context.Background())
	kafkaCtx, stopKafka := context.WithCancel(context.Background())
	bgCtx, stopBg := context.WithCancel(context.Background())
	var hubWG, kafkaWG, bgWG sync.WaitGroup
	hubWG.Go(func() { _ = s.d.Hub.Run(hubCtx) })
	kafkaWG.Go(func() { _ = s.d.Kafka.Run(kafkaCtx) })
	for _, r := range s.d.Background {
		bgWG.Go(func() { _ = r.Run(bgCtx) })
	}
	defer func() {
		stopKafka()
		kafkaWG.Wait()
		stopBg()
		bgWG.Wait()
		stopHub()
		hubWG.Wait()
	}()

	serveErr := make(chan error, 1)
	go func() { serveErr <- s.http.Serve(countingListener{Listener: ln, errors: s.d.Metrics.AcceptErrors}) }()

	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
		err = fmt.Errorf("server: serve: %w", err)
	}
	s.drain()
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if serr := s.http.Shutdown(shutCtx); serr != nil && err == nil {
		err = fmt.Errorf("server: http shutdown: %w", serr)
	}
	if ctx.Err() != nil {
		<-serveErr // http.ErrServerClosed after Shutdown
	}
	return err
}

// drain refuses new upgrades, closes every client with 1001 in parallel and waits for their
// handlers, at most the shutdown timeout; then it cuts the remaining sockets.
func (s *Server) drain() {
	s.draining.Store(true)
	n := s.active.Load()
	s.d.Log.Info("draining: closing clients", zap.Int64("connections", n), zap.Duration("timeout", s.cfg.ShutdownTimeout))
	start := time.Now()
	for _, c := range s.live() {
		c.close(ReasonShutdown)
	}
	done := make(chan struct{})
	go func() { s.handlers.Wait(); close(done) }()
	t := time.NewTimer(s.cfg.ShutdownTimeout)
	defer t.Stop()
	select {
	case <-done:
		s.d.Log.Info("drained", zap.Int64("connections", n), zap.Duration("took", time.Since(start)))
	case <-t.C:
		s.d.Log.Warn("shutdown timeout: cutting remaining connections", zap.Int64("remaining", s.active.Load()))
		s.hardStop()
		<-done
	}
}

// enter counts a new upgrade in handlers unless the server is draining.
func (s *Server) enter() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.handlers.Add(1)
	return true
}

// track adds c to the live set; false once the drain started (c must close itself).
func (s *Server) track(c *conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
}

// live closes the live set to newcomers (enter and track refuse from now on) and returns
// its connections.
func (s *Server) live() []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closing = true
	cs := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		cs = append(cs, c)
	}
	return cs
}
