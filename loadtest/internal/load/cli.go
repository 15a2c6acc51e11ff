package load

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// Per-process and per-source-address connection budgets for AutoPlace: under the open-file
// limit of 20000 with room for the process's own files, and under the ~28K ephemeral ports
// one source address has towards one server address.
const (
	connsPerWorker = 15000
	connsPerSource = 25000
)

type stringList []string

func (l *stringList) String() string     { return strings.Join(*l, ",") }
func (l *stringList) Set(v string) error { *l = append(*l, v); return nil }

// Command parses the flags of `loadtest connect` or `loadtest broadcast` (mode), runs the
// scenario, prints the progress and the table, writes --out, and returns an error when the
// run failed, or lost messages with --require-no-loss.
func Command(ctx context.Context, mode string, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet(mode, flag.ContinueOnError)
	fs.SetOutput(stderr)
	sc := Scenario{Mode: mode}
	var (
		hold, duration, drain, hsTimeout, subTimeout, maxTime, stopP99 time.Duration
		rateFlag                                                       float64
		stepsFlag, sources, brokers, out, sendFile, scenarioFile       string
		send                                                           stringList
		requireNoLoss                                                  bool
	)
	fs.StringVar(&scenarioFile, "scenario", "", "read the scenario from this JSON file (flags given explicitly override it)")
	fs.StringVar(&sc.URL, "url", "ws://127.0.0.1:3002/ws", "WebSocket URL of the server")
	fs.StringVar(&sc.MetricsURL, "metrics-url", "", `server /metrics URL ("" derives it from --url, "none" disables)`)
	fs.IntVar(&sc.Conns, "conns", 100, "connections to open")
	fs.Float64Var(&sc.RampRate, "ramp", 1000, "new connections per second (0 = all at once, bounded by --inflight)")
	fs.IntVar(&sc.Inflight, "inflight", 256, "concurrent handshakes per process")
	fs.StringVar(&sc.Topic, "topic", "trades", "Kafka topic (channel i is <topic>:<prefix><i>)")
	fs.StringVar(&sc.ChannelPrefix, "channel-prefix", "lt-", "channel key prefix")
	fs.IntVar(&sc.Channels, "channels", 10, "number of channels")
	fs.IntVar(&sc.SubsPerConn, "subs", 1, "subscriptions per connection (distinct channels)")
	fs.StringVar(&sc.Distribution, "dist", "uniform", "channel popularity: uniform or zipf")
	fs.Float64Var(&sc.ZipfS, "zipf-s", 1.1, "Zipf exponent (> 1)")
	fs.Uint64Var(&sc.Seed, "seed", 1, "seed of the channel picks")
	fs.DurationVar(&hold, "hold", 10*time.Second, "connect: how long to hold the connections once subscribed")
	fs.DurationVar(&duration, "duration", 10*time.Second, "broadcast: how long to publish (one step)")
	fs.Float64Var(&rateFlag, "rate", 100, "broadcast: records per second over all channels (one step)")
	fs.StringVar(&stepsFlag, "steps", "", `broadcast: rate steps "rate:duration,..." instead of --rate/--duration`)
	fs.DurationVar(&stopP99, "stop-p99", 0, "broadcast: stop stepping once a step's p99 passes this (0 = never)")
	fs.DurationVar(&drain, "drain", 30*time.Second, "broadcast: longest wait after the last record for deliveries (ends after 2.5s without any); what has not arrived is lost")
	fs.IntVar(&sc.PayloadBytes, "payload", 100, "broadcast: approximate record value size in bytes")
	fs.StringVar(&brokers, "brokers", "127.0.0.1:9092", "broadcast: Kafka bootstrap brokers, comma-separated")
	fs.Float64Var(&sc.SlowFraction, "slow-fraction", 0, "fraction of connections that stop reading once subscribed")
	fs.Float64Var(&sc.ThrottleFraction, "throttle-fraction", 0, "fraction of connections on a slow link (--throttle-rate), subscribed to the hottest channels")
	fs.Float64Var(&sc.ThrottleBytesPerSec, "throttle-rate", 20000, "bytes per second a throttled connection reads at most")
	fs.StringVar(&sc.ThrottleConflate, "throttle-conflate", "", `conflation throttled connections ask for: "behind" or empty`)
	fs.IntVar(&sc.ThrottleSubs, "throttle-subs", 0, "channels a throttled connection subscribes to, the most popular (0 = --subs)")
	fs.Var(&send, "send", "text to send after connecting instead of our subscribe (repeatable; {channels} {channel} {conn} are substituted)")
	fs.StringVar(&sc.Token, "token", "", `JWT each connection sends as {"op":"auth"} right after the upgrade, pipelined with its subscribe; subscribed once authed and subscribed`)
	fs.StringVar(&sendFile, "send-file", "", "file of texts to send after connecting, one per line")
	fs.StringVar(&sc.TsPath, "ts-path", "", "another server: dotted JSON path of the send timestamp in received messages (e.g. data.sent_ns)")
	fs.StringVar(&sc.TsUnit, "ts-unit", "ns", "unit of --ts-path: ns, us, ms or s")
	fs.StringVar(&sc.ChannelPath, "channel-path", "", "another server: JSON path of the channel name")
	fs.StringVar(&sc.SeqPath, "seq-path", "", "another server: JSON path of our per-channel sequence number (enables loss accounting)")
	fs.StringVar(&sources, "source-addrs", "", "local source addresses, comma-separated (default: chosen when one is not enough)")
	fs.IntVar(&sc.Workers, "workers", 0, "worker processes (0 = one per 15000 connections, 1 = in this process)")
	fs.DurationVar(&hsTimeout, "handshake-timeout", 10*time.Second, "bound on one WebSocket handshake")
	fs.DurationVar(&subTimeout, "subscribe-timeout", 15*time.Second, "bound on waiting for the subscribed reply")
	fs.DurationVar(&maxTime, "max-time", 0, "hard bound on the whole run (0 = expected time + 60s)")
	fs.BoolVar(&sc.AllowRemote, "allow-remote", false, "permit non-loopback server, broker and source addresses")
	fs.StringVar(&out, "out", "", "write every figure and the scenario as JSON to this file")
	fs.BoolVar(&requireNoLoss, "require-no-loss", false, "exit non-zero when any message was lost, duplicated or reordered or a connection was dropped")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	sc.Hold, sc.Drain, sc.StopP99 = Duration(hold), Duration(drain), Duration(stopP99)
	sc.HandshakeTimeout, sc.SubscribeTimeout, sc.MaxTime = Duration(hsTimeout), Duration(subTimeout), Duration(maxTime)
	sc.Send = send
	if sources != "" {
		sc.SourceAddrs = strings.Split(sources, ",")
	}
	if mode == ModeBroadcast {
		sc.Brokers = strings.Split(brokers, ",")
		sc.Steps = []Step{{Rate: rateFlag, Duration: Duration(duration)}}
		if stepsFlag != "" {
			steps, err := ParseSteps(stepsFlag)
			if err != nil {
				return err
			}
			sc.Steps = steps
		}
	}
	if sendFile != "" {
		b, err := os.ReadFile(sendFile)
		if err != nil {
			return fmt.Errorf("send file: %w", err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if strings.TrimSpace(line) != "" {
				sc.Send = append(sc.Send, line)
			}
		}
	}
	if scenarioFile != "" {
		var err error
		if sc, err = overlayFile(scenarioFile, sc, set); err != nil {
			return err
		}
	}
	sc.AutoPlace(connsPerWorker, connsPerSource)

	res, err := Run(ctx, sc, stderr)
	if res == nil {
		return err
	}
	res.WriteTable(stdout)
	if out != "" {
		if werr := res.WriteFile(out); werr != nil {
			return errors.Join(err, werr)
		}
	}
	if err != nil {
		return fmt.Errorf("run ended early: %w", err)
	}
	if requireNoLoss && mode == ModeBroadcast && !res.Loss.OK {
		return errors.New(res.LossLine())
	}
	return nil
}
