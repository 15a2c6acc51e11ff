// Package conform is `loadtest conform`: a black-box check of docs/PROTOCOL.md against a
// running server that consumes a given Kafka broker. It produces its own records (keys
// unique to the run) with sarama and watches what real WebSocket connections receive.
package conform

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/rcrowley/go-metrics"
	"golang.org/x/time/rate"
)

// Config is what the suite knows about the server under test. The limits must match the
// server's settings; their defaults are the README's defaults.
type Config struct {
	// URL is the WebSocket endpoint, e.g. ws://127.0.0.1:3002/ws. Required.
	URL string
	// Brokers are the Kafka bootstrap addresses the server consumes. Required.
	Brokers []string
	// Topic is a topic the server consumes; the suite produces only to it. Default "trades".
	Topic string
	// MaxSubscriptions is WS_MAX_SUBSCRIPTIONS. Default 100.
	MaxSubscriptions int
	// ReadLimit is WS_READ_LIMIT in bytes. Default 4096.
	ReadLimit int
	// RateLimit is WS_RATE_LIMIT in messages per second. Default 20.
	RateLimit float64
	// RateBurst is WS_RATE_BURST. Default 40.
	RateBurst int
	// BatchMaxBytes is WS_BATCH_MAX_BYTES. Default 32768.
	BatchMaxBytes int
	// ExpectBatching is WS_BATCH: true expects some frame to carry several messages under
	// a burst; false expects one object per frame.
	ExpectBatching bool
	// MaxConnections is WS_MAX_CONNECTIONS when set explicitly; 0 skips the 1013 check,
	// since an automatic limit is too high to reach from a test.
	MaxConnections int
	// PingInterval is WS_PING_INTERVAL; when set, a client that does not answer pings must
	// be dropped and one that does must stay. 0 skips that check (the default 25 s is
	// too long for a quick suite).
	PingInterval time.Duration
	// WriteTimeout is WS_WRITE_TIMEOUT. Default 5s.
	WriteTimeout time.Duration
	// SendQueueMessages is WS_SEND_QUEUE_MESSAGES; when set, a client that stops reading
	// must be closed with 1008 slow. 0 skips that check (the default 4096 takes more
	// traffic than a quick suite should send).
	SendQueueMessages int
	// SendQueueBytes is WS_SEND_QUEUE_BYTES. Default 4194304. The records of the
	// large-burst check are at most a quarter of it each, so the burst passes it in total.
	SendQueueBytes int
	// MaxRecordBytes is WS_MAX_RECORD_BYTES: a record value longer than this is announced
	// as skipped. Default 1048576. The broker must accept a record one byte longer
	// (Kafka's and kfake's default message.max.bytes, 1048588, does not: set a smaller
	// WS_MAX_RECORD_BYTES on the server and here).
	MaxRecordBytes int
	// MaxHeaderBytes is WS_MAX_HEADER_BYTES. Default 16384.
	MaxHeaderBytes int
	// HTTPIdleTimeout is WS_HTTP_IDLE_TIMEOUT; when set, an idle keep-alive connection
	// must be closed within it (plus 2 s). 0 skips that check (the default 30 s is too
	// long for a quick suite).
	HTTPIdleTimeout time.Duration
	// HTTPMaxConnsPerIP is WS_HTTP_MAX_CONNS_PER_IP; when set, one connection past that
	// many idle ones from the suite's address must be closed at accept. 0 skips that
	// check. Nothing else of this address may hold a plain HTTP connection meanwhile.
	HTTPMaxConnsPerIP int
	// Resume runs the checks of docs/PROTOCOL.md "Positions and resume" (positioned
	// subscribe, marks, resume by positions and by time, not-recovered reasons, their
	// errors). The out-of-retention check deletes, with DeleteRecords, the records of one
	// partition of Topic older than its own: run it against a test broker only.
	Resume bool
	// MarkInterval is WS_MARK_INTERVAL; when set (with Resume), positioned subscribers
	// must get marks past the records queued before them, and (with Conflate) none for a
	// topic subscribed at an interval. 0 skips those checks.
	MarkInterval time.Duration
	// HistoryRecords is WS_HISTORY_RECORDS: a resume whose replay fits in it must be
	// served from memory, one that does not from Kafka. Default 10000; negative means
	// the server's history is off (WS_HISTORY_RECORDS=0: every replay from Kafka). At 200
	// or less (or off) the check of a resume from Kafka runs too.
	HistoryRecords int
	// ResumeMaxAge is WS_RESUME_MAX_AGE: an older since_ts is refused. Default 1h.
	ResumeMaxAge time.Duration
	// Conflate runs the checks of docs/PROTOCOL.md "Conflation" (the subscribe's conflate,
	// its errors and echo, behind, at an interval, conflated resumes, and with MarkInterval
	// no marks at an interval). One floods Topic with twice SendQueueMessages (else the
	// server's default 4096) records of 1 KB, at least 6000, for a client that stops reading
	// for up to 1.5 s: WriteTimeout must be 2 s or more.
	Conflate bool
	// Auth is the server's auth settings; with Auth.Mode optional or required the auth
	// checks run (see AuthConfig).
	Auth AuthConfig
	// CheckTimeout bounds each check. Default 10s.
	CheckTimeout time.Duration
	// Only runs the checks whose names match this regular expression; empty runs all (with
	// Auth.Mode optional or required: the auth checks and the frame check).
	Only string
}

