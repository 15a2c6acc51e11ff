package load

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/adred-codev/ws_poc/loadtest/internal/popularity"
)

// Duration is a time.Duration that reads and writes as "1.5s" in JSON, so scenario files
// and results are readable.
type Duration time.Duration

// MarshalText renders the duration as Go duration text.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText parses Go duration text.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("duration %q: %w", b, err)
	}
	*d = Duration(v)
	return nil
}

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// Step is one period of publishing at a fixed rate.
type Step struct {
	// Rate is records per second over all publish channels.
	Rate float64 `json:"rate"`
	// Duration is how long the step publishes.
	Duration Duration `json:"duration"`
}

// Scenario is everything that defines a run. The zero value is not valid; Defaults fills in
// what the flags would.
type Scenario struct {
	// Mode is "connect" (connections only) or "broadcast" (plus a Kafka producer).
	Mode string `json:"mode"`
	// URL is the WebSocket URL, e.g. ws://127.0.0.1:3002/ws.
	URL string `json:"url"`
	// MetricsURL is the server's Prometheus endpoint; "" derives http://host/metrics from URL,
	// "none" disables scraping.
	MetricsURL string `json:"metrics_url"`
	// Conns is the number of connections to open.
	Conns int `json:"conns"`
	// RampRate is new connections per second over all workers; 0 opens them all at once
	// (bounded by Inflight).
	RampRate float64 `json:"ramp_rate"`
	// Inflight bounds concurrent handshakes per group.
	Inflight int `json:"inflight"`
	// Topic and ChannelPrefix name channel i "<Topic>:<ChannelPrefix><i>"; the producer
	// publishes to Topic with key "<ChannelPrefix><i>".
	Topic         string `json:"topic"`
	ChannelPrefix string `json:"channel_prefix"`
	// Channels, SubsPerConn, Distribution, ZipfS and Seed drive popularity.Config.
	Channels     int     `json:"channels"`
	SubsPerConn  int     `json:"subs_per_conn"`
	Distribution string  `json:"distribution"`
	ZipfS        float64 `json:"zipf_s,omitempty"`
	Seed         uint64  `json:"seed"`
	// Hold is how long connect mode keeps the connections open once all are subscribed.
	Hold Duration `json:"hold"`
	// Steps are broadcast mode's publishing periods, run back to back.
	Steps []Step `json:"steps,omitempty"`
	// StopP99 ends the step sequence early once a step's live p99 passes it (0: never), and
	// so does a connection dropped by the server.
	StopP99 Duration `json:"stop_p99,omitempty"`
	// Drain is the longest wait after the last record for deliveries to arrive; it ends
	// sooner once nothing has arrived for 2.5 s. What has not arrived by then is lost.
	Drain Duration `json:"drain"`
	// PayloadBytes pads each record value to about this size.
	PayloadBytes int `json:"payload_bytes"`
	// Brokers are the Kafka bootstrap brokers for broadcast mode.
	Brokers []string `json:"brokers,omitempty"`
	// SlowFraction of the connections stop reading once subscribed (slow consumers).
	SlowFraction float64 `json:"slow_fraction,omitempty"`
	// ThrottleFraction of the connections are mobile clients on a slow link: each reads its
	// socket at most ThrottleBytesPerSec (a token bucket around the socket's reads, with a
	// small receive buffer so the kernel does not absorb the backlog), subscribes to the
	// ThrottleSubs most popular channels (0: SubsPerConn of them) and, with
	// ThrottleConflate "behind", asks for conflation while behind. Their messages are counted
	// apart (Result.Throttled), not in the healthy clients' latency, received or loss.
	ThrottleFraction    float64 `json:"throttle_fraction,omitempty"`
	ThrottleBytesPerSec float64 `json:"throttle_bytes_per_sec,omitempty"`
	ThrottleConflate    string  `json:"throttle_conflate,omitempty"`
	ThrottleSubs        int     `json:"throttle_subs,omitempty"`
	// Send, when set, replaces the subscribe request: these texts are sent after connecting,
	// with {channels} (JSON array), {channel} (first channel) and {conn} (index) substituted.
	Send []string `json:"send,omitempty"`
	// Token, when set, is a JWT (the auth contract of issue 15) every connection sends as
	// {"op":"auth","id":"a","token":…} right after the upgrade, followed at once by its
	// subscribe without waiting for the reply (the server answers in request order). The
	// connection counts as subscribed once both its authed and its subscribed replies came;
	// an error reply to the auth fails it (cause auth_error_<code>). Results write it
	// redacted.
	Token string `json:"token,omitempty"`
	// TsPath, TsUnit, ChannelPath and SeqPath read received messages of another server
	// (frame.Extractor); empty TsPath uses our protocol's fast scanner.
	TsPath      string `json:"ts_path,omitempty"`
	TsUnit      string `json:"ts_unit,omitempty"`
	ChannelPath string `json:"channel_path,omitempty"`
	SeqPath     string `json:"seq_path,omitempty"`
	// SourceAddrs are local addresses to spread connections over (one gets ~28K ports to a
	// server address); empty lets the kernel choose.
	SourceAddrs []string `json:"source_addrs,omitempty"`
	// Workers is the number of worker processes; 0 or 1 runs in this process.
	Workers int `json:"workers"`
	// HandshakeTimeout bounds one WebSocket handshake; SubscribeTimeout bounds waiting for
	// the subscribed reply.
	HandshakeTimeout Duration `json:"handshake_timeout"`
	SubscribeTimeout Duration `json:"subscribe_timeout"`
	// MaxTime is the hard bound on the whole run.
	MaxTime Duration `json:"max_time"`
	// AllowRemote permits non-loopback targets.
	AllowRemote bool `json:"allow_remote,omitempty"`
	// Failover, when set, makes the run a failover: Conns clients on URL (instance A) and
	// Failover.Standby more on Failover.URL (instance B); mid-step A is ended and its
	// clients resume on B. See Failover.
	Failover *Failover `json:"failover,omitempty"`
}

