package dev

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"golang.org/x/time/rate"
)

// FeedConfig describes the synthetic producer.
type FeedConfig struct {
	// Brokers are the bootstrap addresses. Required.
	Brokers []string
	// Rate is records per second over both topics. Required, above 0.
	Rate float64
}

// RunFeed produces records from gen into Kafka with sarama at cfg.Rate until ctx ends,
// then flushes what is in flight. Produce errors are counted and reported on errOut
// (the first one, then a running count at most every 5 s) rather than ending the feed:
// a broker that goes away and comes back should not need a restart of the feed.
func RunFeed(ctx context.Context, cfg FeedConfig, gen *Generator, errOut io.Writer) error {
	if cfg.Rate <= 0 {
		return fmt.Errorf("dev: feed rate %v: must be above 0", cfg.Rate)
	}
	if len(cfg.Brokers) == 0 {
		return errors.New("dev: feed needs at least one broker")
	}
	producer, err := sarama.NewAsyncProducer(cfg.Brokers, producerConfig())
	if err != nil {
		return fmt.Errorf("dev: feed producer: %w", err)
	}

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		// Ends when AsyncClose has flushed and closed the Errors channel.
		defer wg.Done()
		reportErrors(producer.Errors(), errOut)
	}()

	// A burst of a tenth of a second keeps the long-run rate exact when the loop is
	// late, without sending a second's worth at once.
	burst := max(1, int(cfg.Rate/10))
	limiter := rate.NewLimiter(rate.Limit(cfg.Rate), burst)
	err = produceLoop(ctx, limiter, gen, producer.Input())
	producer.AsyncClose()
	wg.Wait()
	return err
}

func produceLoop(ctx context.Context, limiter *rate.Limiter, gen *Generator, input chan<- *sarama.ProducerMessage) error {
	for {
		if err := limiter.Wait(ctx); err != nil {
			// Wait fails only when ctx ends (or would end before the next token): a
			// normal stop.
			return nil
		}
		rec := gen.Next(time.Now())
		msg := &sarama.ProducerMessage{
			Topic: rec.Topic,
			Key:   sarama.StringEncoder(rec.Key),
			Value: sarama.ByteEncoder(rec.Value),
		}
		select {
		case input <- msg:
		case <-ctx.Done():
			return nil
		}
	}
}

func reportErrors(errs <-chan *sarama.ProducerError, out io.Writer) {
	var n int
	var last time.Time
	for perr := range errs {
		n++
		if n == 1 || time.Since(last) >= 5*time.Second {
			fmt.Fprintf(out, "dev: feed: %d produce errors so far, latest: %v\n", n, perr.Err)
			last = time.Now()
		}
	}
}

// producerConfig is sarama's configuration for the feed.
func producerConfig() *sarama.Config {
	c := sarama.NewConfig()
	c.ClientID = "loadtest-dev-feed"
	c.Version = sarama.V2_8_0_0
	// Acks from the leader are enough for a synthetic feed; nothing is replicated here.
	c.Producer.RequiredAcks = sarama.WaitForLocal
	c.Producer.Return.Successes = false
	c.Producer.Return.Errors = true
	// Batch a little so high rates do not turn into one request per record.
	c.Producer.Flush.Frequency = 5 * time.Millisecond
	c.Producer.Retry.Max = 5
	c.Metadata.Retry.Backoff = 250 * time.Millisecond
	return c
}
