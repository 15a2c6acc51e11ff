// This file is part of package config, duplicated in ws-single on purpose; they may diverge.

package config

import (
	"errors"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestDefaultIsValid(t *testing.T) {
	t.Parallel()
	if err := Default().Validate(); err != nil {
		t.Fatalf("Default().Validate() = %v", err)
	}
	got, err := Load(env(nil))
	if err != nil {
		t.Fatalf("Load(empty env) error = %v", err)
	}
	if !reflect.DeepEqual(got, Default()) {
		t.Fatalf("Load(empty env) = %+v, want Default() %+v", got, Default())
	}
}

// TestDefaultsMatchREADME keeps Default() and the README table in step: every
// variable of the table has a parser here, in the same order, and its documented
// default parses to exactly the value Default() holds.
func TestDefaultsMatchREADME(t *testing.T) {
	t.Parallel()
	rows := readmeVariables(t)
	var names []string
	for _, r := range rows {
		names = append(names, r.name)
	}
	var ours []string
	for _, v := range variables() {
		ours = append(ours, v.name)
	}
	if !reflect.DeepEqual(names, ours) {
		t.Fatalf("README variables = %v\nparsed variables = %v", names, ours)
	}
	for _, r := range rows {
		if r.def == "" {
			continue // documented as empty or auto: covered by the table tests
		}
		c, err := Load(env(map[string]string{r.name: r.def}))
		if err != nil {
			t.Errorf("%s=%q (README default): %v", r.name, r.def, err)
			continue
		}
		if !reflect.DeepEqual(c, Default()) {
			t.Errorf("%s=%q (README default) gives %+v, want Default() %+v", r.name, r.def, c, Default())
		}
	}
}

type readmeRow struct{ name, def string }

// readmeVariables reads the configuration table of the repository README; the
// default is the first back-quoted value of the default column, "" for "empty".
func readmeVariables(t *testing.T) []readmeRow {
	t.Helper()
	b, err := os.ReadFile("../../../README.md")
	if err != nil {
		t.Fatalf("read README: %v", err)
	}
	row := regexp.MustCompile("(?m)^\\| `(WS_[A-Z_]+)` \\| ([^|]*) \\|(.*)$")
	var rows []readmeRow
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		if strings.Contains(m[3], "ws-multi only") && Variant != "ws-multi" {
			continue
		}
		def := ""
		if d := regexp.MustCompile("`([^`]*)`").FindStringSubmatch(m[2]); d != nil {
			def = d[1]
		}
		if m[1] == "WS_KAFKA_CLIENT_ID" {
			def = Variant // the README gives one default per variant
		}
		if def == "0" && strings.Contains(m[2], "(") {
			def = "" // "0 (auto)": not a plain value
		}
		rows = append(rows, readmeRow{m[1], def})
	}
	if len(rows) == 0 {
		t.Fatal("no WS_ variables found in README")
	}
	return rows
}