// Modes.
const (
	ModeConnect   = "connect"
	ModeBroadcast = "broadcast"
)

// Popularity returns the subscription distribution.
func (s *Scenario) Popularity() popularity.Config {
	return popularity.Config{
		Channels: s.Channels, PerConn: s.SubsPerConn, Kind: s.Distribution, S: s.ZipfS, Seed: s.Seed,
	}
}

// ChannelName is the name of channel i.
func (s *Scenario) ChannelName(i int) string {
	return s.Topic + ":" + s.ChannelKey(i)
}

// ChannelKey is the Kafka record key of channel i.
func (s *Scenario) ChannelKey(i int) string {
	return s.ChannelPrefix + strconv.Itoa(i)
}

// throttleSubs is how many channels a throttled client subscribes to.
func (s *Scenario) throttleSubs() int {
	if s.ThrottleSubs > 0 {
		return s.ThrottleSubs
	}
	return s.SubsPerConn
}

// Clients is every client of the run: Conns, plus a failover's standby clients.
func (s *Scenario) Clients() int {
	if s.Failover == nil {
		return s.Conns
	}
	return s.Conns + s.Failover.Standby
}

// Generic reports whether the target is another server (custom send and extraction).
func (s *Scenario) Generic() bool { return s.TsPath != "" }

