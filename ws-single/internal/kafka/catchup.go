// This file is duplicated from ws-multi (internal/kafka/catchup.go) on purpose: the variants share the consumer.

package kafka

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/IBM/sarama"
	"go.uber.org/zap"

	"github.com/adred-codev/ws_poc/ws-single/internal/history"
	"github.com/adred-codev/ws_poc/ws-single/internal/metrics"
	"github.com/adred-codev/ws_poc/ws-single/internal/protocol"
)

// ReaderConfig configures the catch-up reader (Reader).
type ReaderConfig struct {
	Brokers []string // bootstrap brokers, host:port (WS_KAFKA_BROKERS)
	// ClientID is the server's Kafka client id; the reader's connections use ClientID +
	// "-catchup", so brokers (quotas, logs) tell them from the live consumer's.
	ClientID string
	// MaxRecordBytes is the live consumer's (WS_MAX_RECORD_BYTES): a replayed record is the
	// same line as its live one, "skipped" included.
	MaxRecordBytes int
	Readers        int           // catch-ups at once (WS_RESUME_READERS), at least 1
	Wait           time.Duration // wait for a free reader before history.ErrBusy (WS_RESUME_WAIT)
	// MaxScanRecords and MaxScanBytes bound what one Read scans, matching or not, in records
	// and record value bytes (WS_RESUME_MAX_SCAN_RECORDS, WS_RESUME_MAX_SCAN_BYTES).
	MaxScanRecords, MaxScanBytes int
}

// Reader reads from Kafka the records a resume needs that the history no longer holds. It
// has its own sarama client, never the live consumer's: the broker answers one request per
// connection at a time, so a catch-up fetch on the live connection would delay the live
// fetch behind it, and every client with it. Up to Readers Reads run at once.
type Reader struct {
	cfg   ReaderConfig
	m     *metrics.Metrics
	log   *zap.Logger
	slots chan struct{} // one token per running Read; its size is the point (Readers)

	mu     sync.Mutex
	cur    *readerClient // nil until first used, and after a failure or Close
	closed bool
	// bg counts the Reads whose partition consumers are still being closed; added to under
	// mu while not closed, so Close's Wait follows every Add.
	bg sync.WaitGroup
}

// readerClient is a sarama client shared by the Reads running on it. A client replaced after
// a failure is closed by the last Read that still uses it, not under the others' feet.
type readerClient struct {
	sarama.Client
	users int  // Reads using it; under Reader.mu
	stale bool // replaced or the reader closed: close when users is 0
}

// NewReader returns a reader; it connects on its first Read.
func NewReader(cfg ReaderConfig, m *metrics.Metrics, log *zap.Logger) (*Reader, error) {
	switch {
	case len(cfg.Brokers) == 0:
		return nil, errors.New("kafka: catch-up reader: brokers are required")
	case cfg.Readers < 1 || cfg.Wait <= 0:
		return nil, fmt.Errorf("kafka: catch-up reader: readers %d, wait %s: want positive", cfg.Readers, cfg.Wait)
	case cfg.MaxRecordBytes < 1 || cfg.MaxScanRecords < 1 || cfg.MaxScanBytes < 1:
		return nil, fmt.Errorf("kafka: catch-up reader: max record bytes %d, max scan %d records, %d bytes: want positive",
			cfg.MaxRecordBytes, cfg.MaxScanRecords, cfg.MaxScanBytes)
	}
	return &Reader{cfg: cfg, m: m, log: log, slots: make(chan struct{}, cfg.Readers)}, nil
}

