// Command ws-single pushes Kafka market data to WebSocket clients on one core.
// main only wires the internal packages together; see README.md and
// docs/ARCHITECTURE.md.
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	gometrics "github.com/rcrowley/go-metrics"
	"go.uber.org/automaxprocs/maxprocs"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/adred-codev/ws_poc/ws-single/internal/cgroup"
	"github.com/adred-codev/ws_poc/ws-single/internal/config"
	"github.com/adred-codev/ws_poc/ws-single/internal/limits"
	"github.com/adred-codev/ws_poc/ws-single/internal/metrics"
	"github.com/adred-codev/ws_poc/ws-single/internal/server"
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
	// Before anything creates a sarama client: sarama records metrics in the
	// go-metrics global registry by default, which starts a meter goroutine
	// and costs CPU on every request; we export our own Prometheus metrics.
	gometrics.UseNilMetrics = true

	os.Exit(run(os.Args[1:], os.LookupEnv, os.Stdout, os.Stderr))
}

func run(args []string, lookup func(string) (string, bool), stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "--version", "-version", "version":
			fmt.Fprintf(stdout, "ws-single %s (commit %s)\n", version, commit)
			return exitOK
		case "healthcheck":
			return healthcheck(lookup, stderr)
		default:
			fmt.Fprintf(stderr, "usage: ws-single [--version | healthcheck]\n")
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
		log.Error("ws-single stopped", zap.Error(err))
		return exitFail
	}
	log.Info("ws-single stopped")
	return exitOK
}

// serve wires the server and runs it until ctx ends.
func serve(ctx context.Context, cfg config.Config, log *zap.Logger) error {
	// automaxprocs reports what the cgroup quota allows; ws-single then runs
	// on one core regardless, by design (one event loop, no locks).
	if _, err := maxprocs.Set(maxprocs.Logger(log.Sugar().Infof)); err != nil {
		log.Warn("automaxprocs", zap.Error(err))
	}
	detected := runtime.GOMAXPROCS(1)
	log.Info("GOMAXPROCS pinned to 1", zap.Int("detected", detected), zap.Int("host_cpus", runtime.NumCPU()))

	cg, err := cgroup.Detect()
	if err != nil {
		return fmt.Errorf("cgroup: %w", err)
	}
	lim, err := cg.Limits()
	if err != nil {
		return fmt.Errorf("cgroup limits: %w", err)
	}
	maxConns := limits.MaxConnections(cfg.MaxConnections, lim.MemoryBytes, limits.OpenFileLimit(), cfg.HTTPMaxConnsPerIP)
	if soft, ok := limits.SoftMemoryLimit(lim.MemoryBytes, os.Getenv("GOMEMLIMIT")); ok {
		debug.SetMemoryLimit(soft)
	}
	log.Info("limits", zap.Int("cgroup_version", lim.Version), zap.Float64("cpu_cores", lim.CPUCores),
		zap.Int64("memory_bytes", lim.MemoryBytes), zap.Int("max_connections", maxConns),
		zap.Int64("go_memory_limit_bytes", debug.SetMemoryLimit(-1)))

	reg := prometheus.NewRegistry()
	m := metrics.New(reg, metrics.BuildInfo{Variant: config.Variant, Version: version, Commit: commit})
	admission := limits.NewAdmission(cg, cfg.CPURejectThreshold, m, log.Named("admission"))
	srv, err := server.New(server.Options{
		Config: cfg, MaxConnections: maxConns, Metrics: m, Gatherer: reg, Admission: admission, Log: log,
	})
	if err != nil {
		return err
	}

	var wg sync.WaitGroup
	admCtx, stopAdmission := context.WithCancel(ctx)
	defer func() { stopAdmission(); wg.Wait() }()
	wg.Go(func() { _ = admission.Run(admCtx) })

	log.Info("ws-single starting", zap.String("version", version), zap.String("commit", commit),
		zap.String("addr", cfg.Addr), zap.Strings("kafka_brokers", cfg.KafkaBrokers), zap.Strings("topics", cfg.KafkaTopics))
	log.Info("open " + demoURL(cfg.Addr))
	return srv.Run(ctx)
}

// demoURL is the demo page's address on this machine.
func demoURL(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "http://" + addr + "/"
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "127.0.0.1"
	}
	return "http://" + net.JoinHostPort(host, port) + "/"
}

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

// healthcheck GETs /healthz on the configured port over loopback: the probe
// of distroless images, which have no shell or curl.
func healthcheck(lookup func(string) (string, bool), stderr io.Writer) int {
	cfg, err := config.Load(lookup)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return exitFail
	}
	_, port, err := net.SplitHostPort(cfg.Addr)
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck: WS_ADDR=%q: %v\n", cfg.Addr, err)
		return exitFail
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort("127.0.0.1", port)+"/healthz", nil)
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck: %v\n", err)
		return exitFail
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Fprintf(stderr, "healthcheck: %v\n", err)
		return exitFail
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "healthcheck: status %s\n", resp.Status)
		return exitFail
	}
	return exitOK
}