func (c *Config) setDefaults() {
	if c.Topic == "" {
		c.Topic = "trades"
	}
	if c.MaxSubscriptions == 0 {
		c.MaxSubscriptions = 100
	}
	if c.ReadLimit == 0 {
		c.ReadLimit = 4096
	}
	if c.RateLimit == 0 {
		c.RateLimit = 20
	}
	if c.RateBurst == 0 {
		c.RateBurst = 40
	}
	if c.BatchMaxBytes == 0 {
		c.BatchMaxBytes = 32768
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = 5 * time.Second
	}
	if c.CheckTimeout == 0 {
		c.CheckTimeout = 10 * time.Second
	}
	if c.SendQueueBytes == 0 {
		c.SendQueueBytes = 4 << 20
	}
	if c.MaxRecordBytes == 0 {
		c.MaxRecordBytes = 1 << 20
	}
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = 16384
	}
	if c.HistoryRecords == 0 {
		c.HistoryRecords = 10000
	}
	if c.ResumeMaxAge == 0 {
		c.ResumeMaxAge = time.Hour
	}
	c.Auth.setDefaults()
	if c.Only == "" && c.Auth.on() {
		// The other checks subscribe without a token.
		c.Only = "^auth: |^frames: "
	}
}

// Validate names the first setting that cannot work.
func (c *Config) Validate() error {
	u, err := url.Parse(c.URL)
	switch {
	case err != nil:
		return fmt.Errorf("--url %q: %w", c.URL, err)
	case u.Scheme != "ws" && u.Scheme != "wss":
		return fmt.Errorf("--url %q: scheme must be ws or wss", c.URL)
	case len(c.Brokers) == 0:
		return errors.New("--brokers: empty")
	case strings.ContainsAny(c.Topic, ":*\"\\ "):
		return fmt.Errorf("--topic %q: not usable in a channel name", c.Topic)
	case c.MaxSubscriptions < 2:
		return fmt.Errorf("--max-subscriptions %d: must be 2 or more", c.MaxSubscriptions)
	case c.ReadLimit < 256:
		return fmt.Errorf("--read-limit %d: must be 256 or more", c.ReadLimit)
	case c.RateLimit < 1 || c.RateBurst < 4:
		return fmt.Errorf("--rate-limit %v / --rate-burst %d: must be 1 and 4 or more", c.RateLimit, c.RateBurst)
	case c.MaxConnections < 0:
		return fmt.Errorf("--max-connections %d: must be 0 or more", c.MaxConnections)
	case c.PingInterval < 0 || c.WriteTimeout < 0:
		return fmt.Errorf("--ping-interval %v / --write-timeout %v: must not be negative", c.PingInterval, c.WriteTimeout)
	case c.SendQueueMessages < 0:
		return fmt.Errorf("--send-queue-messages %d: must be 0 or more", c.SendQueueMessages)
	case c.SendQueueMessages > 0 && c.WriteTimeout < 2*time.Second:
		// The slow check stops reading for 1.5 s (more than the servers' 1 s "not
		// draining" mark) and must resume before the server's write times out.
		return fmt.Errorf("--write-timeout %v: must be 2s or more with --send-queue-messages", c.WriteTimeout)
	case c.Conflate && c.WriteTimeout < 2*time.Second:
		// The behind check stops reading for up to 1.5 s, and must resume before the
		// server's write times out.
		return fmt.Errorf("--write-timeout %v: must be 2s or more with --conflate", c.WriteTimeout)
	case c.SendQueueBytes < 4096:
		return fmt.Errorf("--send-queue-bytes %d: must be 4096 or more", c.SendQueueBytes)
	case c.MaxRecordBytes < 64:
		return fmt.Errorf("--max-record-bytes %d: must be 64 or more", c.MaxRecordBytes)
	case c.MaxHeaderBytes < 1024:
		return fmt.Errorf("--max-header-bytes %d: must be 1024 or more", c.MaxHeaderBytes)
	case c.HTTPIdleTimeout < 0:
		return fmt.Errorf("--http-idle-timeout %v: must not be negative", c.HTTPIdleTimeout)
	case c.HTTPMaxConnsPerIP < 0:
		return fmt.Errorf("--http-max-conns-per-ip %d: must be 0 or more", c.HTTPMaxConnsPerIP)
	case c.MarkInterval < 0 || c.ResumeMaxAge < 0:
		return fmt.Errorf("--mark-interval %v / --resume-max-age %v: must not be negative", c.MarkInterval, c.ResumeMaxAge)
	}
	if _, err := regexp.Compile(c.Only); err != nil {
		return fmt.Errorf("--run %q: %w", c.Only, err)
	}
	return c.Auth.validate()
}

