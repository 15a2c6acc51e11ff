package e2etest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/adred-codev/ws_poc/loadtest/internal/conform"
	"github.com/adred-codev/ws_poc/loadtest/internal/dev"
)

// seqRecord is the value of the records the sequence producer writes.
type seqRecord struct {
	Key string `json:"k"`
	Seq int    `json:"seq"`
}

// seqProducer writes to trades, for each key on its own goroutine, records with the key's
// next sequence number, one every interval per key, until halted.
type seqProducer struct {
	stop chan struct{}
	wg   sync.WaitGroup
	keys []string
	next []int   // per key, owned by its goroutine until wg is done
	errs []error // per key, likewise
}

func startSeqProducer(t *testing.T, broker string, keys []string, every time.Duration) *seqProducer {
	t.Helper()
	prod := newProducer(t, broker)
	p := &seqProducer{stop: make(chan struct{}), keys: keys, next: make([]int, len(keys)), errs: make([]error, len(keys))}
	for i, k := range keys {
		p.wg.Go(func() {
			tick := time.NewTicker(every)
			defer tick.Stop()
			for {
				select {
				case <-p.stop:
					return
				case <-tick.C:
				}
				v, _ := json.Marshal(seqRecord{Key: k, Seq: p.next[i]})
				if _, _, err := prod.SendMessage(&sarama.ProducerMessage{Topic: dev.TradesTopic, Key: sarama.StringEncoder(k), Value: sarama.ByteEncoder(v)}); err != nil {
					p.errs[i] = err
					return
				}
				p.next[i]++
			}
		})
	}
	t.Cleanup(func() { p.halt(t) })
	return p
}

// halt stops the producer and returns how many records it wrote per key.
func (p *seqProducer) halt(t *testing.T) map[string]int {
	t.Helper()
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	p.wg.Wait()
	out := make(map[string]int, len(p.keys))
	for i, k := range p.keys {
		if p.errs[i] != nil {
			t.Fatalf("producer of %s: %v", k, p.errs[i])
		}
		out[k] = p.next[i]
	}
	return out
}

// seqsOf returns, per key, the sequence numbers of the sequence records in lines, in order.
func seqsOf(lines []conform.Envelope) map[string][]int {
	out := map[string][]int{}
	for _, e := range lines {
		if e.Op != "message" {
			continue
		}
		var r seqRecord
		if json.Unmarshal(e.Data, &r) != nil || r.Key == "" {
			continue
		}
		out[r.Key] = append(out[r.Key], r.Seq)
	}
	return out
}

// checkSequences: for each key, what the connections got, one after the other, is every
// record produced, once, in order.
func checkSequences(t *testing.T, counts map[string]int, keys []string, conns ...[]conform.Envelope) {
	t.Helper()
	got := map[string][]int{}
	for _, lines := range conns {
		for k, seqs := range seqsOf(lines) {
			got[k] = append(got[k], seqs...)
		}
	}
	for _, k := range keys {
		seqs := got[k]
		seen := map[int]int{}
		var dups, out []int
		for i, s := range seqs {
			seen[s]++
			if seen[s] == 2 {
				dups = append(dups, s)
			}
			if i > 0 && s <= seqs[i-1] && len(out) < 5 {
				out = append(out, s)
			}
		}
		var lost []int
		for s := range counts[k] {
			if seen[s] == 0 {
				lost = append(lost, s)
			}
		}
		if len(lost) > 0 || len(dups) > 0 || len(out) > 0 {
			t.Errorf("key %s: %d produced, %d received; lost %s, duplicated %s, out of order at %v", k, counts[k], len(seqs), brief(lost), brief(dups), out)
		}
	}
}

func brief(xs []int) string {
	if len(xs) == 0 {
		return "none"
	}
	if len(xs) > 10 {
		return fmt.Sprintf("%v... (%d)", xs[:10], len(xs))
	}
	return fmt.Sprint(xs)
}

// waitSeqs waits until c has, per key, the sequence number counts[key]-1.
func (c *posClient) waitSeqs(ctx context.Context, t *testing.T, counts map[string]int, keys []string) {
	t.Helper()
	for _, k := range keys {
		last := counts[k] - 1
		if last < 0 {
			continue
		}
		c.waitLine(ctx, t, fmt.Sprintf("record %d of key %s", last, k), func(e conform.Envelope) bool {
			var r seqRecord
			return e.Op == "message" && json.Unmarshal(e.Data, &r) == nil && r.Key == k && r.Seq == last
		})
	}
}

func tradesChannels(keys []string) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = "trades:" + k
	}
	return out
}

func isMessage(e conform.Envelope) bool { return e.Op == "message" }

func countMessages(lines []conform.Envelope) int {
	n := 0
	for _, e := range lines {
		if e.Op == "message" {
			n++
		}
	}
	return n
}