// Read returns the messages of the records in ranges for which match is true (each range's
// in offset order, the ranges in the order given), encoded as the live consumer encodes
// them, and the number of records scanned. The partitions are read at once; match is called
// for one record at a time. Its errors: history.ErrBusy (no reader free within Wait),
// history.ErrTooFarBehind (more to scan than MaxScanRecords or MaxScanBytes),
// *history.OutOfRetentionError, ctx's error, or any other for Kafka being unavailable.
func (r *Reader) Read(ctx context.Context, ranges []history.Range, match func(*protocol.Message) bool) ([]*protocol.Message, int, error) {
	if err := r.acquire(ctx); err != nil {
		return nil, 0, err
	}
	defer r.release()
	rc, err := r.client()
	if err != nil {
		return nil, 0, err
	}
	s, o := &scan{match: match}, &opened{}
	out, err := r.read(ctx, rc, ranges, s, o)
	// Closing a partition consumer waits for its fetch in flight, a long poll past the
	// range's end: the resume does not wait for that. Close waits for it.
	go func() {
		defer r.bg.Done()
		o.close()
		r.done(rc, err)
	}()
	scanned := int(s.records.Load())
	if err != nil {
		return nil, scanned, err
	}
	return out, scanned, nil
}

// Close closes the reader's client once no Read uses it, and waits for that. Reads after
// Close fail.
func (r *Reader) Close() error {
	var err error
	r.mu.Lock()
	r.closed = true
	if rc := r.cur; rc != nil {
		r.cur, rc.stale = nil, true
		if rc.users == 0 {
			err = rc.Close()
		}
	}
	r.mu.Unlock()
	r.bg.Wait() // the last Read's done closes a client still in use above
	return err
}

// acquire takes a reader slot, waiting up to Wait.
func (r *Reader) acquire(ctx context.Context) error {
	select {
	case r.slots <- struct{}{}:
	default:
		t := time.NewTimer(r.cfg.Wait)
		defer t.Stop()
		select {
		case r.slots <- struct{}{}:
		case <-t.C:
			return history.ErrBusy
		case <-ctx.Done():
			return fmt.Errorf("kafka: catch-up: waiting for a reader: %w", ctx.Err())
		}
	}
	r.m.ResumeReaders.Inc()
	return nil
}

func (r *Reader) release() {
	r.m.ResumeReaders.Dec()
	<-r.slots
}

// client returns the shared client, connecting it first if needed. The connection is made
// under the mutex: Reads arriving meanwhile need it too.
func (r *Reader) client() (*readerClient, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errors.New("kafka: catch-up reader closed")
	}
	if r.cur == nil {
		c, err := sarama.NewClient(r.cfg.Brokers, r.saramaConfig())
		if err != nil {
			return nil, fmt.Errorf("kafka: catch-up: connect %v: %w", r.cfg.Brokers, err)
		}
		r.cur = &readerClient{Client: c}
	}
	r.cur.users++
	r.bg.Add(1) // done by the Read's background close
	return r.cur, nil
}

// done ends a Read's use of rc; a Read that failed on Kafka (not on its bounds, retention or
// its context) has the client replaced, so the next Read reconnects.
func (r *Reader) done(rc *readerClient, err error) {
	failed := err != nil && !errors.Is(err, history.ErrTooFarBehind) &&
		!errors.As(err, new(*history.OutOfRetentionError)) &&
		!errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
	r.mu.Lock()
	defer r.mu.Unlock()
	rc.users--
	if failed && r.cur == rc {
		r.log.Warn("kafka catch-up client failed; reconnecting on the next read", zap.Error(err))
		r.cur, rc.stale = nil, true
	}
	if rc.stale && rc.users == 0 {
		_ = rc.Close() // nothing more to do about a client that fails to close
	}
}

func (r *Reader) saramaConfig() *sarama.Config {
	sc := baseConfig(r.cfg.ClientID + "-catchup")
	// A read stops at its last offset, so it long-polls the log's end only until its
	// partition consumer is closed, or until its timeout when that record is not there
	// (compacted away, a transaction marker). Short, because the reads share connections and
	// a broker answers one request per connection at a time: another Read's ListOffsets
	// waits behind that poll (100 ms, the live consumer's, cost each resume about that much).
	sc.Consumer.MaxWaitTime = 20 * time.Millisecond
	// Bounded: a catch-up holds what it fetched until it ends, and Readers run at once.
	sc.Consumer.Fetch.Default = 256 << 10
	sc.ChannelBufferSize = 64
	return sc
}
