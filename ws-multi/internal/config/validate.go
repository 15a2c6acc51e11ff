// This file is part of package config, duplicated in ws-single on purpose; they may diverge.

package config

import (
	"crypto/tls"
	"errors"
	"net"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/adred-codev/ws_poc/ws-multi/internal/auth"
)

// Lower bounds of settings whose smaller values make no sense: a header block
// must hold a WebSocket handshake, and pings faster than once a second are load.
const (
	MinHeaderBytes  = 1024
	MinPingInterval = time.Second
)

// Validate checks every field's range and returns one *Error per bad setting
// (joined with errors.Join), each naming the environment variable.
func (c Config) Validate() error {
	var errs []error
	bad := func(name, value, reason string) {
		errs = append(errs, &Error{Var: name, Value: value, Reason: reason})
	}
	positiveInt := func(name string, n int64) {
		if n < 1 {
			bad(name, strconv.FormatInt(n, 10), "must be at least 1")
		}
	}
	positiveDuration := func(name string, d time.Duration) {
		if d <= 0 {
			bad(name, d.String(), "must be longer than 0")
		}
	}

	if reason := checkHostPort(c.Addr, true); reason != "" {
		bad("WS_ADDR", c.Addr, reason)
	}
	if reason := checkList(c.KafkaBrokers, func(b string) string { return checkHostPort(b, false) }); reason != "" {
		bad("WS_KAFKA_BROKERS", strings.Join(c.KafkaBrokers, ","), reason)
	}
	if reason := checkList(c.KafkaTopics, checkTopic); reason != "" {
		bad("WS_KAFKA_TOPICS", strings.Join(c.KafkaTopics, ","), reason)
	} else if dup := firstDuplicate(c.KafkaTopics); dup != "" {
		bad("WS_KAFKA_TOPICS", strings.Join(c.KafkaTopics, ","), "topic "+strconv.Quote(dup)+" listed twice")
	}
	if c.KafkaStartOffset != StartNewest && c.KafkaStartOffset != StartOldest {
		bad("WS_KAFKA_START_OFFSET", c.KafkaStartOffset, "must be newest or oldest")
	}
	if c.KafkaClientID == "" {
		bad("WS_KAFKA_CLIENT_ID", c.KafkaClientID, "must not be empty")
	}
	positiveDuration("WS_KAFKA_RETRY_BACKOFF", c.KafkaRetryBackoff)
	positiveDuration("WS_KAFKA_RETRY_BACKOFF_MAX", c.KafkaRetryBackoffMax)
	if c.KafkaRetryBackoff > 0 && c.KafkaRetryBackoffMax > 0 && c.KafkaRetryBackoffMax < c.KafkaRetryBackoff {
		bad("WS_KAFKA_RETRY_BACKOFF_MAX", c.KafkaRetryBackoffMax.String(),
			"must not be shorter than WS_KAFKA_RETRY_BACKOFF ("+c.KafkaRetryBackoff.String()+")")
	}
	if c.MaxConnections < 0 {
		bad("WS_MAX_CONNECTIONS", strconv.Itoa(c.MaxConnections), "must be 0 (auto) or more")
	}
	positiveInt("WS_MAX_SUBSCRIPTIONS", int64(c.MaxSubscriptions))
	positiveInt("WS_READ_LIMIT", c.ReadLimit)
	positiveDuration("WS_HTTP_IDLE_TIMEOUT", c.HTTPIdleTimeout)
	if c.HTTPMaxConnsPerIP < 0 {
		bad("WS_HTTP_MAX_CONNS_PER_IP", strconv.Itoa(c.HTTPMaxConnsPerIP), "must be 0 (no cap) or more")
	}
	if c.MaxHeaderBytes < MinHeaderBytes {
		bad("WS_MAX_HEADER_BYTES", strconv.Itoa(c.MaxHeaderBytes), "must be at least "+strconv.Itoa(MinHeaderBytes))
	}
	if !(c.RateLimit > 0) {
		bad("WS_RATE_LIMIT", formatFloat(c.RateLimit), "must be more than 0")
	}
	positiveInt("WS_RATE_BURST", int64(c.RateBurst))
	positiveInt("WS_SEND_QUEUE_MESSAGES", int64(c.SendQueueMessages))
	positiveInt("WS_SEND_QUEUE_BYTES", int64(c.SendQueueBytes))
	positiveDuration("WS_WRITE_TIMEOUT", c.WriteTimeout)
	if c.PingInterval < MinPingInterval {
		bad("WS_PING_INTERVAL", c.PingInterval.String(), "must be at least "+MinPingInterval.String())
	}
	positiveInt("WS_MAX_RECORD_BYTES", int64(c.MaxRecordBytes))
	positiveInt("WS_BATCH_MAX_BYTES", int64(c.BatchMaxBytes))
	if !(c.CPURejectThreshold >= 0 && c.CPURejectThreshold <= 100) {
		bad("WS_CPU_REJECT_THRESHOLD", formatFloat(c.CPURejectThreshold), "must be a percentage from 0 (disabled) to 100")
	}
	if len(c.AllowedOrigins) > 0 { // empty: only same-origin and no-Origin requests
		if reason := checkList(c.AllowedOrigins, checkOriginPattern); reason != "" {
			bad("WS_ALLOWED_ORIGINS", strings.Join(c.AllowedOrigins, ","), reason)
		}
	}
	positiveDuration("WS_SHUTDOWN_TIMEOUT", c.ShutdownTimeout)
	if c.HistoryRecords < 0 {
		bad("WS_HISTORY_RECORDS", strconv.Itoa(c.HistoryRecords), "must be 0 (off) or more")
	}
	positiveInt("WS_HISTORY_BYTES", int64(c.HistoryBytes))
	if c.HistoryMaxAge < 0 {
		bad("WS_HISTORY_MAX_AGE", c.HistoryMaxAge.String(), "must be 0 (no bound) or longer")
	}
	positiveDuration("WS_MARK_INTERVAL", c.MarkInterval)
	positiveDuration("WS_RESUME_MAX_AGE", c.ResumeMaxAge)
	positiveInt("WS_RESUME_MAX_SCAN_RECORDS", int64(c.ResumeMaxScanRecords))
	positiveInt("WS_RESUME_MAX_SCAN_BYTES", int64(c.ResumeMaxScanBytes))
	positiveInt("WS_RESUME_READERS", int64(c.ResumeReaders))
	positiveDuration("WS_RESUME_WAIT", c.ResumeWait)
	positiveDuration("WS_RESUME_TIMEOUT", c.ResumeTimeout)
	if c.ReadyMaxLag < 0 {
		bad("WS_READY_MAX_LAG", strconv.Itoa(c.ReadyMaxLag), "must be 0 (no bound) or more")
	}
	positiveDuration("WS_DRAIN_RECONNECT_MAX", c.DrainReconnectMax)
	errs = append(errs, c.validateAuth()...)
	errs = append(errs, c.validateTLS()...)
	if c.LogFormat != "json" && c.LogFormat != "console" {
		bad("WS_LOG_FORMAT", c.LogFormat, "must be json or console")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("WS_LOG_LEVEL", c.LogLevel, "must be debug, info, warn or error")
	}
	if c.Shards < 0 || c.Shards > MaxShards {
		bad("WS_SHARDS", strconv.Itoa(c.Shards), "must be 0 (one per GOMAXPROCS) to "+strconv.Itoa(MaxShards))
	}
	return errors.Join(errs...)
}

