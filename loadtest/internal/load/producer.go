package load

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"github.com/rcrowley/go-metrics"
)

// producer publishes timestamped, numbered records to the scenario's channels with sarama,
// at the rates of the scenario's steps, and counts the records Kafka acknowledged per
// channel and step: that is what every subscriber should receive.
type producer struct {
	sc       *Scenario
	p        sarama.AsyncProducer
	pad      string
	seq      []uint64
	wg       sync.WaitGroup
	mu       sync.Mutex // guards acked and errs
	acked    [][]int64  // [channel][step]
	errs     int64
	lastErr  error
	sentStep []int64
	warm     chan struct{} // acknowledgements of warm-up records
}

type recordMeta struct {
	channel, step int
}

func newProducer(sc *Scenario) (*producer, error) {
	// go-metrics (used by sarama) starts a meter goroutine that never stops unless nil
	// metrics are chosen before the first client. The variable belongs to the library and is
	// process-wide; writing it only when unset keeps concurrent callers free of data races.
	if !metrics.UseNilMetrics {
		metrics.UseNilMetrics = true
	}
	cfg := sarama.NewConfig()
	cfg.ClientID = "loadtest"
	cfg.Producer.Return.Successes = true
	cfg.Producer.Return.Errors = true
	cfg.Producer.RequiredAcks = sarama.WaitForLocal
	// Send as soon as possible: latency is measured from the moment a record is handed to the
	// producer, so client-side batching delay would be charged to the server.
	cfg.Producer.Flush.Frequency = 0
	cfg.Producer.Flush.Messages = 0
	cfg.Producer.Retry.Max = 5
	cfg.Metadata.Retry.Max = 10
	cfg.Metadata.Retry.Backoff = 200 * time.Millisecond
	p, err := sarama.NewAsyncProducer(sc.Brokers, cfg)
	if err != nil {
		return nil, fmt.Errorf("kafka producer %v: %w", sc.Brokers, err)
	}
	pr := &producer{
		sc:    sc,
		p:     p,
		seq:   make([]uint64, sc.Channels),
		acked: make([][]int64, sc.Channels),
		warm:  make(chan struct{}, warmups),
	}
	for i := range pr.acked {
		pr.acked[i] = make([]int64, len(sc.Steps))
	}
	pr.sentStep = make([]int64, len(sc.Steps))
	if sc.PayloadBytes > 60 {
		pad := make([]byte, sc.PayloadBytes-60)
		for i := range pad {
			pad[i] = 'x'
		}
		pr.pad = string(pad)
	}
	pr.wg.Add(2)
	go func() {
		defer pr.wg.Done()
		for m := range p.Successes() {
			meta := m.Metadata.(recordMeta)
			if meta.channel < 0 {
				pr.warm <- struct{}{}
				continue
			}
			pr.mu.Lock()
			pr.acked[meta.channel][meta.step]++
			pr.mu.Unlock()
		}
	}()
	go func() {
		defer pr.wg.Done()
		for e := range p.Errors() {
			if e.Msg.Metadata.(recordMeta).channel < 0 {
				pr.warm <- struct{}{}
				continue
			}
			pr.mu.Lock()
			pr.errs++
			pr.lastErr = e.Err
			pr.mu.Unlock()
		}
	}()
	return pr, nil
}

// warmups is how many records warmUp sends: keys spread them over the partitions.
const warmups = 16

// warmUp sends records on keys nobody subscribes to and waits for Kafka to acknowledge them,
// so the producer's connection and metadata setup (about a second with sarama) is not
// charged to the first measured records.
func (pr *producer) warmUp(ctx context.Context) error {
	for i := range warmups {
		pr.p.Input() <- &sarama.ProducerMessage{
			Topic:    pr.sc.Topic,
			Key:      sarama.StringEncoder(fmt.Sprintf("%swarmup-%d", pr.sc.ChannelPrefix, i)),
			Value:    sarama.StringEncoder(`{"warmup":true}`),
			Metadata: recordMeta{channel: -1},
		}
	}
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	for range warmups {
		select {
		case <-pr.warm:
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
			return fmt.Errorf("kafka producer %v: no acknowledgement of warm-up records in 30s", pr.sc.Brokers)
		}
	}
	return nil
}

// runStep publishes at step i's rate for its duration, spreading records round-robin over
// the channels, or until ctx ends or abort is closed.
func (pr *producer) runStep(ctx context.Context, i int, abort <-chan struct{}) {
	st := pr.sc.Steps[i]
	start := time.Now()
	end := start.Add(st.Duration.D())
	// Records are sent in small bursts on a 1 ms tick: at 1K records/s that is one per tick;
	// a finer pace would cost more CPU than it changes the measured latency.
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	var sent int64
	total := int64(math.Round(st.Duration.D().Seconds() * st.Rate))
	next := i * 7919 % pr.sc.Channels // rotate the starting channel per step
	for {
		now := time.Now()
		if !now.Before(end) {
			// The last tick can fall just short of the end: send what is still due so a step
			// always publishes exactly its rate times its duration.
			for ; sent < total; sent++ {
				pr.send(next, i)
				next = (next + 1) % pr.sc.Channels
			}
			return
		}
		// Record k goes out at k/rate from the step's start (the first at once), so a step
		// of d seconds at r/s sends exactly d*r records.
		due := min(int64(now.Sub(start).Seconds()*st.Rate)+1, total)
		for ; sent < due; sent++ {
			pr.send(next, i)
			next = (next + 1) % pr.sc.Channels
		}
		select {
		case <-ctx.Done():
			return
		case <-abort:
			return
		case <-tick.C:
		}
	}
}

func (pr *producer) send(ch, step int) {
	pr.seq[ch]++
	now := time.Now()
	v := make([]byte, 0, 64+len(pr.pad))
	v = append(v, `{"sent_ns":`...)
	v = strconv.AppendInt(v, now.UnixNano(), 10)
	v = append(v, `,"seq":`...)
	v = strconv.AppendUint(v, pr.seq[ch], 10)
	v = append(v, `,"step":`...)
	v = strconv.AppendInt(v, int64(step), 10)
	if pr.pad != "" {
		v = append(v, `,"pad":"`...)
		v = append(v, pr.pad...)
		v = append(v, '"')
	}
	v = append(v, '}')
	pr.sentStep[step]++
	pr.p.Input() <- &sarama.ProducerMessage{
		Topic:     pr.sc.Topic,
		Key:       sarama.StringEncoder(pr.sc.ChannelKey(ch)),
		Value:     sarama.ByteEncoder(v),
		Timestamp: now,
		Metadata:  recordMeta{channel: ch, step: step},
	}
}

// close flushes what is in flight and waits for every acknowledgement.
func (pr *producer) close() {
	pr.p.AsyncClose()
	pr.wg.Wait()
}

// produced returns, per channel name, the acknowledged records per step; call after close.
func (pr *producer) produced() map[string][]int64 {
	out := make(map[string][]int64, len(pr.acked))
	for i, a := range pr.acked {
		out[pr.sc.ChannelName(i)] = a
	}
	return out
}
