// Command ws-multi pushes Kafka market data to WebSocket clients with a sharded hub that
// fans out on every core. main only wires the internal packages together.
package main

import (
	"context"
	"errors"
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

	"github.com/adred-codev/ws_poc/ws-multi/internal/cgroup"
	"github.com/adred-codev/ws_poc/ws-multi/internal/config"
	"github.com/adred-codev/ws_poc/ws-multi/internal/hub"
	"github.com/adred-codev/ws_poc/ws-multi/internal/kafka"
	"github.com/adred-codev/ws_poc/ws-multi/internal/limits"
	"github.com/adred-codev/ws_poc/ws-multi/internal/metrics"
	"github.com/adred-codev/ws_poc/ws-multi/internal/server"
)

// Set by the Makefile's -ldflags.
var (
	version = "dev"
	commit  = "unknown"
)

// exitConfig is the exit status for an invalid configuration.
const exitConfig = 2

// errConfig marks an invalid configuration, which exits with exitConfig.
var errConfig = errors.New("invalid configuration")

func main() {
	// sarama records every client's metrics in go-metrics registries whose meters tick on a
	// background goroutine and cost CPU per request; we export our own Prometheus metrics,
	// so turn go-metrics off before any sarama client exists.
	gometrics.UseNilMetrics = true

	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "--version", "-version", "version":
			fmt.Printf("ws-multi %s (commit %s)\n", version, commit)
			return
		case "healthcheck":
			os.Exit(healthcheck(os.Stderr))
		default:
			fmt.Fprintf(os.Stderr, "usage: ws-multi [--version | healthcheck]\n")
			os.Exit(exitConfig)
		}
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	err := run(ctx)
	stop()
	if err != nil {
		fmt.Fprintf(os.Stderr, "ws-multi: %v\n", err)
		if errors.Is(err, errConfig) {
			os.Exit(exitConfig)
		}
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	cfg, err := config.Load(os.LookupEnv)
	if err != nil {
		return fmt.Errorf("%w: %w", errConfig, err)
	}
	log, err := newLogger(cfg)
	if err != nil {
		return fmt.Errorf("%w: %w", errConfig, err)
	}
	defer func() { _ = log.Sync() }()

	undo, err := maxprocs.Set(maxprocs.Logger(log.Sugar().Infof))
	defer undo()
	if err != nil {
		log.Warn("automaxprocs: cgroup CPU quota not applied", zap.Error(err))
	}
	procs := runtime.GOMAXPROCS(0)
	shards := cfg.Shards
	if shards == 0 {
		shards = procs
	}

	reg := prometheus.NewRegistry()
	m := metrics.New(reg, metrics.BuildInfo{Variant: config.Variant, Version: version, Commit: commit})

	cg, err := cgroup.Detect()
	if err != nil {
		log.Warn("cgroup: not readable; no memory limit and CPU admission fails open", zap.Error(err))
		cg = &cgroup.Reader{}
	}
	lim, err := cg.Limits()
	if err != nil {
		log.Warn("cgroup: limits not readable", zap.Error(err))
	}
	maxConns := limits.MaxConnections(cfg.MaxConnections, lim.MemoryBytes, limits.OpenFileLimit(), cfg.HTTPMaxConnsPerIP)
	if soft, ok := limits.SoftMemoryLimit(lim.MemoryBytes, os.Getenv("GOMEMLIMIT")); ok {
		debug.SetMemoryLimit(soft)
	}
	log.Info("starting ws-multi",
		zap.String("version", version), zap.String("commit", commit),
		zap.Int("gomaxprocs", procs), zap.Int("shards", shards),
		zap.Int("cgroup_version", lim.Version), zap.Float64("cgroup_cpu_cores", lim.CPUCores),
		zap.Int64("cgroup_memory_bytes", lim.MemoryBytes), zap.Int("max_connections", maxConns),
		zap.Int64("go_memory_limit_bytes", debug.SetMemoryLimit(-1)))

	h, err := hub.New(hub.Config{
		Shards:            shards,
		MaxSubscriptions:  cfg.MaxSubscriptions,
		SendQueueMessages: cfg.SendQueueMessages,
		SendQueueBytes:    cfg.SendQueueBytes,
		WriteTimeout:      cfg.WriteTimeout,
		PingInterval:      cfg.PingInterval,
		Batch:             cfg.Batch,
		BatchMaxBytes:     cfg.BatchMaxBytes,
	}, m, log.Named("hub"))
	if err != nil {
		return err
	}
	consumer, err := kafka.New(kafka.Config{
		Brokers:         cfg.KafkaBrokers,
		Topics:          cfg.KafkaTopics,
		StartOldest:     cfg.KafkaStartOffset == "oldest",
		ClientID:        cfg.KafkaClientID,
		RetryBackoff:    cfg.KafkaRetryBackoff,
		RetryBackoffMax: cfg.KafkaRetryBackoffMax,
		MaxRecordBytes:  cfg.MaxRecordBytes,
	}, h, m, log.Named("kafka"))
	if err != nil {
		return err
	}
	admission := limits.NewAdmission(cg, cfg.CPURejectThreshold, m, log.Named("admission"))
	srv, err := server.New(cfg, maxConns, server.Deps{
		Hub:        h,
		Kafka:      consumer,
		Admission:  admission,
		Background: []server.Runner{admission},
		Registry:   reg,
		Metrics:    m,
		Log:        log,
		Audit:      log.Named("audit"),
	})
	if err != nil {
		return err
	}

	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen %s: %w", cfg.Addr, err)
	}
	log.Info("open http://"+localURL(ln.Addr())+"/", zap.String("addr", ln.Addr().String()))
	if err := srv.Serve(ctx, ln); err != nil {
		return err
	}
	log.Info("stopped")
	return nil
}

// newLogger builds the zap logger: JSON (or console) with sampling, so per-connection and
// per-error events cannot flood the output.
func newLogger(cfg config.Config) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(cfg.LogLevel)
	if err != nil {
		return nil, fmt.Errorf("WS_LOG_LEVEL=%q: %w", cfg.LogLevel, err)
	}
	zc := zap.NewProductionConfig()
	zc.Level = zap.NewAtomicLevelAt(level)
	zc.Sampling = &zap.SamplingConfig{Initial: 100, Thereafter: 100}
	zc.EncoderConfig.TimeKey = "ts"
	zc.EncoderConfig.EncodeTime = zapcore.ISO8601TimeEncoder
	if cfg.LogFormat == "console" {
		zc.Encoding = "console"
		zc.EncoderConfig.EncodeLevel = zapcore.CapitalColorLevelEncoder
	}
	return zc.Build()
}

// localURL turns the listen address into host:port a browser on this machine can open.
func localURL(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); host == "" || ip == nil || ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

// healthcheck runs the `healthcheck` subcommand and returns the process exit status.
func healthcheck(stderr io.Writer) int {
	cfg, err := config.Load(os.LookupEnv)
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck: %v\n", err)
		return exitConfig
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if err := server.CheckHealth(ctx, cfg.Addr); err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}
