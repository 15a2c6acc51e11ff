package hub

import (
	"sync"
	"time"

	"github.com/adred-codev/ws_poc/ws-single/internal/history"
	"github.com/adred-codev/ws_poc/ws-single/internal/protocol"
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

// Written is what one Write put on the socket: lines (messages), frames, bytes
// and the oldest record's timestamp (zero if none). The hub counts it in the
// metrics once the socket took all of it (at once or after Flush), one write at
// a time.
type Written struct {
	Lines, Frames, Bytes int
	First                time.Time
}

// Client is one WebSocket client as the hub sees it. Its fields are owned by
// the hub loop, except conn and flushers.
type Client struct {
	conn Conn

	subs         map[string]struct{} // channels, wildcards as "<topic>:*"
	maxSubs      int                 // the client's own channel cap (Permit); 0: Config.MaxSubscriptions
	pending      []*protocol.Message // queued, not yet written
	resliced     bool                // pending's front was cut off by a partial take (queue.go)
	pendingBytes int
	inflight     int    // written but left over by the socket, being flushed
	inflightB    int    // their bytes
	dirty        bool   // in the hub's list of clients to write to
	flushing     bool   // a flusher goroutine finishes a write the socket did not take at once
	gone         bool   // unregistered, overflowed or failed: no more deliveries
	mark         uint64 // last fan-out sequence delivered, de-duplicates wildcards

	// Positions and resume (resume.go).
	topics     map[string]int         // topic -> its channels subscribed (gaps and marks)
	positioned bool                   // asked for positions: gets marks
	skip       map[history.Part]int64 // partitions where c is ahead: live records up to the offset are dropped
	recovering *recovery              // a Kafka catch-up in progress; c's writes stop at its place
	deferred   []event                // requests read meanwhile, applied after it

	conf *conflation // subscriptions that conflate (conflate.go); nil until c asks for one

	// The slow rule (Hub.slow): the clock is read only while the queue is past a
	// limit or when a write is handed to a flusher (the socket did not take it).
	overSince  time.Time // when the queue went past a limit; zero while within them
	flushSince time.Time // when the write in flight was handed to its flusher

	syncs []chan struct{} // Sync callers waiting for an empty queue

	owed Written // the write in flight, counted when its flusher reports it out

	// flushers counts running flusher goroutines; Wait waits for them.
	flushers sync.WaitGroup
}

// NewClient returns a client whose messages are written to conn.
func NewClient(conn Conn) *Client {
	return &Client{conn: conn}
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
