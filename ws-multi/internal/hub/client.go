package hub

import (
	"sync"
	"time"

	"github.com/adred-codev/ws_poc/ws-multi/internal/history"
	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// Conn is the socket side of a client, implemented by the server.
type Conn interface {
	// Write writes a prefix of msgs to the socket in order, from the goroutine that owns
	// the client (ws-single's loop, or the client's shard in ws-multi), so it must not wait
	// for the socket. It takes messages until its buffer holds more than about 64 KiB that
	// the socket did not take, and returns what it took (w.Lines >= 1 unless err) and
	// whether the socket took every byte of it. When it did not, the rest waits for Flush,
	// and Write is not called again before Flush has returned.
	Write(msgs []*protocol.Message) (w Written, done bool, err error)
	// Flush writes what the last Write left over, waiting for the socket within the write
	// timeout. It runs on the client's flusher goroutine, which the hub starts.
	Flush() error
	// Overflow reports that the client's queue is past a limit and the client is not
	// draining it (doc.go, Slow consumers). It is called from the goroutine that owns the
	// client and must not block: the connection closes itself with 1008 "slow" elsewhere.
	Overflow()
}

// Written is what one Write put on the socket: lines (messages), frames, bytes and the
// oldest record's timestamp (zero if none). The shard counts it in the metrics once the
// socket took all of it (at once or after Flush), summed per round: per write, the shards'
// adds on the same counters would cost cache-line traffic between cores.
type Written struct {
	Lines, Frames, Bytes int
	First                time.Time
}

// size is the bytes of the messages written, as the queue counts them (their Wire): the
// frames' bytes without the '\n' joining the lines of a frame.
func (w Written) size() int { return w.Bytes - (w.Lines - w.Frames) }

// Client is one connection as the hub sees it. The server's handler goroutine owns it:
// Register, then Handle/Reject/Sync while reading, then Unregister and Wait.
type Client struct {
	conn  Conn
	shard *shard // set by Register, before the shard sees the client

	// Owned by the shard goroutine (see doc.go, invariant 1).
	subs         map[string]int      // subscription (channel or "<topic>:*") -> index in its subscriber list
	maxSubs      int                 // the client's own channel cap (Permit); 0: Config.MaxSubscriptions
	removed      bool                // out of the shard's index
	gone         bool                // no more deliveries: cut, failed, unregistered
	dirty        bool                // in the shard's list of clients to write to
	flushing     bool                // a flusher finishes a write the socket did not take at once
	pending      []*protocol.Message // queued, not yet written
	resliced     bool                // pending's front was cut off by a partial take (queue.go)
	pendingBytes int                 // bytes of pending
	inflight     int                 // messages of the write being flushed
	inflightB    int                 // bytes of inflight
	owed         Written             // the flushing write's figures, counted once it is out
	// The slow rule's state (queue.go): when the write being flushed started waiting for
	// its socket, and when the queue went past a limit (zero while it is not).
	flushSince time.Time
	overSince  time.Time
	synced     chan struct{} // a Sync waiting for the queue to empty; closed then

	// Positions and resume (resume.go, mark.go).
	topics     map[string]topicHold   // topic -> how c holds it in the shard's topic index (gaps and marks)
	positioned bool                   // asked for positions: gets marks
	skip       map[history.Part]int64 // partitions where c is ahead: live records up to the offset are dropped
	recovering *recovery              // a Kafka catch-up in progress; c's writes stop at its place
	deferred   []event                // requests read meanwhile, applied after it

	conf *conflation // subscriptions that conflate (conflate.go); nil until c asks for one

	// flushers counts the client's flusher goroutine; Wait waits for it. The shard adds
	// to it, and starts none once it handled the client's unregister.
	flushers sync.WaitGroup
}

// NewClient returns a client whose messages are written to conn.
func NewClient(conn Conn) *Client {
	return &Client{conn: conn, subs: make(map[string]int)}
}

// Wait blocks until the client's flusher goroutine has ended. Call it after Unregister
// returned, when no new flusher can start.
func (c *Client) Wait() { c.flushers.Wait() }

// maxSpareCap bounds the queue slice a client keeps between bursts: a larger one, grown by a
// rare burst, goes back to the garbage collector instead of staying on an idle connection.
const maxSpareCap = 64

func reusable(s []*protocol.Message) []*protocol.Message {
	if cap(s) > maxSpareCap {
		return nil
	}
	return s[:0]
}