// Validate checks the scenario and fills derived values (metrics URL, max time).
func (s *Scenario) Validate() error {
	if s.Mode != ModeConnect && s.Mode != ModeBroadcast {
		return fmt.Errorf("mode %q: want connect or broadcast", s.Mode)
	}
	u, err := url.Parse(s.URL)
	if err != nil || (u.Scheme != "ws" && u.Scheme != "wss") || u.Host == "" {
		return fmt.Errorf("url %q: want ws://host:port/path", s.URL)
	}
	if !s.AllowRemote {
		if err := requireLoopback(u.Hostname()); err != nil {
			return fmt.Errorf("url %q: %w (pass --allow-remote to permit)", s.URL, err)
		}
		for _, a := range s.SourceAddrs {
			if err := requireLoopback(a); err != nil {
				return fmt.Errorf("source address %q: %w", a, err)
			}
		}
		for _, b := range s.Brokers {
			host, _, err := net.SplitHostPort(b)
			if err != nil {
				return fmt.Errorf("broker %q: %w", b, err)
			}
			if err := requireLoopback(host); err != nil {
				return fmt.Errorf("broker %q: %w (pass --allow-remote to permit)", b, err)
			}
		}
	}
	if s.MetricsURL == "" {
		scheme := "http"
		if u.Scheme == "wss" {
			scheme = "https"
		}
		s.MetricsURL = scheme + "://" + u.Host + "/metrics"
	}
	if err := s.Popularity().Validate(); err != nil {
		return err
	}
	switch {
	case s.Conns < 1:
		return fmt.Errorf("conns %d: need at least 1", s.Conns)
	case s.RampRate < 0:
		return fmt.Errorf("ramp %g: need >= 0", s.RampRate)
	case s.Inflight < 1:
		return fmt.Errorf("inflight %d: need at least 1", s.Inflight)
	case s.SlowFraction < 0 || s.SlowFraction >= 1:
		return fmt.Errorf("slow fraction %g: need 0 <= f < 1", s.SlowFraction)
	case s.ThrottleFraction < 0 || s.ThrottleFraction >= 1:
		return fmt.Errorf("throttle fraction %g: need 0 <= f < 1", s.ThrottleFraction)
	case s.ThrottleFraction > 0 && s.ThrottleBytesPerSec <= 0:
		return fmt.Errorf("throttle bytes per second %g: throttled clients need a positive rate", s.ThrottleBytesPerSec)
	case s.ThrottleFraction > 0 && s.SlowFraction > 0:
		return errors.New("throttle fraction and slow fraction: one kind of impaired client per run")
	case s.ThrottleFraction > 0 && s.Failover != nil:
		return errors.New("throttle fraction: a failover run has no throttled clients")
	case s.ThrottleConflate != "" && s.ThrottleConflate != ConflateBehind:
		return fmt.Errorf("throttle conflate %q: want %q or empty", s.ThrottleConflate, ConflateBehind)
	case s.ThrottleConflate != "" && (s.Generic() || len(s.Send) > 0):
		return errors.New("throttle conflate: another server's protocol (send, ts_path) has no conflate")
	case s.ThrottleSubs < 0 || s.ThrottleSubs > s.Channels:
		return fmt.Errorf("throttle subs %d: need 0..%d (channels)", s.ThrottleSubs, s.Channels)
	case s.Workers < 0:
		return fmt.Errorf("workers %d: need >= 0", s.Workers)
	case s.HandshakeTimeout <= 0 || s.SubscribeTimeout <= 0:
		return errors.New("handshake and subscribe timeouts must be positive")
	case s.Mode == ModeBroadcast && len(s.Steps) == 0:
		return errors.New("broadcast needs at least one publishing step")
	case s.Mode == ModeBroadcast && len(s.Brokers) == 0:
		return errors.New("broadcast needs --brokers")
	case s.Token != "" && s.Generic():
		return errors.New("token: another server's protocol (ts_path) has no auth op")
	case s.Token != "" && s.Failover != nil:
		return errors.New("token: a failover run cannot authenticate (its resumes on B send no auth)")
	}
	for i, st := range s.Steps {
		if st.Rate <= 0 || st.Duration <= 0 {
			return fmt.Errorf("step %d: rate %g and duration %s must be positive", i, st.Rate, st.Duration.D())
		}
	}
	if s.Failover != nil {
		if err := s.Failover.validate(s); err != nil {
			return err
		}
	}
	if s.MaxTime <= 0 {
		s.MaxTime = Duration(s.expectedTime() + 60*time.Second)
	}
	return nil
}

// expectedTime estimates how long the run takes when all goes well.
func (s *Scenario) expectedTime() time.Duration {
	var d time.Duration
	if s.RampRate > 0 {
		d += time.Duration(float64(s.Clients()) / s.RampRate * float64(time.Second))
	}
	d += s.SubscribeTimeout.D() + s.Hold.D() + s.Drain.D()
	for _, st := range s.Steps {
		d += st.Duration.D()
	}
	return d
}

// Dials is how many connections the run opens from its source addresses: every client
// once, and a failover's A clients a second time (to B).
func (s *Scenario) Dials() int {
	if s.Failover == nil {
		return s.Conns
	}
	return s.Clients() + s.Conns
}

func requireLoopback(host string) error {
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil {
		return fmt.Errorf("%q is not an IP address or localhost", host)
	}
	if !ip.IsLoopback() {
		return fmt.Errorf("%s is not a loopback address", ip)
	}
	return nil
}

// ParseSteps reads "rate:duration,rate:duration", e.g. "100:5s,200:5s".
func ParseSteps(text string) ([]Step, error) {
	var steps []Step
	for _, part := range strings.Split(text, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		r, d, ok := strings.Cut(part, ":")
		if !ok {
			return nil, fmt.Errorf("step %q: want rate:duration", part)
		}
		rate, err := strconv.ParseFloat(r, 64)
		if err != nil {
			return nil, fmt.Errorf("step %q: rate: %w", part, err)
		}
		dur, err := time.ParseDuration(d)
		if err != nil {
			return nil, fmt.Errorf("step %q: duration: %w", part, err)
		}
		steps = append(steps, Step{Rate: rate, Duration: Duration(dur)})
	}
	return steps, nil
}

// AutoPlace fills Workers and SourceAddrs when they were left at zero: one process holds at
// most ~19.9K sockets (open-file limit 20000), one source address reaches one server
// address with ~28K ports.
// A failover counts its standby clients too, and its A clients' second dial (to B) from
// the same source addresses.
func (s *Scenario) AutoPlace(perWorker, perSource int) {
	if s.Workers == 0 && s.Clients() > perWorker {
		s.Workers = (s.Clients() + perWorker - 1) / perWorker
	}
	if dials := s.Dials(); len(s.SourceAddrs) == 0 && dials > perSource {
		n := (dials + perSource - 1) / perSource
		for i := range n {
			s.SourceAddrs = append(s.SourceAddrs, fmt.Sprintf("127.0.0.%d", i+2))
		}
	}
}