func TestLoad(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		env     map[string]string
		want    func(c *Config) // applied to Default(); nil when an error is expected
		wantErr string          // substring of the error
	}{
		{name: "WS_ADDR valid", env: map[string]string{"WS_ADDR": "127.0.0.1:0"}, want: func(c *Config) { c.Addr = "127.0.0.1:0" }},
		{name: "WS_ADDR no port", env: map[string]string{"WS_ADDR": "localhost"}, wantErr: `config: WS_ADDR="localhost": not host:port`},
		{name: "WS_ADDR bad port", env: map[string]string{"WS_ADDR": ":99999"}, wantErr: `WS_ADDR=":99999"`},

		{name: "WS_KAFKA_BROKERS valid list", env: map[string]string{"WS_KAFKA_BROKERS": "a:9092, b:9093"}, want: func(c *Config) { c.KafkaBrokers = []string{"a:9092", "b:9093"} }},
		{name: "WS_KAFKA_BROKERS empty entry", env: map[string]string{"WS_KAFKA_BROKERS": "a:9092,,b:9092"}, wantErr: `WS_KAFKA_BROKERS="a:9092,,b:9092": empty entry`},
		{name: "WS_KAFKA_BROKERS no port", env: map[string]string{"WS_KAFKA_BROKERS": "kafka"}, wantErr: `WS_KAFKA_BROKERS="kafka": "kafka": not host:port`},
		{name: "WS_KAFKA_BROKERS no host", env: map[string]string{"WS_KAFKA_BROKERS": ":9092"}, wantErr: `host is empty`},
		{name: "WS_KAFKA_BROKERS set but empty", env: map[string]string{"WS_KAFKA_BROKERS": ""}, wantErr: `WS_KAFKA_BROKERS="": must not be empty`},
		{name: "WS_KAFKA_BROKERS blank", env: map[string]string{"WS_KAFKA_BROKERS": "  "}, wantErr: `WS_KAFKA_BROKERS="  ": must not be empty`},
		{name: "WS_KAFKA_BROKERS only commas", env: map[string]string{"WS_KAFKA_BROKERS": " , ,"}, wantErr: `WS_KAFKA_BROKERS=" , ,": must not be empty`},

		{name: "WS_KAFKA_TOPICS valid", env: map[string]string{"WS_KAFKA_TOPICS": "md.trades,book_l2"}, want: func(c *Config) { c.KafkaTopics = []string{"md.trades", "book_l2"} }},
		{name: "WS_KAFKA_TOPICS colon", env: map[string]string{"WS_KAFKA_TOPICS": "a:b"}, wantErr: `WS_KAFKA_TOPICS="a:b"`},
		{name: "WS_KAFKA_TOPICS duplicate", env: map[string]string{"WS_KAFKA_TOPICS": "a,b,a"}, wantErr: `topic "a" listed twice`},
		{name: "WS_KAFKA_TOPICS too long", env: map[string]string{"WS_KAFKA_TOPICS": strings.Repeat("t", 250)}, wantErr: "longer than 249"},
		{name: "WS_KAFKA_TOPICS set but empty", env: map[string]string{"WS_KAFKA_TOPICS": ""}, wantErr: `WS_KAFKA_TOPICS="": must not be empty`},
		{name: "WS_KAFKA_TOPICS only a comma", env: map[string]string{"WS_KAFKA_TOPICS": ","}, wantErr: `WS_KAFKA_TOPICS=",": must not be empty`},

		{name: "WS_KAFKA_START_OFFSET oldest", env: map[string]string{"WS_KAFKA_START_OFFSET": "oldest"}, want: func(c *Config) { c.KafkaStartOffset = StartOldest }},
		{name: "WS_KAFKA_START_OFFSET invalid", env: map[string]string{"WS_KAFKA_START_OFFSET": "latest"}, wantErr: `WS_KAFKA_START_OFFSET="latest": must be newest or oldest`},

		{name: "WS_KAFKA_CLIENT_ID valid", env: map[string]string{"WS_KAFKA_CLIENT_ID": "edge-7"}, want: func(c *Config) { c.KafkaClientID = "edge-7" }},
		{name: "WS_KAFKA_CLIENT_ID blank means default", env: map[string]string{"WS_KAFKA_CLIENT_ID": "  "}, want: func(c *Config) {}},
		{name: "WS_ALLOWED_ORIGINS empty means default", env: map[string]string{"WS_ALLOWED_ORIGINS": ""}, want: func(c *Config) {}},

		{name: "WS_KAFKA_RETRY_BACKOFF valid", env: map[string]string{"WS_KAFKA_RETRY_BACKOFF": "1s"}, want: func(c *Config) { c.KafkaRetryBackoff = time.Second }},
		{name: "WS_KAFKA_RETRY_BACKOFF not a duration", env: map[string]string{"WS_KAFKA_RETRY_BACKOFF": "500"}, wantErr: `WS_KAFKA_RETRY_BACKOFF="500": not a duration`},
		{name: "WS_KAFKA_RETRY_BACKOFF zero", env: map[string]string{"WS_KAFKA_RETRY_BACKOFF": "0s"}, wantErr: `WS_KAFKA_RETRY_BACKOFF="0s": must be longer than 0`},
		{name: "WS_KAFKA_RETRY_BACKOFF above max", env: map[string]string{"WS_KAFKA_RETRY_BACKOFF": "20s"}, wantErr: `WS_KAFKA_RETRY_BACKOFF_MAX="10s": must not be shorter than WS_KAFKA_RETRY_BACKOFF (20s)`},

		{name: "WS_KAFKA_RETRY_BACKOFF_MAX valid", env: map[string]string{"WS_KAFKA_RETRY_BACKOFF_MAX": "1m"}, want: func(c *Config) { c.KafkaRetryBackoffMax = time.Minute }},
		{name: "WS_KAFKA_RETRY_BACKOFF_MAX equal to backoff", env: map[string]string{"WS_KAFKA_RETRY_BACKOFF_MAX": "500ms"}, want: func(c *Config) { c.KafkaRetryBackoffMax = 500 * time.Millisecond }},
		{name: "WS_KAFKA_RETRY_BACKOFF_MAX below backoff", env: map[string]string{"WS_KAFKA_RETRY_BACKOFF_MAX": "100ms"}, wantErr: `WS_KAFKA_RETRY_BACKOFF_MAX="100ms"`},
		{name: "WS_KAFKA_RETRY_BACKOFF_MAX negative", env: map[string]string{"WS_KAFKA_RETRY_BACKOFF_MAX": "-1s"}, wantErr: `WS_KAFKA_RETRY_BACKOFF_MAX="-1s": must be longer than 0`},

		{name: "WS_MAX_CONNECTIONS valid", env: map[string]string{"WS_MAX_CONNECTIONS": "5000"}, want: func(c *Config) { c.MaxConnections = 5000 }},
		{name: "WS_MAX_CONNECTIONS auto", env: map[string]string{"WS_MAX_CONNECTIONS": "0"}, want: func(c *Config) {}},
		{name: "WS_MAX_CONNECTIONS negative", env: map[string]string{"WS_MAX_CONNECTIONS": "-1"}, wantErr: `WS_MAX_CONNECTIONS="-1": must be 0 (auto) or more`},
		{name: "WS_MAX_CONNECTIONS not a number", env: map[string]string{"WS_MAX_CONNECTIONS": "10k"}, wantErr: `WS_MAX_CONNECTIONS="10k": not a whole number`},

		{name: "WS_MAX_SUBSCRIPTIONS valid", env: map[string]string{"WS_MAX_SUBSCRIPTIONS": "1"}, want: func(c *Config) { c.MaxSubscriptions = 1 }},
		{name: "WS_MAX_SUBSCRIPTIONS zero", env: map[string]string{"WS_MAX_SUBSCRIPTIONS": "0"}, wantErr: `WS_MAX_SUBSCRIPTIONS="0": must be at least 1`},
		{name: "WS_MAX_SUBSCRIPTIONS float", env: map[string]string{"WS_MAX_SUBSCRIPTIONS": "1.5"}, wantErr: `not a whole number`},

		{name: "WS_READ_LIMIT valid", env: map[string]string{"WS_READ_LIMIT": "65536"}, want: func(c *Config) { c.ReadLimit = 65536 }},
		{name: "WS_READ_LIMIT not a number", env: map[string]string{"WS_READ_LIMIT": "abc"}, wantErr: `config: WS_READ_LIMIT="abc": not a whole number`},
		{name: "WS_READ_LIMIT zero", env: map[string]string{"WS_READ_LIMIT": "0"}, wantErr: `WS_READ_LIMIT="0": must be at least 1`},

		{name: "WS_HTTP_IDLE_TIMEOUT valid", env: map[string]string{"WS_HTTP_IDLE_TIMEOUT": "5s"}, want: func(c *Config) { c.HTTPIdleTimeout = 5 * time.Second }},
		{name: "WS_HTTP_IDLE_TIMEOUT zero", env: map[string]string{"WS_HTTP_IDLE_TIMEOUT": "0s"}, wantErr: `WS_HTTP_IDLE_TIMEOUT="0s": must be longer than 0`},
		{name: "WS_HTTP_IDLE_TIMEOUT not a duration", env: map[string]string{"WS_HTTP_IDLE_TIMEOUT": "30"}, wantErr: `WS_HTTP_IDLE_TIMEOUT="30": not a duration`},
		{name: "WS_HTTP_IDLE_TIMEOUT empty means default", env: map[string]string{"WS_HTTP_IDLE_TIMEOUT": ""}, want: func(c *Config) {}},

		{name: "WS_HTTP_MAX_CONNS_PER_IP valid", env: map[string]string{"WS_HTTP_MAX_CONNS_PER_IP": "4"}, want: func(c *Config) { c.HTTPMaxConnsPerIP = 4 }},
		{name: "WS_HTTP_MAX_CONNS_PER_IP no cap", env: map[string]string{"WS_HTTP_MAX_CONNS_PER_IP": "0"}, want: func(c *Config) { c.HTTPMaxConnsPerIP = 0 }},
		{name: "WS_HTTP_MAX_CONNS_PER_IP negative", env: map[string]string{"WS_HTTP_MAX_CONNS_PER_IP": "-1"}, wantErr: `WS_HTTP_MAX_CONNS_PER_IP="-1": must be 0 (no cap) or more`},
		{name: "WS_HTTP_MAX_CONNS_PER_IP not a number", env: map[string]string{"WS_HTTP_MAX_CONNS_PER_IP": "many"}, wantErr: `WS_HTTP_MAX_CONNS_PER_IP="many": not a whole number`},

		{name: "WS_MAX_HEADER_BYTES valid", env: map[string]string{"WS_MAX_HEADER_BYTES": "1024"}, want: func(c *Config) { c.MaxHeaderBytes = 1024 }},
		{name: "WS_MAX_HEADER_BYTES too small", env: map[string]string{"WS_MAX_HEADER_BYTES": "1023"}, wantErr: `WS_MAX_HEADER_BYTES="1023": must be at least 1024`},
		{name: "WS_MAX_HEADER_BYTES with unit", env: map[string]string{"WS_MAX_HEADER_BYTES": "16KiB"}, wantErr: `WS_MAX_HEADER_BYTES="16KiB": not a whole number`},

		{name: "WS_RATE_LIMIT fractional", env: map[string]string{"WS_RATE_LIMIT": "0.5"}, want: func(c *Config) { c.RateLimit = 0.5 }},
		{name: "WS_RATE_LIMIT zero", env: map[string]string{"WS_RATE_LIMIT": "0"}, wantErr: `WS_RATE_LIMIT="0": must be more than 0`},
		{name: "WS_RATE_LIMIT NaN", env: map[string]string{"WS_RATE_LIMIT": "NaN"}, wantErr: `WS_RATE_LIMIT="NaN": not a number`},
		{name: "WS_RATE_LIMIT text", env: map[string]string{"WS_RATE_LIMIT": "fast"}, wantErr: `not a number`},

		{name: "WS_RATE_BURST valid", env: map[string]string{"WS_RATE_BURST": "1"}, want: func(c *Config) { c.RateBurst = 1 }},
		{name: "WS_RATE_BURST zero", env: map[string]string{"WS_RATE_BURST": "0"}, wantErr: `WS_RATE_BURST="0": must be at least 1`},

		{name: "WS_SEND_QUEUE_MESSAGES valid", env: map[string]string{"WS_SEND_QUEUE_MESSAGES": "16"}, want: func(c *Config) { c.SendQueueMessages = 16 }},
		{name: "WS_SEND_QUEUE_MESSAGES negative", env: map[string]string{"WS_SEND_QUEUE_MESSAGES": "-5"}, wantErr: `WS_SEND_QUEUE_MESSAGES="-5": must be at least 1`},

		{name: "WS_SEND_QUEUE_BYTES valid", env: map[string]string{"WS_SEND_QUEUE_BYTES": "1024"}, want: func(c *Config) { c.SendQueueBytes = 1024 }},
		{name: "WS_SEND_QUEUE_BYTES with unit", env: map[string]string{"WS_SEND_QUEUE_BYTES": "4MiB"}, wantErr: `WS_SEND_QUEUE_BYTES="4MiB": not a whole number`},
		{name: "WS_SEND_QUEUE_BYTES zero", env: map[string]string{"WS_SEND_QUEUE_BYTES": "0"}, wantErr: `must be at least 1`},

		{name: "WS_WRITE_TIMEOUT valid", env: map[string]string{"WS_WRITE_TIMEOUT": "250ms"}, want: func(c *Config) { c.WriteTimeout = 250 * time.Millisecond }},
		{name: "WS_WRITE_TIMEOUT zero", env: map[string]string{"WS_WRITE_TIMEOUT": "0"}, wantErr: `WS_WRITE_TIMEOUT="0s": must be longer than 0`},

		{name: "WS_PING_INTERVAL valid", env: map[string]string{"WS_PING_INTERVAL": "1m30s"}, want: func(c *Config) { c.PingInterval = 90 * time.Second }},
		{name: "WS_PING_INTERVAL bad", env: map[string]string{"WS_PING_INTERVAL": "soon"}, wantErr: `WS_PING_INTERVAL="soon": not a duration`},
		{name: "WS_PING_INTERVAL of 1s", env: map[string]string{"WS_PING_INTERVAL": "1s"}, want: func(c *Config) { c.PingInterval = time.Second }},
		{name: "WS_PING_INTERVAL 1ns", env: map[string]string{"WS_PING_INTERVAL": "1ns"}, wantErr: `WS_PING_INTERVAL="1ns": must be at least 1s`},
		{name: "WS_PING_INTERVAL below 1s", env: map[string]string{"WS_PING_INTERVAL": "999ms"}, wantErr: `WS_PING_INTERVAL="999ms": must be at least 1s`},

		{name: "WS_MAX_RECORD_BYTES valid", env: map[string]string{"WS_MAX_RECORD_BYTES": "1"}, want: func(c *Config) { c.MaxRecordBytes = 1 }},
		{name: "WS_MAX_RECORD_BYTES zero", env: map[string]string{"WS_MAX_RECORD_BYTES": "0"}, wantErr: `WS_MAX_RECORD_BYTES="0": must be at least 1`},
		{name: "WS_MAX_RECORD_BYTES not a number", env: map[string]string{"WS_MAX_RECORD_BYTES": "1MB"}, wantErr: `WS_MAX_RECORD_BYTES="1MB": not a whole number`},

		{name: "WS_BATCH false", env: map[string]string{"WS_BATCH": "false"}, want: func(c *Config) { c.Batch = false }},
		{name: "WS_BATCH 0", env: map[string]string{"WS_BATCH": "0"}, want: func(c *Config) { c.Batch = false }},
		{name: "WS_BATCH yes", env: map[string]string{"WS_BATCH": "yes"}, wantErr: `WS_BATCH="yes": not a boolean`},

		{name: "WS_BATCH_MAX_BYTES valid", env: map[string]string{"WS_BATCH_MAX_BYTES": "1048576"}, want: func(c *Config) { c.BatchMaxBytes = 1 << 20 }},
		{name: "WS_BATCH_MAX_BYTES zero", env: map[string]string{"WS_BATCH_MAX_BYTES": "0"}, wantErr: `WS_BATCH_MAX_BYTES="0": must be at least 1`},

		{name: "WS_CPU_REJECT_THRESHOLD valid", env: map[string]string{"WS_CPU_REJECT_THRESHOLD": "75.5"}, want: func(c *Config) { c.CPURejectThreshold = 75.5 }},
		{name: "WS_CPU_REJECT_THRESHOLD disabled", env: map[string]string{"WS_CPU_REJECT_THRESHOLD": "0"}, want: func(c *Config) { c.CPURejectThreshold = 0 }},
		{name: "WS_CPU_REJECT_THRESHOLD above 100", env: map[string]string{"WS_CPU_REJECT_THRESHOLD": "150"}, wantErr: `WS_CPU_REJECT_THRESHOLD="150": must be a percentage`},
		{name: "WS_CPU_REJECT_THRESHOLD negative", env: map[string]string{"WS_CPU_REJECT_THRESHOLD": "-1"}, wantErr: `WS_CPU_REJECT_THRESHOLD="-1"`},

		{name: "WS_ALLOWED_ORIGINS valid", env: map[string]string{"WS_ALLOWED_ORIGINS": "example.com, *.example.com"}, want: func(c *Config) { c.AllowedOrigins = []string{"example.com", "*.example.com"} }},
		{name: "WS_ALLOWED_ORIGINS empty entry", env: map[string]string{"WS_ALLOWED_ORIGINS": "example.com,"}, wantErr: `WS_ALLOWED_ORIGINS="example.com,": empty entry`},
		{name: "WS_ALLOWED_ORIGINS URL", env: map[string]string{"WS_ALLOWED_ORIGINS": "https://example.com"}, wantErr: `not a URL`},
		{name: "WS_ALLOWED_ORIGINS bad pattern", env: map[string]string{"WS_ALLOWED_ORIGINS": "[a-"}, wantErr: `bad pattern syntax`},

		{name: "WS_SHUTDOWN_TIMEOUT valid", env: map[string]string{"WS_SHUTDOWN_TIMEOUT": "2s"}, want: func(c *Config) { c.ShutdownTimeout = 2 * time.Second }},
		{name: "WS_SHUTDOWN_TIMEOUT negative", env: map[string]string{"WS_SHUTDOWN_TIMEOUT": "-2s"}, wantErr: `WS_SHUTDOWN_TIMEOUT="-2s": must be longer than 0`},

		{name: "WS_LOG_FORMAT console", env: map[string]string{"WS_LOG_FORMAT": "console"}, want: func(c *Config) { c.LogFormat = "console" }},
		{name: "WS_LOG_FORMAT text", env: map[string]string{"WS_LOG_FORMAT": "text"}, wantErr: `WS_LOG_FORMAT="text": must be json or console`},

		{name: "WS_LOG_LEVEL debug", env: map[string]string{"WS_LOG_LEVEL": "debug"}, want: func(c *Config) { c.LogLevel = "debug" }},
		{name: "WS_LOG_LEVEL warning", env: map[string]string{"WS_LOG_LEVEL": "warning"}, wantErr: `WS_LOG_LEVEL="warning": must be debug, info, warn or error`},

		{name: "WS_SHARDS valid", env: map[string]string{"WS_SHARDS": "8"}, want: func(c *Config) { c.Shards = 8 }},
		{name: "WS_SHARDS auto", env: map[string]string{"WS_SHARDS": "0"}, want: func(c *Config) {}},
		{name: "WS_SHARDS negative", env: map[string]string{"WS_SHARDS": "-2"}, wantErr: `WS_SHARDS="-2": must be 0 (one per GOMAXPROCS) to 1024`},
		{name: "WS_SHARDS too many", env: map[string]string{"WS_SHARDS": "100000"}, wantErr: `WS_SHARDS="100000"`},
		{name: "WS_SHARDS not a number", env: map[string]string{"WS_SHARDS": "all"}, wantErr: `WS_SHARDS="all": not a whole number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			checkLoad(t, tt.env, tt.want, tt.wantErr)
		})
	}
}

// checkLoad loads vars and checks the outcome: Default() changed by want, or an error
// containing wantErr that names its variable (a *config.Error); it returns that error.
func checkLoad(t *testing.T, vars map[string]string, want func(*Config), wantErr string) error {
	t.Helper()
	got, err := Load(env(vars))
	if wantErr != "" {
		if err == nil {
			t.Fatalf("Load() = %+v, want error containing %q", got, wantErr)
		}
		if !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("Load() error = %q, want it to contain %q", err, wantErr)
		}
		var ce *Error
		if !errors.As(err, &ce) || !strings.HasPrefix(ce.Var, "WS_") {
			t.Fatalf("Load() error %v does not carry a *config.Error naming the variable", err)
		}
		return err
	}
	if err != nil {
		t.Fatalf("Load() error = %v", err)
	}
	w := Default()
	want(&w)
	if !reflect.DeepEqual(got, w) {
		t.Fatalf("Load() = %+v\nwant     %+v", got, w)
	}
	return nil
}

func TestLoadReportsEveryBadVariable(t *testing.T) {
	t.Parallel()
	// A parse error and a range error in two different variables: both are named.
	_, err := Load(env(map[string]string{"WS_READ_LIMIT": "x", "WS_RATE_BURST": "0"}))
	if err == nil {
		t.Fatal("Load() error = nil")
	}
	for _, name := range []string{"WS_READ_LIMIT", "WS_RATE_BURST"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error %q does not name %s", err, name)
		}
	}
	_, err = Load(env(map[string]string{"WS_RATE_BURST": "0", "WS_LOG_LEVEL": "loud"}))
	for _, name := range []string{"WS_RATE_BURST", "WS_LOG_LEVEL"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error %v does not name %s", err, name)
		}
	}
}
