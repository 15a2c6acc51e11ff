package e2etest

// End-to-end tests of docs/PROTOCOL.md "Positions and resume" across processes: a client
// moving between instances of the two variants after a SIGKILL (here) and after a drain
// (drain_test.go), a live gap after the server's offset fell out of the log (gap_test.go),
// and /readyz during a warm start (readyz_test.go). The client that keeps positions is in
// posclient_test.go, the keyed sequence producer and its check in sequences_test.go.

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// TestResumeAcrossVariants: a client subscribed positioned on an instance of one variant
// reads while a producer writes; the instance is killed (SIGKILL) mid-stream; the client
// resumes on an instance of the other variant, on the same broker, from the positions it
// kept. Per key it gets every record once, in order.
func TestResumeAcrossVariants(t *testing.T) {
	for _, from := range variants {
		for _, to := range variants {
			if from == to {
				continue
			}
			t.Run(from.name+"_to_"+to.name, func(t *testing.T) {
				broker := startBroker(t)
				env := []string{"WS_MARK_INTERVAL=100ms"}
				a := startServer(t, from.name, binary(t, from.envVar, from.name), broker, env...)
				b := startServer(t, to.name, binary(t, to.envVar, to.name), broker, env...)
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				defer cancel()
				keys := []string{uniqueKey("move"), uniqueKey("move"), uniqueKey("move"), uniqueKey("move")}
				channels := tradesChannels(keys)

				c := dialPositioned(ctx, t, a.wsURL())
				c.subscribePositioned(ctx, t, "sub", channels...)
				prod := startSeqProducer(t, broker, keys, 2*time.Millisecond)
				c.waitCount(ctx, t, "messages", 300, isMessage)
				_ = a.stop(t, syscall.SIGKILL)
				if err := c.ended(ctx, t); err == nil {
					t.Fatal("the connection to the killed instance did not end")
				}
				time.Sleep(200 * time.Millisecond) // the producer goes on meanwhile
				epochs, pos := c.snapshot()

				d := dialPositioned(ctx, t, b.wsURL())
				rec := d.resume(ctx, t, "r", channels, epochs, pos)
				if rec.Epochs["trades"] != epochs["trades"] {
					t.Errorf("epoch of trades %q on %s, %q on %s: one broker, one topic id", rec.Epochs["trades"], to.name, epochs["trades"], from.name)
				}
				time.Sleep(200 * time.Millisecond) // live records too
				counts := prod.halt(t)
				d.waitSeqs(ctx, t, counts, keys)
				first, second := c.all(), d.all()
				checkSequences(t, counts, keys, first, second)
				t.Logf("%s -> %s: %d records on the killed instance, %d after the resume (recovered from %s), %v produced",
					from.name, to.name, countMessages(first), countMessages(second), rec.Source, counts)
			})
		}
	}
}