// MinSecretBytes is the shortest HMAC secret: HS256 wants a key of at least its hash size.
const MinSecretBytes = 32

// JWTAlgorithms are the accepted token algorithms: WS_JWT_ALGS, or by default HS256 when a
// secret is set plus RS256 and ES256 when a JWK Set is.
func (c Config) JWTAlgorithms() []string {
	if len(c.JWTAlgs) > 0 {
		return c.JWTAlgs
	}
	var algs []string
	if c.JWTHMACSecret != "" {
		algs = append(algs, "HS256")
	}
	if c.JWTJWKSURL != "" {
		algs = append(algs, "RS256", "ES256")
	}
	return algs
}

// validateAuth checks the WS_AUTH, WS_PUBLIC_CHANNELS and WS_JWT_* settings.
func (c Config) validateAuth() []error {
	var errs []error
	bad := func(name, value, reason string) {
		errs = append(errs, &Error{Var: name, Value: value, Reason: reason})
	}
	on := c.Auth == AuthOptional || c.Auth == AuthRequired
	if !on && c.Auth != AuthOff {
		bad("WS_AUTH", c.Auth, "must be off, optional or required")
	}
	if len(c.PublicChannels) > 0 {
		if reason := checkList(c.PublicChannels, checkPattern); reason != "" {
			bad("WS_PUBLIC_CHANNELS", strings.Join(c.PublicChannels, ","), reason)
		}
	}
	if c.AuthTimeout <= 0 {
		bad("WS_AUTH_TIMEOUT", c.AuthTimeout.String(), "must be longer than 0")
	}
	if c.AuthExpiryGrace < 0 {
		bad("WS_AUTH_EXPIRY_GRACE", c.AuthExpiryGrace.String(), "must be 0 or longer")
	}
	if c.JWTHMACSecret != "" && len(c.JWTHMACSecret) < MinSecretBytes {
		name := secretVar
		if c.JWTHMACSecretFile != "" {
			name += "_FILE"
		}
		bad(name, hidden(c.JWTHMACSecret), "must be at least "+strconv.Itoa(MinSecretBytes)+" bytes")
	}
	if c.JWTJWKSURL != "" {
		if u, err := url.Parse(c.JWTJWKSURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad("WS_JWT_JWKS_URL", c.JWTJWKSURL, "must be an http:// or https:// URL")
		}
	}
	if c.JWTJWKSRefresh <= 0 {
		bad("WS_JWT_JWKS_REFRESH", c.JWTJWKSRefresh.String(), "must be longer than 0")
	}
	if c.JWTJWKSTimeout <= 0 {
		bad("WS_JWT_JWKS_TIMEOUT", c.JWTJWKSTimeout.String(), "must be longer than 0")
	}
	if c.JWTLeeway < 0 {
		bad("WS_JWT_LEEWAY", c.JWTLeeway.String(), "must be 0 or longer")
	}
	for _, alg := range c.JWTAlgs {
		switch {
		case !slices.Contains(auth.Algs, alg):
			bad("WS_JWT_ALGS", strings.Join(c.JWTAlgs, ","), strconv.Quote(alg)+" is not one of "+strings.Join(auth.Algs, ", "))
		case auth.IsHMAC(alg) && c.JWTHMACSecret == "":
			bad("WS_JWT_ALGS", strings.Join(c.JWTAlgs, ","), alg+" needs WS_JWT_HMAC_SECRET or WS_JWT_HMAC_SECRET_FILE")
		case !auth.IsHMAC(alg) && c.JWTJWKSURL == "":
			bad("WS_JWT_ALGS", strings.Join(c.JWTAlgs, ","), alg+" needs WS_JWT_JWKS_URL")
		default:
			continue
		}
		break
	}
	if !on {
		return errs
	}
	if c.JWTHMACSecret == "" && c.JWTJWKSURL == "" {
		bad("WS_AUTH", c.Auth, "needs WS_JWT_HMAC_SECRET, WS_JWT_HMAC_SECRET_FILE or WS_JWT_JWKS_URL")
	}
	if c.JWTIssuer == "" {
		bad("WS_JWT_ISSUER", "", "must be set when WS_AUTH is "+c.Auth)
	}
	if c.JWTAudience == "" {
		bad("WS_JWT_AUDIENCE", "", "must be set when WS_AUTH is "+c.Auth)
	}
	return errs
}