// Result is the outcome of one check.
type Result struct {
	Name   string
	Err    error
	Detail string
}

// Run parses args, runs the suite, prints a PASS/FAIL line per check and a final
// `conform: N passed, N failed` line, and fails when any check failed.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("conform", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg Config
	var brokers string
	fs.StringVar(&cfg.URL, "url", "ws://127.0.0.1:3002/ws", "WebSocket URL of the server under test")
	fs.StringVar(&brokers, "brokers", "127.0.0.1:9092", "comma-separated Kafka brokers the server consumes")
	fs.StringVar(&cfg.Topic, "topic", "trades", "topic the server consumes; the suite produces run-unique keys to it")
	fs.IntVar(&cfg.MaxSubscriptions, "max-subscriptions", 100, "the server's WS_MAX_SUBSCRIPTIONS")
	fs.IntVar(&cfg.ReadLimit, "read-limit", 4096, "the server's WS_READ_LIMIT in bytes")
	fs.Float64Var(&cfg.RateLimit, "rate-limit", 20, "the server's WS_RATE_LIMIT in messages/s")
	fs.IntVar(&cfg.RateBurst, "rate-burst", 40, "the server's WS_RATE_BURST")
	fs.IntVar(&cfg.BatchMaxBytes, "batch-max-bytes", 32768, "the server's WS_BATCH_MAX_BYTES")
	fs.BoolVar(&cfg.ExpectBatching, "expect-batching", true, "the server's WS_BATCH: expect several messages per frame under a burst")
	fs.IntVar(&cfg.MaxConnections, "max-connections", 0, "the server's WS_MAX_CONNECTIONS, to check 1013 over_capacity; 0 skips that check (nothing else may be connected)")
	fs.DurationVar(&cfg.PingInterval, "ping-interval", 0, "the server's WS_PING_INTERVAL, to check that silent clients are dropped; 0 skips that check")
	fs.DurationVar(&cfg.WriteTimeout, "write-timeout", 5*time.Second, "the server's WS_WRITE_TIMEOUT")
	fs.IntVar(&cfg.SendQueueMessages, "send-queue-messages", 0, "the server's WS_SEND_QUEUE_MESSAGES, to check 1008 slow; 0 skips that check (set it low on the server, but above the 400-message bursts of other checks; needs --write-timeout 2s or more)")
	fs.IntVar(&cfg.SendQueueBytes, "send-queue-bytes", 4<<20, "the server's WS_SEND_QUEUE_BYTES: the large-burst check sends records of at most a quarter of it")
	fs.IntVar(&cfg.MaxRecordBytes, "max-record-bytes", 1<<20, "the server's WS_MAX_RECORD_BYTES; the broker must accept a record one byte longer (a default broker does not: lower it on both)")
	fs.IntVar(&cfg.MaxHeaderBytes, "max-header-bytes", 16384, "the server's WS_MAX_HEADER_BYTES")
	fs.DurationVar(&cfg.HTTPIdleTimeout, "http-idle-timeout", 0, "the server's WS_HTTP_IDLE_TIMEOUT, to check that idle keep-alive connections are closed; 0 skips that check")
	fs.IntVar(&cfg.HTTPMaxConnsPerIP, "http-max-conns-per-ip", 0, "the server's WS_HTTP_MAX_CONNS_PER_IP, to check the per-address cap; 0 skips that check (nothing else of this address may hold a plain HTTP connection)")
	fs.BoolVar(&cfg.Resume, "resume", false, "run the checks of positions and resume (docs/PROTOCOL.md); one deletes old records of a partition of --topic with DeleteRecords: use a test broker")
	fs.DurationVar(&cfg.MarkInterval, "mark-interval", 0, "the server's WS_MARK_INTERVAL, to check marks (with --resume) and their absence at an interval (with --conflate); 0 skips those checks")
	fs.IntVar(&cfg.HistoryRecords, "history-records", 10000, "the server's WS_HISTORY_RECORDS (negative: history off); at 200 or less a resume from Kafka is checked too")
	fs.DurationVar(&cfg.ResumeMaxAge, "resume-max-age", time.Hour, "the server's WS_RESUME_MAX_AGE")
	fs.BoolVar(&cfg.Conflate, "conflate", false, "run the checks of conflation (docs/PROTOCOL.md); one floods --topic with 1 KB records, twice --send-queue-messages (the server's default 4096 when 0) and at least 6000; needs --write-timeout 2s or more")
	cfg.Auth.flags(fs)
	fs.DurationVar(&cfg.CheckTimeout, "check-timeout", 10*time.Second, "deadline of each check")
	fs.StringVar(&cfg.Only, "run", "", "only run checks whose names match this regular expression")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: loadtest conform [flags]")
		fmt.Fprintln(stderr, "\nChecks a running server against docs/PROTOCOL.md. Limits must match the server's")
		fmt.Fprintln(stderr, "settings (defaults are the README defaults). Exits non-zero when a check fails.")
		fmt.Fprintln(stderr)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	cfg.Brokers = splitComma(brokers)
	// go-metrics (used by sarama) starts a meter goroutine that never stops unless nil
	// metrics are chosen before the first client. The variable is process-wide; writing it
	// only when unset keeps concurrent callers (tests set it first) free of data races.
	if !metrics.UseNilMetrics {
		metrics.UseNilMetrics = true
	}
	results, err := RunSuite(ctx, cfg, stdout)
	if len(results) == 0 && err != nil {
		return err
	}
	var failed int
	for _, r := range results {
		if r.Err != nil {
			failed++
		}
	}
	fmt.Fprintf(stdout, "conform: %d passed, %d failed\n", len(results)-failed, failed)
	if err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d checks failed", failed, len(results))
	}
	return nil
}

