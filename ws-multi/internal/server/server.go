// This file is duplicated in ws-single (internal/server/server.go) on purpose: the server layer is
// the same for one hub loop and for N shards; they may diverge.

package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/adred-codev/ws_poc/ws-multi/internal/auth"
	"github.com/adred-codev/ws_poc/ws-multi/internal/config"
	"github.com/adred-codev/ws_poc/ws-multi/internal/hub"
	"github.com/adred-codev/ws_poc/ws-multi/internal/metrics"
)

// Runner is a component that works until its context ends.
type Runner interface {
	Run(ctx context.Context) error
}

// Kafka is the consumer as the server sees it (*kafka.Consumer).
type Kafka interface {
	Runner
	// Ready reports whether the consumer has caught up (warm start loaded, lag within
	// WS_READY_MAX_LAG), and why not (/readyz).
	Ready() (bool, string)
}

// Admission decides whether a new upgrade may proceed under CPU pressure
// (*limits.Admission).
type Admission interface {
	Allow() (ok bool, retryAfter time.Duration)
}

// Deps are the parts the server runs and serves; main builds them.
type Deps struct {
	Hub       *hub.Hub
	Kafka     Kafka
	Admission Admission
	// Background run alongside the server until shutdown (the admission sampler).
	Background []Runner
	Gatherer   prometheus.Gatherer // /metrics
	Metrics    *metrics.Metrics
	Log        *zap.Logger
	// Verifier checks tokens; required unless WS_AUTH is off, unused when it is.
	Verifier *auth.Verifier
}

// Server serves WebSocket clients from Kafka. Create it with New, run it with Run or Serve.
type Server struct {
	cfg      config.Config
	maxConns int64
	d        Deps
	m        *metrics.Metrics
	hub      *hub.Hub
	log      *zap.Logger
	audit    *zap.Logger              // sampled: rejections come in storms
	connLog  *zap.Logger              // sampled: per-connection events
	accept   *websocket.AcceptOptions // shared; each upgrade copies it to add its ping callback
	perIP    *ipLimit                 // nil: no per-IP cap
	verifier *auth.Verifier           // nil: auth is off
	public   auth.Patterns            // WS_PUBLIC_CHANNELS
	tlsConf  *tls.Config              // nil: plain TCP; else the port serves TLS only (tls.go)
	frames   sync.Pool                // *[]byte batch frame buffers, shared by all writers
	corks    sync.Pool                // *[]byte cork buffers, shared by all writers

	// base is the context of hub calls: it lives until the hub stops, after
	// the drain. Set by Serve before the first request.
	base context.Context

	draining atomic.Bool
	active   atomic.Int64 // connections holding a slot of the connection limit

	// handlers counts running /ws handlers; idle is closed once draining and
	// none is left. conns is the set of served connections the drain closes.
	hmu      sync.Mutex
	handlers int
	drained  bool
	idle     chan struct{}
	conns    map[*conn]struct{}
}

// sampled keeps the first 5 entries per message per second, then 1 in 100.
func sampled(log *zap.Logger) *zap.Logger {
	return log.WithOptions(zap.WrapCore(func(c zapcore.Core) zapcore.Core {
		return zapcore.NewSamplerWithOptions(c, time.Second, 5, 100)
	}))
}