// validateTLS checks that the certificate and key are given together and load as a pair.
func (c Config) validateTLS() []error {
	switch {
	case c.TLSCertFile == "" && c.TLSKeyFile == "":
		return nil
	case c.TLSCertFile == "":
		return []error{&Error{Var: "WS_TLS_CERT_FILE", Reason: "must be set with WS_TLS_KEY_FILE"}}
	case c.TLSKeyFile == "":
		return []error{&Error{Var: "WS_TLS_KEY_FILE", Reason: "must be set with WS_TLS_CERT_FILE"}}
	}
	if _, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile); err != nil {
		return []error{&Error{Var: "WS_TLS_CERT_FILE", Value: c.TLSCertFile, Reason: "with WS_TLS_KEY_FILE: " + err.Error()}}
	}
	return nil
}

// checkPattern accepts a channel permission pattern (auth.ParsePatterns).
func checkPattern(p string) string {
	if _, err := auth.ParsePatterns([]string{p}); err != nil {
		return err.Error()
	}
	return ""
}

// checkList returns why a list is refused: empty, an empty entry, or the first
// entry check refuses.
func checkList(list []string, check func(string) string) string {
	if len(list) == 0 {
		return "must not be empty"
	}
	for _, e := range list {
		if e == "" {
			return "empty entry in the comma-separated list"
		}
		if reason := check(e); reason != "" {
			return strconv.Quote(e) + ": " + reason
		}
	}
	return ""
}

// checkHostPort accepts host:port; a listen address may leave the host empty
// (all interfaces) and use port 0 (any free port, handy in tests).
func checkHostPort(v string, listen bool) string {
	host, port, err := net.SplitHostPort(v)
	if err != nil {
		return "not host:port"
	}
	if host == "" && !listen {
		return "host is empty"
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 || (p == 0 && !listen) {
		return "port must be a number from 1 to 65535"
	}
	return ""
}

// checkTopic applies Kafka's own topic-name rule: 1 to 249 of [a-zA-Z0-9._-].
// It also keeps ':' out, which channel names rely on to find the topic.
func checkTopic(t string) string {
	if len(t) > 249 {
		return "longer than 249 characters"
	}
	if t == "." || t == ".." {
		return "not a valid Kafka topic name"
	}
	for _, r := range t {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-'
		if !ok {
			return "Kafka topic names hold only letters, digits, '.', '_' and '-'"
		}
	}
	return ""
}

// checkOriginPattern accepts what coder/websocket's AcceptOptions.OriginPatterns
// matches against the Origin host with path.Match: a host pattern, not a URL.
func checkOriginPattern(p string) string {
	if strings.Contains(p, "://") || strings.Contains(p, "/") {
		return "a host pattern (example.com, *.example.com), not a URL"
	}
	if _, err := path.Match(p, ""); err != nil {
		return "bad pattern syntax"
	}
	return ""
}

func firstDuplicate(list []string) string {
	seen := make(map[string]bool, len(list))
	for _, e := range list {
		if seen[e] {
			return e
		}
		seen[e] = true
	}
	return ""
}

func formatFloat(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }
