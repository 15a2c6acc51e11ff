// This file is duplicated in ws-single (main.go) on purpose: the variants differ only in setProcs and the shard count; they may diverge.

// Command ws-multi pushes Kafka market data to WebSocket clients with a sharded hub that
// fans out on every core. main only wires the internal packages together.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	gometrics "github.com/rcrowley/go-metrics"
	"go.uber.org/automaxprocs/maxprocs"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/adred-codev/ws_poc/ws-multi/internal/auth"
	"github.com/adred-codev/ws_poc/ws-multi/internal/cgroup"
	"github.com/adred-codev/ws_poc/ws-multi/internal/config"
	"github.com/adred-codev/ws_poc/ws-multi/internal/history"
	"github.com/adred-codev/ws_poc/ws-multi/internal/hub"
	"github.com/adred-codev/ws_poc/ws-multi/internal/kafka"
	"github.com/adred-codev/ws_poc/ws-multi/internal/limits"
	"github.com/adred-codev/ws_poc/ws-multi/internal/metrics"
	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
	"github.com/adred-codev/ws_poc/ws-multi/internal/server"
)

// Set by the Makefile: -ldflags "-X main.version=... -X main.commit=...".
// Link-time constants; nothing writes them at run time.
var (
	version = "v0.0.0-dev"
	commit  = "unknown"
)

// Exit statuses.
const (
	exitOK     = 0
	exitFail   = 1
	exitConfig = 2
)

func main() {
	// Before anything creates a sarama client: sarama records metrics in the go-metrics
	// global registry by default, which starts a meter goroutine and costs CPU on every
	// request; we export our own Prometheus metrics.
	gometrics.UseNilMetrics = true

	os.Exit(run(os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr))
}

// run is the process: --version, healthcheck, or serve (the default) until SIGTERM or
// SIGINT. It returns the exit status.
func run(args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "--version", "-version", "version":
			fmt.Fprintf(stdout, "ws-multi %s (commit %s)\n", version, commit)
			return exitOK
		case "healthcheck":
			return healthcheck(lookup, stderr)
		case "serve":
		default:
			fmt.Fprintf(stderr, "usage: ws-multi [--version | healthcheck | serve]\n")
			return exitConfig
		}
	}

	cfg, err := config.Load(lookup)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitConfig
	}
	log, err := newLogger(cfg, stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitConfig
	}
	defer func() { _ = log.Sync() }()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := serve(ctx, cfg, log); err != nil {
		log.Error("ws-multi stopped", zap.Error(err))
		return exitFail
	}
	log.Info("ws-multi stopped")
	return exitOK
}

// serve wires the parts together and runs the server until ctx ends.
func serve(ctx context.Context, cfg config.Config, log *zap.Logger) error {
	procs := setProcs(log)
	shards := cfg.Shards
	if shards == 0 {
		shards = procs
	}
	cg, maxConns := resources(cfg, log, cgroup.Detect)
	reg := prometheus.NewRegistry()
	m := metrics.New(reg, metrics.BuildInfo{Variant: config.Variant, Version: version, Commit: commit}, metrics.Labels{
		Rejects: server.RejectReasons, Disconnects: server.ReasonLabels(), Errors: protocol.ErrorCodes,
		NotRecovered: protocol.NotRecoveredReasons, AuthFailures: auth.Reasons,
	})
	hist, err := history.New(history.Config{
		Records: cfg.HistoryRecords, Bytes: cfg.HistoryBytes, MaxAge: cfg.HistoryMaxAge,
	}, cfg.KafkaTopics)
	if err != nil {
		return err
	}
	reader, err := kafka.NewReader(kafka.ReaderConfig{
		Brokers:        cfg.KafkaBrokers,
		ClientID:       cfg.KafkaClientID,
		MaxRecordBytes: cfg.MaxRecordBytes,
		Readers:        cfg.ResumeReaders,
		Wait:           cfg.ResumeWait,
		MaxScanRecords: cfg.ResumeMaxScanRecords,
		MaxScanBytes:   cfg.ResumeMaxScanBytes,
	}, m, log.Named("catchup"))
	if err != nil {
		return err
	}
	defer reader.Close() // after the server (and with it the hub) stopped
	h, err := hub.New(hub.Config{
		Shards:            shards,
		MaxSubscriptions:  cfg.MaxSubscriptions,
		SendQueueMessages: cfg.SendQueueMessages,
		SendQueueBytes:    cfg.SendQueueBytes,
		WriteTimeout:      cfg.WriteTimeout,
		MarkInterval:      cfg.MarkInterval,
		ResumeMaxAge:      cfg.ResumeMaxAge,
		ResumeTimeout:     cfg.ResumeTimeout,
	}, hist, reader, m, log.Named("hub"))
	if err != nil {
		return err
	}
	consumer, err := kafka.New(kafka.Config{
		Brokers:         cfg.KafkaBrokers,
		Topics:          cfg.KafkaTopics,
		StartOffset:     cfg.KafkaStartOffset,
		ClientID:        cfg.KafkaClientID,
		RetryBackoff:    cfg.KafkaRetryBackoff,
		RetryBackoffMax: cfg.KafkaRetryBackoffMax,
		MaxRecordBytes:  cfg.MaxRecordBytes,
		ReadyMaxLag:     cfg.ReadyMaxLag,
	}, h, hist, m, log.Named("kafka"))
	if err != nil {
		return err
	}
	admission := limits.NewAdmission(cg, cfg.CPURejectThreshold, m, log.Named("admission"))
	// The JWK Set refresh outlives ctx: the drain runs after ctx ends.
	authCtx, stopAuth := context.WithCancel(context.Background())
	defer stopAuth()
	verifier, err := newVerifier(authCtx, cfg, log.Named("auth"))
	if err != nil {
		return err
	}
	srv, err := server.New(cfg, maxConns, server.Deps{
		Hub: h, Kafka: consumer, Admission: admission, Background: []server.Runner{admission},
		Gatherer: reg, Metrics: m, Log: log, Verifier: verifier,
	})
	if err != nil {
		return err
	}
	log.Info("ws-multi starting", zap.String("version", version), zap.String("commit", commit),
		zap.String("addr", cfg.Addr), zap.Strings("kafka_brokers", cfg.KafkaBrokers), zap.Strings("topics", cfg.KafkaTopics),
		zap.Int("gomaxprocs", procs), zap.Int("shards", shards))
	log.Info("open " + demoURL(cfg.Addr, cfg.TLSCertFile != ""))
	return srv.Run(ctx)
}

