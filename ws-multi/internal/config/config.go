// This file is duplicated in ws-single (internal/config/config.go) on purpose; they may diverge.

// Package config loads the server's settings from WS_* environment variables
// (the table in README.md is the contract) and validates them.
//
// An empty variable counts as unset, so `WS_LOG_LEVEL=` in a compose file or a
// Kubernetes manifest means "the default", the same as leaving it out. Except
// WS_KAFKA_BROKERS and WS_KAFKA_TOPICS: set but empty (or only commas and spaces,
// an unset compose or shell variable) they are refused.
package config

import (
	"time"
)

// Variant is the name of this server variant; it is the default Kafka client id.
const Variant = "ws-multi"

// Config holds every setting of the server, one field per README variable, in
// README order. The zero value is not useful: start from Default or Load.
type Config struct {
	// Addr is the HTTP listen address (WS_ADDR). Default ":3002".
	Addr string
	// KafkaBrokers are the bootstrap brokers, host:port (WS_KAFKA_BROKERS).
	// Default ["127.0.0.1:9092"].
	KafkaBrokers []string
	// KafkaTopics are the topics whose every partition is consumed (WS_KAFKA_TOPICS).
	// Default ["trades", "tickers"].
	KafkaTopics []string
	// KafkaStartOffset is "newest" or "oldest": where consumption starts and where
	// it resumes when an offset is out of range (WS_KAFKA_START_OFFSET). Default "newest".
	KafkaStartOffset string
	// KafkaClientID is the Kafka client id (WS_KAFKA_CLIENT_ID). Default "ws-multi".
	KafkaClientID string
	// KafkaRetryBackoff is the first delay before reconnecting to Kafka; it doubles
	// per failure (WS_KAFKA_RETRY_BACKOFF). Default 500ms.
	KafkaRetryBackoff time.Duration
	// KafkaRetryBackoffMax is the longest delay between reconnect attempts
	// (WS_KAFKA_RETRY_BACKOFF_MAX). Default 10s; never below KafkaRetryBackoff.
	KafkaRetryBackoffMax time.Duration
	// MaxConnections is the connection limit; 0 derives it from the cgroup memory
	// limit and the open-file limit (WS_MAX_CONNECTIONS). Default 0 (auto), connections.
	MaxConnections int
	// MaxSubscriptions is how many channels one client may subscribe to
	// (WS_MAX_SUBSCRIPTIONS). Default 100, channels.
	MaxSubscriptions int
	// ReadLimit is the largest client frame; larger closes with 1009
	// (WS_READ_LIMIT). Default 4096, bytes.
	ReadLimit int64
	// HTTPIdleTimeout closes an HTTP keep-alive connection idle this long; WebSocket
	// connections are not affected (WS_HTTP_IDLE_TIMEOUT). Default 30s.
	HTTPIdleTimeout time.Duration
	// HTTPMaxConnsPerIP caps the connections from one source address that have not
	// upgraded to WebSocket; more are closed at accept. 0 means no cap
	// (WS_HTTP_MAX_CONNS_PER_IP). Default 128, connections.
	HTTPMaxConnsPerIP int
	// MaxHeaderBytes is the largest request header block; larger is answered 431
	// (WS_MAX_HEADER_BYTES). Default 16384, bytes; at least 1024.
	MaxHeaderBytes int
	// RateLimit is the client messages allowed per second, WebSocket pings included;
	// more closes with 1008 (WS_RATE_LIMIT). Default 20, messages per second.
	RateLimit float64
	// RateBurst is the client messages allowed in a burst (WS_RATE_BURST). Default 40, messages.
	RateBurst int
	// SendQueueMessages is how many messages may wait for one client past which it
	// is cut as slow unless it is draining them (WS_SEND_QUEUE_MESSAGES). Default
	// 4096, messages.
	SendQueueMessages int
	// SendQueueBytes is how many bytes may wait for one client past which it is cut
	// as slow unless it is draining them; it also bounds the control frames waiting
	// for its socket (WS_SEND_QUEUE_BYTES). Default 4194304, bytes.
	SendQueueBytes int
	// WriteTimeout bounds one socket write or ping reply, and the arrival of a client
	// frame's payload after its header (WS_WRITE_TIMEOUT). Default 5s.
	WriteTimeout time.Duration
	// PingInterval is the server ping period (WS_PING_INTERVAL). Default 25s; at least 1s.
	PingInterval time.Duration
	// MaxRecordBytes is the largest Kafka record value delivered; a larger record
	// is announced to its subscribers as skipped (WS_MAX_RECORD_BYTES). Default
	// 1048576, bytes.
	MaxRecordBytes int
	// Batch sends waiting messages in one frame, one per line (WS_BATCH). Default true.
	Batch bool
	// BatchMaxBytes is the largest batched frame (WS_BATCH_MAX_BYTES). Default 32768, bytes.
	BatchMaxBytes int
	// CPURejectThreshold is the percentage of the CPU limit above which new upgrades
	// get 503 + Retry-After; 0 disables (WS_CPU_REJECT_THRESHOLD). Default 90, percent (0..100).
	CPURejectThreshold float64
	// AllowedOrigins are origin host patterns ("example.com", "*.example.com")
	// allowed cross-origin (WS_ALLOWED_ORIGINS). Default none.
	AllowedOrigins []string
	// ShutdownTimeout is how long SIGTERM waits for clients to close with 1001
	// (WS_SHUTDOWN_TIMEOUT). Default 15s.
	ShutdownTimeout time.Duration
	// HistoryRecords is how many recent records per partition the in-memory history
	// keeps for resumes; 0 turns it off (WS_HISTORY_RECORDS). Default 10000, records.
	HistoryRecords int
	// HistoryBytes bounds one partition's history, in wire bytes (WS_HISTORY_BYTES).
	// Default 8388608, bytes.
	HistoryBytes int
	// HistoryMaxAge drops history records older than this; 0 means no age bound
	// (WS_HISTORY_MAX_AGE). Default 10m.
	HistoryMaxAge time.Duration
	// MarkInterval is how often positioned subscribers get a mark of their topics'
	// positions (WS_MARK_INTERVAL). Default 2s.
	MarkInterval time.Duration
	// ResumeMaxAge is the oldest since_ts a time replay may ask for (WS_RESUME_MAX_AGE).
	// Default 1h.
	ResumeMaxAge time.Duration
	// ResumeMaxScanRecords bounds the Kafka records one resume may scan
	// (WS_RESUME_MAX_SCAN_RECORDS). Default 100000, records.
	ResumeMaxScanRecords int
	// ResumeMaxScanBytes bounds the Kafka record bytes one resume may scan
	// (WS_RESUME_MAX_SCAN_BYTES). Default 67108864, bytes.
	ResumeMaxScanBytes int
	// ResumeReaders is how many Kafka catch-up readers may run at once
	// (WS_RESUME_READERS). Default 16, readers.
	ResumeReaders int
	// ResumeWait is how long a resume waits for a free catch-up reader before it is
	// answered busy (WS_RESUME_WAIT). Default 2s.
	ResumeWait time.Duration
	// ResumeTimeout bounds one Kafka catch-up (WS_RESUME_TIMEOUT). Default 10s.
	ResumeTimeout time.Duration
	// ReadyMaxLag is the consumer lag, in records summed over partitions, past which
	// /readyz answers 503; 0 means no bound (WS_READY_MAX_LAG). Default 100000, records.
	ReadyMaxLag int
	// DrainReconnectMax is the longest reconnect delay a drain hands out; each client
	// gets a random one up to it (WS_DRAIN_RECONNECT_MAX). Default 5s.
	DrainReconnectMax time.Duration
	// Auth is "off", "optional" or "required": whether clients present a token and what they
	// may do without one (WS_AUTH; docs/PROTOCOL.md, Authentication). Default "off".
	Auth string
	// PublicChannels are the channel patterns anyone may subscribe to when auth is on
	// (WS_PUBLIC_CHANNELS). Default none.
	PublicChannels []string
	// AuthTimeout is how long a connection may stay without a valid token when auth is
	// required (WS_AUTH_TIMEOUT). Default 5s.
	AuthTimeout time.Duration
	// AuthExpiryGrace is how long past its token's exp a connection stays open for a refresh
	// (WS_AUTH_EXPIRY_GRACE). Default 30s.
	AuthExpiryGrace time.Duration
	// JWTHMACSecret verifies HS* tokens (WS_JWT_HMAC_SECRET, or the content of
	// WS_JWT_HMAC_SECRET_FILE). Default none. Never printed.
	JWTHMACSecret string
	// JWTHMACSecretFile is the file JWTHMACSecret was read from (WS_JWT_HMAC_SECRET_FILE).
	JWTHMACSecretFile string
	// JWTJWKSURL is the JWK Set that verifies RS*, PS*, ES* and EdDSA tokens
	// (WS_JWT_JWKS_URL). Default none.
	JWTJWKSURL string
	// JWTJWKSRefresh is how often the JWK Set is refetched (WS_JWT_JWKS_REFRESH). Default 1h.
	JWTJWKSRefresh time.Duration
	// JWTJWKSTimeout bounds a fetch of the JWK Set and a verification's wait for it
	// (WS_JWT_JWKS_TIMEOUT). Default 2s.
	JWTJWKSTimeout time.Duration
	// JWTIssuer is the required iss (WS_JWT_ISSUER). Default none; needed when auth is on.
	JWTIssuer string
	// JWTAudience must be one of a token's aud (WS_JWT_AUDIENCE). Default none; needed when
	// auth is on.
	JWTAudience string
	// JWTAlgs are the accepted token algorithms (WS_JWT_ALGS). Default: HS256 with a secret,
	// RS256 and ES256 with a JWK Set.
	JWTAlgs []string
	// JWTLeeway is the clock skew allowed on exp, nbf and iat (WS_JWT_LEEWAY). Default 30s.
	JWTLeeway time.Duration
	// TLSCertFile and TLSKeyFile make the port serve TLS only; both or neither
	// (WS_TLS_CERT_FILE, WS_TLS_KEY_FILE). Re-read when they change. Default none.
	TLSCertFile string
	TLSKeyFile  string
	// LogFormat is "json" or "console" (WS_LOG_FORMAT). Default "json".
	LogFormat string
	// LogLevel is "debug", "info", "warn" or "error" (WS_LOG_LEVEL). Default "info".
	LogLevel string
	// Shards is the number of hub shards; 0 means one per GOMAXPROCS (WS_SHARDS).
	// Default 0, shards (0..MaxShards).
	Shards int
}

