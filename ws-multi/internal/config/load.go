// This file is part of package config, duplicated in ws-single on purpose; they may diverge.

package config

import (
	"errors"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"
)

// Error is a bad setting: the variable, the value it was given and why it is refused.
type Error struct {
	Var    string // e.g. "WS_READ_LIMIT"
	Value  string // the value as given (or as held in Config)
	Reason string // e.g. "not a whole number"
}

// Error formats as `config: WS_READ_LIMIT="abc": not a whole number`.
func (e *Error) Error() string {
	return "config: " + e.Var + "=" + strconv.Quote(e.Value) + ": " + e.Reason
}

// errReason lets a parser say why a value is refused; Load adds variable and value.
type errReason string

func (e errReason) Error() string { return string(e) }

// variable binds one environment variable to the Config field it sets.
type variable struct {
	name string
	set  func(c *Config, v string) error
}

// required reports the variables refused when set but empty (or only commas and
// spaces) instead of meaning the default: an unset compose or shell variable must
// not quietly point the server at the default brokers or topics.
func required(name string) bool {
	switch name {
	case "WS_KAFKA_BROKERS", "WS_KAFKA_TOPICS":
		return true
	}
	return false
}

// variables lists every setting in README order; Load walks it and the tests
// check it against README.md, so a variable cannot be added without a parser.
func variables() []variable {
	return []variable{
		{"WS_ADDR", func(c *Config, v string) error { c.Addr = v; return nil }},
		{"WS_KAFKA_BROKERS", func(c *Config, v string) error { c.KafkaBrokers = splitList(v); return nil }},
		{"WS_KAFKA_TOPICS", func(c *Config, v string) error { c.KafkaTopics = splitList(v); return nil }},
		{"WS_KAFKA_START_OFFSET", func(c *Config, v string) error { c.KafkaStartOffset = v; return nil }},
		{"WS_KAFKA_CLIENT_ID", func(c *Config, v string) error { c.KafkaClientID = v; return nil }},
		{"WS_KAFKA_RETRY_BACKOFF", durationVar(func(c *Config) *time.Duration { return &c.KafkaRetryBackoff })},
		{"WS_KAFKA_RETRY_BACKOFF_MAX", durationVar(func(c *Config) *time.Duration { return &c.KafkaRetryBackoffMax })},
		{"WS_MAX_CONNECTIONS", intVar(func(c *Config) *int { return &c.MaxConnections })},
		{"WS_MAX_SUBSCRIPTIONS", intVar(func(c *Config) *int { return &c.MaxSubscriptions })},
		{"WS_READ_LIMIT", func(c *Config, v string) error {
			n, err := parseInt(v)
			c.ReadLimit = int64(n)
			return err
		}},
		{"WS_HTTP_IDLE_TIMEOUT", durationVar(func(c *Config) *time.Duration { return &c.HTTPIdleTimeout })},
		{"WS_HTTP_MAX_CONNS_PER_IP", intVar(func(c *Config) *int { return &c.HTTPMaxConnsPerIP })},
		{"WS_MAX_HEADER_BYTES", intVar(func(c *Config) *int { return &c.MaxHeaderBytes })},
		{"WS_RATE_LIMIT", floatVar(func(c *Config) *float64 { return &c.RateLimit })},
		{"WS_RATE_BURST", intVar(func(c *Config) *int { return &c.RateBurst })},
		{"WS_SEND_QUEUE_MESSAGES", intVar(func(c *Config) *int { return &c.SendQueueMessages })},
		{"WS_SEND_QUEUE_BYTES", intVar(func(c *Config) *int { return &c.SendQueueBytes })},
		{"WS_WRITE_TIMEOUT", durationVar(func(c *Config) *time.Duration { return &c.WriteTimeout })},
		{"WS_PING_INTERVAL", durationVar(func(c *Config) *time.Duration { return &c.PingInterval })},
		{"WS_MAX_RECORD_BYTES", intVar(func(c *Config) *int { return &c.MaxRecordBytes })},
		{"WS_BATCH", func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return errReason("not a boolean (true or false)")
			}
			c.Batch = b
			return nil
		}},
		{"WS_BATCH_MAX_BYTES", intVar(func(c *Config) *int { return &c.BatchMaxBytes })},
		{"WS_CPU_REJECT_THRESHOLD", floatVar(func(c *Config) *float64 { return &c.CPURejectThreshold })},
		{"WS_ALLOWED_ORIGINS", func(c *Config, v string) error { c.AllowedOrigins = splitList(v); return nil }},
		{"WS_SHUTDOWN_TIMEOUT", durationVar(func(c *Config) *time.Duration { return &c.ShutdownTimeout })},
		{"WS_HISTORY_RECORDS", intVar(func(c *Config) *int { return &c.HistoryRecords })},
		{"WS_HISTORY_BYTES", intVar(func(c *Config) *int { return &c.HistoryBytes })},
		{"WS_HISTORY_MAX_AGE", durationVar(func(c *Config) *time.Duration { return &c.HistoryMaxAge })},
		{"WS_MARK_INTERVAL", durationVar(func(c *Config) *time.Duration { return &c.MarkInterval })},
		{"WS_RESUME_MAX_AGE", durationVar(func(c *Config) *time.Duration { return &c.ResumeMaxAge })},
		{"WS_RESUME_MAX_SCAN_RECORDS", intVar(func(c *Config) *int { return &c.ResumeMaxScanRecords })},
		{"WS_RESUME_MAX_SCAN_BYTES", intVar(func(c *Config) *int { return &c.ResumeMaxScanBytes })},
		{"WS_RESUME_READERS", intVar(func(c *Config) *int { return &c.ResumeReaders })},
		{"WS_RESUME_WAIT", durationVar(func(c *Config) *time.Duration { return &c.ResumeWait })},
		{"WS_RESUME_TIMEOUT", durationVar(func(c *Config) *time.Duration { return &c.ResumeTimeout })},
		{"WS_READY_MAX_LAG", intVar(func(c *Config) *int { return &c.ReadyMaxLag })},
		{"WS_DRAIN_RECONNECT_MAX", durationVar(func(c *Config) *time.Duration { return &c.DrainReconnectMax })},
		{"WS_AUTH", func(c *Config, v string) error { c.Auth = v; return nil }},
		{"WS_PUBLIC_CHANNELS", func(c *Config, v string) error { c.PublicChannels = splitList(v); return nil }},
		{"WS_AUTH_TIMEOUT", durationVar(func(c *Config) *time.Duration { return &c.AuthTimeout })},
		{"WS_AUTH_EXPIRY_GRACE", durationVar(func(c *Config) *time.Duration { return &c.AuthExpiryGrace })},
		{"WS_JWT_HMAC_SECRET", func(c *Config, v string) error { c.JWTHMACSecret = v; return nil }},
		{"WS_JWT_HMAC_SECRET_FILE", readSecretFile},
		{"WS_JWT_JWKS_URL", func(c *Config, v string) error { c.JWTJWKSURL = v; return nil }},
		{"WS_JWT_JWKS_REFRESH", durationVar(func(c *Config) *time.Duration { return &c.JWTJWKSRefresh })},
		{"WS_JWT_JWKS_TIMEOUT", durationVar(func(c *Config) *time.Duration { return &c.JWTJWKSTimeout })},
		{"WS_JWT_ISSUER", func(c *Config, v string) error { c.JWTIssuer = v; return nil }},
		{"WS_JWT_AUDIENCE", func(c *Config, v string) error { c.JWTAudience = v; return nil }},
		{"WS_JWT_ALGS", func(c *Config, v string) error { c.JWTAlgs = splitList(v); return nil }},
		{"WS_JWT_LEEWAY", durationVar(func(c *Config) *time.Duration { return &c.JWTLeeway })},
		{"WS_TLS_CERT_FILE", func(c *Config, v string) error { c.TLSCertFile = v; return nil }},
		{"WS_TLS_KEY_FILE", func(c *Config, v string) error { c.TLSKeyFile = v; return nil }},
		{"WS_LOG_FORMAT", func(c *Config, v string) error { c.LogFormat = v; return nil }},
		{"WS_LOG_LEVEL", func(c *Config, v string) error { c.LogLevel = v; return nil }},
		{"WS_SHARDS", intVar(func(c *Config) *int { return &c.Shards })},
	}
}