// newVerifier builds the token verifier of WS_AUTH optional or required; nil when it is off.
// A JWK Set is fetched in the background until ctx ends.
func newVerifier(ctx context.Context, cfg config.Config, log *zap.Logger) (*auth.Verifier, error) {
	if cfg.Auth == config.AuthOff {
		return nil, nil
	}
	var secret []byte
	if cfg.JWTHMACSecret != "" {
		secret = []byte(cfg.JWTHMACSecret)
	}
	v, err := auth.New(ctx, auth.Config{
		HMACSecret:  secret,
		JWKSURL:     cfg.JWTJWKSURL,
		JWKSRefresh: cfg.JWTJWKSRefresh,
		JWKSTimeout: cfg.JWTJWKSTimeout,
		Issuer:      cfg.JWTIssuer,
		Audience:    cfg.JWTAudience,
		Algs:        cfg.JWTAlgorithms(),
		Leeway:      cfg.JWTLeeway,
		OnJWKSError: func(err error) { log.Warn("JWK Set refresh failed", zap.String("url", cfg.JWTJWKSURL), zap.Error(err)) },
	})
	if err != nil {
		return nil, err
	}
	log.Info("auth on", zap.String("mode", cfg.Auth), zap.Strings("algs", cfg.JWTAlgorithms()),
		zap.String("issuer", cfg.JWTIssuer), zap.String("audience", cfg.JWTAudience),
		zap.String("jwks_url", cfg.JWTJWKSURL), zap.Strings("public_channels", cfg.PublicChannels))
	return v, nil
}

// setProcs applies the cgroup CPU quota to GOMAXPROCS (automaxprocs) and returns it: the
// shards, one per core by default, then match what the container may use.
func setProcs(log *zap.Logger) int {
	if _, err := maxprocs.Set(maxprocs.Logger(log.Sugar().Infof)); err != nil {
		log.Warn("automaxprocs", zap.Error(err))
	}
	return runtime.GOMAXPROCS(0)
}

// resources reads the cgroup limits with detect (the host's when they cannot be read), sets
// the Go memory limit under the cgroup's, and resolves the connection limit. It returns the
// cgroup reader for CPU admission.
func resources(cfg config.Config, log *zap.Logger, detect func() (*cgroup.Reader, error)) (*cgroup.Reader, int) {
	cg, err := detect()
	var lim cgroup.Limits
	if err == nil {
		lim, err = cg.Limits()
	}
	if err != nil {
		log.Warn("cgroup limits unavailable; using host limits", zap.Error(err))
		cg = &cgroup.Reader{} // no cgroup: admission samples the process
		lim = cgroup.Limits{CPUCores: float64(runtime.NumCPU())}
	}
	maxConns := limits.MaxConnections(cfg.MaxConnections, lim.MemoryBytes, limits.OpenFileLimit(), cfg.HTTPMaxConnsPerIP)
	// The runtime read GOMEMLIMIT from the process's environment: so does this.
	if soft, ok := limits.SoftMemoryLimit(lim.MemoryBytes, os.Getenv("GOMEMLIMIT")); ok {
		debug.SetMemoryLimit(soft)
	}
	log.Info("limits", zap.Int("cgroup_version", lim.Version), zap.Float64("cpu_cores", lim.CPUCores),
		zap.Int64("memory_bytes", lim.MemoryBytes), zap.Int("max_connections", maxConns),
		zap.Int64("go_memory_limit_bytes", debug.SetMemoryLimit(-1)))
	return cg, maxConns
}

// demoURL is the demo page's address on this machine.
func demoURL(addr string, useTLS bool) string {
	scheme := "http://"
	if useTLS {
		scheme = "https://"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return scheme + addr + "/"
	}
	if ip := net.ParseIP(host); host == "" || ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return scheme + net.JoinHostPort(host, port) + "/"
}

// newLogger builds the zap logger: JSON (or console) to out, every entry with the variant.
func newLogger(cfg config.Config, out io.Writer) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(cfg.LogLevel)
	if err != nil {
		return nil, fmt.Errorf("config: WS_LOG_LEVEL=%q: %w", cfg.LogLevel, err)
	}
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if cfg.LogFormat == "console" {
		encCfg.EncodeLevel = zapcore.CapitalColorLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	} else {
		enc = zapcore.NewJSONEncoder(encCfg)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(out)), level)
	return zap.New(core, zap.Fields(zap.String("variant", config.Variant))), nil
}

// healthcheck GETs /healthz on the configured port over loopback (server.CheckHealth), with
// https when WS_TLS_CERT_FILE is set, for distroless images without a shell or curl.
func healthcheck(lookup func(string) (string, bool), stderr io.Writer) int {
	cfg, err := config.Load(lookup)
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck: %v\n", err)
		return exitConfig
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := server.CheckHealth(ctx, cfg.Addr, cfg.TLSCertFile != ""); err != nil {
		fmt.Fprintln(stderr, err)
		return exitFail
	}
	return exitOK
}