// New builds the server; maxConns is the resolved connection limit
// (limits.MaxConnections).
func New(cfg config.Config, maxConns int, d Deps) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if maxConns <= 0 {
		return nil, fmt.Errorf("server: max connections %d: must be positive", maxConns)
	}
	if d.Hub == nil || d.Kafka == nil || d.Admission == nil || d.Gatherer == nil || d.Metrics == nil || d.Log == nil {
		return nil, errors.New("server: missing dependency")
	}
	s := &Server{
		cfg:      cfg,
		maxConns: int64(maxConns),
		d:        d,
		m:        d.Metrics,
		hub:      d.Hub,
		log:      d.Log,
		audit:    sampled(d.Log.Named("audit")),
		connLog:  sampled(d.Log.Named("conn")),
		accept: &websocket.AcceptOptions{
			Subprotocols:    []string{Subprotocol},
			OriginPatterns:  cfg.AllowedOrigins,
			CompressionMode: websocket.CompressionDisabled, // per-conn flate state costs ~tens of KB
		},
		idle:  make(chan struct{}),
		conns: make(map[*conn]struct{}),
	}
	if cfg.Auth != config.AuthOff {
		if d.Verifier == nil {
			return nil, errors.New("server: auth is on without a token verifier")
		}
		public, err := auth.ParsePatterns(cfg.PublicChannels)
		if err != nil {
			return nil, fmt.Errorf("server: WS_PUBLIC_CHANNELS: %w", err)
		}
		s.verifier, s.public = d.Verifier, public
	}
	if cfg.TLSCertFile != "" {
		certs, err := newCertReloader(cfg.TLSCertFile, cfg.TLSKeyFile, d.Metrics, d.Log.Named("tls"))
		if err != nil {
			return nil, err
		}
		s.tlsConf = certs.config()
	}
	if cfg.HTTPMaxConnsPerIP > 0 {
		s.perIP = newIPLimit(cfg.HTTPMaxConnsPerIP, d.Metrics.ConnectionsRejected.WithLabelValues(RejectIPLimit), s.audit)
	}
	s.frames.New = func() any {
		b := make([]byte, 0, cfg.BatchMaxBytes)
		return &b
	}
	s.corks.New = func() any {
		b := make([]byte, 0, corkFlushBytes+cfg.BatchMaxBytes)
		return &b
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

// Serve runs the hub, the Kafka consumer and the background runners and serves
// on ln (TLS only, when WS_TLS_CERT_FILE is set) until ctx ends, then drains:
// readiness and new upgrades answer 503, every client is closed with 1001
// "shutdown" in parallel within the shutdown timeout, then the HTTP server, the
// Kafka consumer, the background runners and the hub stop, in that order (the
// hub is still there while clients unregister). It returns nil after a clean
// drain.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	// They all outlive ctx: the drain still needs the hub.
	hubCtx, stopHub := context.WithCancel(context.Background())
	kafkaCtx, stopKafka := context.WithCancel(context.Background())
	bgCtx, stopBg := context.WithCancel(context.Background())
	s.base = hubCtx
	var hubWG, kafkaWG, bgWG sync.WaitGroup
	hubWG.Go(func() { _ = s.hub.Run(hubCtx) })
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

	srv := s.httpServer()
	serveErr := make(chan error, 1)
	var served net.Listener = countingListener{Listener: ln, errors: s.m.AcceptErrors}
	if s.tlsConf != nil {
		// net/http finds the *tls.Conn and handshakes within the http.Server's
		// ReadHeaderTimeout; an upgrade hijacks the *tls.Conn.
		served = tls.NewListener(served, s.tlsConf)
	}
	go func() { serveErr <- srv.Serve(served) }()

	var err error
	select {
	case <-ctx.Done():
	case err = <-serveErr:
		err = fmt.Errorf("server: serve: %w", err)
	}
	s.drain()

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

// drain closes every client with 1001 "shutdown", in parallel, and waits for
// their handlers up to the shutdown timeout; after that it drops the rest.
func (s *Server) drain() {
	s.draining.Store(true)
	s.hmu.Lock()
	s.drained = true
	if s.handlers == 0 {
		close(s.idle)
	}
	clients := s.handlers
	s.hmu.Unlock()
	s.log.Info("draining", zap.Int("connections", clients), zap.Duration("timeout", s.cfg.ShutdownTimeout))

	s.eachLive(func(c *conn) { c.drainWith(s.reconnectDelay()) })
	t := time.NewTimer(s.cfg.ShutdownTimeout)
	defer t.Stop()
	select {
	case <-s.idle:
		s.log.Info("drained")
		return
	case <-t.C:
	}
	s.log.Warn("shutdown timeout passed; dropping the remaining connections")
	s.eachLive((*conn).forceClose)
	// The remaining handlers end as soon as their sockets are closed; the
	// bound only guards against a handler stuck elsewhere.
	select {
	case <-s.idle:
	case <-time.After(5 * time.Second):
		s.log.Error("connections still open after forced close")
	}
}

// reconnectDelay is a drained client's reconnect delay: uniform in [0,
// WS_DRAIN_RECONNECT_MAX], so the clients of this instance spread their reconnects over
// the others instead of landing all at once.
func (s *Server) reconnectDelay() time.Duration {
	return rand.N(s.cfg.DrainReconnectMax + time.Millisecond)
}

// eachLive calls fn, which must not block, for every served connection.
func (s *Server) eachLive(fn func(*conn)) {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	for c := range s.conns {
		fn(c)
	}
}

// track adds c to the live set; it reports whether the drain has begun, in
// which case the drain may have missed c and c must close itself.
func (s *Server) track(c *conn) (draining bool) {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	s.conns[c] = struct{}{}
	return s.drained
}

func (s *Server) untrack(c *conn) {
	s.hmu.Lock()
	defer s.hmu.Unlock()
	delete(s.conns, c)
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