// MaxShards bounds WS_SHARDS: a shard is a goroutine fanning out on one core, so
// far more shards than cores only adds queues.
const MaxShards = 1024

// Default returns the documented defaults of README.md.
func Default() Config {
	return Config{
		Addr:                 ":3002",
		KafkaBrokers:         []string{"127.0.0.1:9092"},
		KafkaTopics:          []string{"trades", "tickers"},
		KafkaStartOffset:     StartNewest,
		KafkaClientID:        Variant,
		KafkaRetryBackoff:    500 * time.Millisecond,
		KafkaRetryBackoffMax: 10 * time.Second,
		MaxConnections:       0,
		MaxSubscriptions:     100,
		ReadLimit:            4096,
		HTTPIdleTimeout:      30 * time.Second,
		HTTPMaxConnsPerIP:    128,
		MaxHeaderBytes:       16384,
		RateLimit:            20,
		RateBurst:            40,
		SendQueueMessages:    4096,
		SendQueueBytes:       4 << 20,
		WriteTimeout:         5 * time.Second,
		PingInterval:         25 * time.Second,
		MaxRecordBytes:       1 << 20,
		Batch:                true,
		BatchMaxBytes:        32768,
		CPURejectThreshold:   90,
		AllowedOrigins:       nil,
		ShutdownTimeout:      15 * time.Second,
		HistoryRecords:       10000,
		HistoryBytes:         8 << 20,
		HistoryMaxAge:        10 * time.Minute,
		MarkInterval:         2 * time.Second,
		ResumeMaxAge:         time.Hour,
		ResumeMaxScanRecords: 100000,
		ResumeMaxScanBytes:   64 << 20,
		ResumeReaders:        16,
		ResumeWait:           2 * time.Second,
		ResumeTimeout:        10 * time.Second,
		ReadyMaxLag:          100000,
		DrainReconnectMax:    5 * time.Second,
		Auth:                 AuthOff,
		AuthTimeout:          5 * time.Second,
		AuthExpiryGrace:      30 * time.Second,
		JWTJWKSRefresh:       time.Hour,
		JWTJWKSTimeout:       2 * time.Second,
		JWTLeeway:            30 * time.Second,
		LogFormat:            "json",
		LogLevel:             "info",
		Shards:               0,
	}
}

// Modes of WS_AUTH.
const (
	AuthOff      = "off"
	AuthOptional = "optional"
	AuthRequired = "required"
)

// Start offsets accepted by WS_KAFKA_START_OFFSET.
const (
	StartNewest = "newest"
	StartOldest = "oldest"
)