// Load reads every WS_* variable through lookup (os.LookupEnv in main), starting
// from Default, and returns Validate's verdict. Unset or empty variables keep
// their default, except the required ones (WS_KAFKA_BROKERS, WS_KAFKA_TOPICS):
// set but empty they are refused. The error lists every bad variable, each as an
// *Error.
func Load(lookup func(string) (string, bool)) (Config, error) {
	c := Default()
	var errs []error
	for _, v := range variables() {
		raw, ok := lookup(v.name)
		if !ok {
			continue
		}
		if required(v.name) && strings.Trim(raw, ", \t\r\n") == "" {
			errs = append(errs, &Error{Var: v.name, Value: raw, Reason: "must not be empty"})
			continue
		}
		if strings.TrimSpace(raw) == "" {
			continue
		}
		if err := v.set(&c, strings.TrimSpace(raw)); err != nil {
			errs = append(errs, &Error{Var: v.name, Value: shown(v.name, raw), Reason: err.Error()})
		}
	}
	// A field whose value did not parse keeps its default, so Validate adds no
	// second error for it; both kinds of mistake are reported in one run.
	return c, errors.Join(append(errs, c.Validate())...)
}

// secretVar is the variable whose value is never printed.
const secretVar = "WS_JWT_HMAC_SECRET"

