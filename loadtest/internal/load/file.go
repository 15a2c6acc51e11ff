package load

import (
	"encoding/json"
	"fmt"
	"os"
)

// flagFields maps the flags that may override a scenario file to the JSON fields they set.
var flagFields = map[string][]string{
	"url": {"url"}, "metrics-url": {"metrics_url"}, "conns": {"conns"}, "ramp": {"ramp_rate"},
	"inflight": {"inflight"}, "topic": {"topic"}, "channel-prefix": {"channel_prefix"},
	"channels": {"channels"}, "subs": {"subs_per_conn"}, "dist": {"distribution"}, "zipf-s": {"zipf_s"},
	"seed": {"seed"}, "hold": {"hold"}, "duration": {"steps"}, "rate": {"steps"}, "steps": {"steps"},
	"stop-p99": {"stop_p99"}, "drain": {"drain"}, "payload": {"payload_bytes"}, "brokers": {"brokers"},
	"slow-fraction": {"slow_fraction"}, "send": {"send"}, "send-file": {"send"}, "ts-path": {"ts_path"},
	"ts-unit": {"ts_unit"}, "channel-path": {"channel_path"}, "seq-path": {"seq_path"},
	"source-addrs": {"source_addrs"}, "workers": {"workers"}, "handshake-timeout": {"handshake_timeout"},
	"subscribe-timeout": {"subscribe_timeout"}, "max-time": {"max_time"}, "allow-remote": {"allow_remote"},
	"token": {"token"}, "throttle-fraction": {"throttle_fraction"}, "throttle-rate": {"throttle_bytes_per_sec"},
	"throttle-conflate": {"throttle_conflate"}, "throttle-subs": {"throttle_subs"},
}

// overlayFile reads a scenario file over the flag defaults, then puts back the fields of
// the flags given explicitly: file < explicit flags.
func overlayFile(path string, fromFlags Scenario, set map[string]bool) (Scenario, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return fromFlags, fmt.Errorf("scenario file: %w", err)
	}
	flagJSON, err := json.Marshal(fromFlags)
	if err != nil {
		return fromFlags, fmt.Errorf("scenario: %w", err)
	}
	var merged, flags map[string]json.RawMessage
	if err := json.Unmarshal(flagJSON, &merged); err != nil {
		return fromFlags, fmt.Errorf("scenario: %w", err)
	}
	if err := json.Unmarshal(flagJSON, &flags); err != nil {
		return fromFlags, fmt.Errorf("scenario: %w", err)
	}
	var file map[string]json.RawMessage
	if err := json.Unmarshal(b, &file); err != nil {
		return fromFlags, fmt.Errorf("scenario file %s: %w", path, err)
	}
	for k, v := range file {
		merged[k] = v
	}
	for name := range set {
		for _, field := range flagFields[name] {
			if v, ok := flags[field]; ok {
				merged[field] = v
			}
		}
	}
	out, err := json.Marshal(merged)
	if err != nil {
		return fromFlags, fmt.Errorf("scenario: %w", err)
	}
	var sc Scenario
	if err := json.Unmarshal(out, &sc); err != nil {
		return fromFlags, fmt.Errorf("scenario file %s: %w", path, err)
	}
	sc.Mode = fromFlags.Mode
	return sc, nil
}
