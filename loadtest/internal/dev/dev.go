// Package dev is `loadtest dev`: an in-process Kafka-protocol broker (kfake) with the topics
// the servers consume, and a synthetic market-data feed into it, for `make run` and for tests.
// With --external it runs only the feed, into a broker that already exists (the compose Kafka).
package dev

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/rcrowley/go-metrics"
)

// Topics the servers consume by default (WS_KAFKA_TOPICS).
const (
	TradesTopic  = "trades"
	TickersTopic = "tickers"
)

// Run parses args, starts the broker and the feed, prints the broker address, and blocks
// until ctx ends (Ctrl-C) or --duration has passed. A clean stop returns nil. With
// --external no broker is started: the feed produces to --brokers.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("dev", flag.ContinueOnError)
	fs.SetOutput(stderr)
	broker := fs.String("broker", "127.0.0.1:9092", "broker listen address (host:port; port 0 picks a free one)")
	partitions := fs.Int("partitions", 4, "partitions per topic (seeded and auto-created)")
	rateFlag := fs.Float64("rate", 20, "synthetic records per second over trades and tickers; 0 = no feed")
	symbols := fs.String("symbols", DefaultSymbols, "comma-separated record keys of the feed")
	seed := fs.Uint64("seed", 0, "random seed of the feed; 0 = from the clock")
	external := fs.Bool("external", false, "no in-process broker: feed the existing Kafka at --brokers")
	brokers := fs.String("brokers", "", "comma-separated bootstrap addresses of the existing Kafka (with --external)")
	duration := fs.Duration("duration", 0, "stop after this long; 0 = until interrupted")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: loadtest dev [flags]")
		fmt.Fprintln(stderr, "\nRuns a local Kafka-protocol broker with the topics trades and tickers and feeds")
		fmt.Fprintln(stderr, "synthetic trades and tickers into it until interrupted. With --external, only the")
		fmt.Fprintln(stderr, "feed runs, into the Kafka at --brokers (its topics must exist or be auto-created).")
		fmt.Fprintln(stderr)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *rateFlag < 0 {
		return fmt.Errorf("--rate %v: must be 0 or more", *rateFlag)
	}
	if *partitions < 1 {
		return fmt.Errorf("--partitions %d: must be 1 or more", *partitions)
	}
	syms := splitList(*symbols)
	if *rateFlag > 0 && len(syms) == 0 {
		return errors.New("--symbols: empty")
	}
	if *duration < 0 {
		return fmt.Errorf("--duration %v: must be 0 or more", *duration)
	}
	brokerList := splitList(*brokers)
	if *external {
		if len(brokerList) == 0 {
			return errors.New("--external needs --brokers")
		}
		if *rateFlag == 0 {
			return errors.New("--external with --rate 0 does nothing")
		}
	} else if len(brokerList) > 0 {
		return errors.New("--brokers is for --external; without it the feed goes to the in-process broker (--broker)")
	}
	if *seed == 0 {
		*seed = uint64(time.Now().UnixNano())
	}
	if *duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *duration)
		defer cancel()
	}

	if *external {
		return feed(ctx, brokerList, *rateFlag, syms, *seed, stdout, stderr)
	}
	b, err := NewBroker(BrokerConfig{Addr: *broker, Topics: []string{TradesTopic, TickersTopic}, Partitions: *partitions})
	if err != nil {
		return err
	}
	defer b.Close()
	fmt.Fprintf(stdout, "dev: kafka broker on %s (topics %s, %s; %d partitions each; auto topic creation on)\n",
		b.Addr(), TradesTopic, TickersTopic, *partitions)

	if *rateFlag == 0 {
		fmt.Fprintln(stdout, "dev: no synthetic feed (--rate 0); Ctrl-C stops")
		<-ctx.Done()
		return nil
	}
	return feed(ctx, []string{b.Addr()}, *rateFlag, syms, *seed, stdout, stderr)
}

// feed runs the synthetic feed into brokers until ctx ends.
func feed(ctx context.Context, brokers []string, rate float64, syms []string, seed uint64, stdout, stderr io.Writer) error {
	// go-metrics (used by sarama) starts a meter goroutine that never stops unless nil
	// metrics are chosen before the first client. The variable is process-wide; writing it
	// only when unset keeps concurrent callers (tests set it first) free of data races.
	if !metrics.UseNilMetrics {
		metrics.UseNilMetrics = true
	}
	fmt.Fprintf(stdout, "dev: feeding %v records/s of %s into %s and %s on %s; Ctrl-C stops\n",
		rate, strings.Join(syms, ","), TradesTopic, TickersTopic, strings.Join(brokers, ","))
	gen := NewGenerator(seed, TradesTopic, TickersTopic, syms)
	return RunFeed(ctx, FeedConfig{Brokers: brokers, Rate: rate}, gen, stderr)
}

// splitList splits a comma-separated flag value, dropping empty items and spaces.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