// shown is a value as an error may print it: a secret only by its length.
func shown(name, value string) string {
	if name == secretVar {
		return hidden(value)
	}
	return value
}

// hidden stands for a secret in messages.
func hidden(secret string) string { return "(" + strconv.Itoa(len(secret)) + " bytes, hidden)" }

// maxSecretFile bounds WS_JWT_HMAC_SECRET_FILE: a secret, not a document.
const maxSecretFile = 4096

// readSecretFile reads WS_JWT_HMAC_SECRET_FILE into JWTHMACSecret, without its trailing
// newline (files made with echo or a Kubernetes Secret often end with one).
func readSecretFile(c *Config, path string) error {
	if c.JWTHMACSecret != "" {
		return errReason("set only one of WS_JWT_HMAC_SECRET and WS_JWT_HMAC_SECRET_FILE")
	}
	f, err := os.Open(path)
	if err != nil {
		return errReason("cannot read the file: " + err.Error())
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	switch {
	case err != nil:
		return errReason("cannot read the file: " + err.Error())
	case len(b) > maxSecretFile:
		return errReason("file is longer than " + strconv.Itoa(maxSecretFile) + " bytes")
	}
	c.JWTHMACSecretFile = path
	c.JWTHMACSecret = strings.TrimRight(string(b), "\r\n")
	return nil
}

// splitList splits a comma-separated list, trimming spaces around entries.
// Empty entries are kept so that Validate can refuse "a,,b".
func splitList(v string) []string {
	parts := strings.Split(v, ",")
	for i, p := range parts {
		parts[i] = strings.TrimSpace(p)
	}
	return parts
}

func parseInt(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, errReason("not a whole number")
	}
	return n, nil
}

func intVar(field func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := parseInt(v)
		if err != nil {
			return err
		}
		*field(c) = n
		return nil
	}
}

func floatVar(field func(*Config) *float64) func(*Config, string) error {
	return func(c *Config, v string) error {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
			return errReason("not a number")
		}
		*field(c) = f
		return nil
	}
}

func durationVar(field func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return errReason("not a duration (e.g. 500ms, 10s, 1m)")
		}
		*field(c) = d
		return nil
	}
}