// RunSuite runs every check in order, printing each result to out as it completes, and
// returns the results. It fails only when the suite cannot start at all.
func RunSuite(ctx context.Context, cfg Config, out io.Writer) ([]Result, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	only := regexp.MustCompile(cfg.Only)
	p, err := newProducer(cfg.Brokers, cfg.Topic, 0)
	if err != nil {
		return nil, err
	}
	defer p.close()
	s := &suite{cfg: cfg, prod: p, run: runID(), http: plainHTTPClient()}
	defer s.http.CloseIdleConnections()
	defer func() {
		if s.bigProd != nil {
			s.bigProd.close()
		}
	}()
	fmt.Fprintf(out, "conform: %s, topic %s, run %s\n", cfg.URL, cfg.Topic, s.run)

	var results []Result
	for _, c := range s.checks() {
		if !only.MatchString(c.name) {
			continue
		}
		r := s.runCheck(ctx, c)
		results = append(results, r)
		status := "PASS"
		detail := r.Detail
		if r.Err != nil {
			status = "FAIL"
			detail = r.Err.Error()
		}
		if detail != "" {
			fmt.Fprintf(out, "%s %s: %s\n", status, r.Name, detail)
		} else {
			fmt.Fprintf(out, "%s %s\n", status, r.Name)
		}
		if ctx.Err() != nil {
			return results, fmt.Errorf("interrupted: %w", ctx.Err())
		}
	}
	return results, nil
}

// check is one statement of the protocol put to the test.
type check struct {
	name string
	// run returns a short detail on success (may be empty) or the failure.
	run func(ctx context.Context, s *suite) (string, error)
	// budget, when set, is the least time the check needs; it extends CheckTimeout.
	budget func(Config) time.Duration
}

// suite is the state shared by the checks of one run.
type suite struct {
	cfg  Config
	prod *producer
	http *http.Client // plain requests and upgrades; no keep-alive
	// bigProd sends records above sarama's default cap, one at a time; nil until used.
	bigProd *producer
	run     string // unique per run; prefixes every key and channel the suite makes
	frames  frameStats
	seq     int
}

func (s *suite) runCheck(ctx context.Context, c check) (r Result) {
	r.Name = c.name
	timeout := s.cfg.CheckTimeout
	if c.budget != nil {
		timeout = max(timeout, c.budget(s.cfg))
	}
	cctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r.Detail, r.Err = c.run(cctx, s)
	return r
}

// pacer keeps one connection's requests below the server's rate limit: half the burst,
// then 80% of the rate.
func (s *suite) pacer() *rate.Limiter {
	return rate.NewLimiter(rate.Limit(s.cfg.RateLimit*0.8), max(1, s.cfg.RateBurst/2))
}

// key returns a record key unique to this run and call.
func (s *suite) key(what string) string {
	s.seq++
	return fmt.Sprintf("%s-%s-%d", s.run, what, s.seq)
}

// channel is the channel of a record with the given key on the suite's topic.
func (s *suite) channel(key string) string { return s.cfg.Topic + ":" + key }

func runID() string {
	b := make([]byte, 4)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return "cf" + hex.EncodeToString(b)
}
