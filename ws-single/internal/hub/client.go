package hub

import (
	"sync"
	"time"
)

// Message is one line for clients: a Kafka record's "message" or a reply. Wire
// holds its final bytes; a record's Message is built once and shared by every
// recipient, so nobody may modify it after Publish.
type Message struct {
	// Channel and Topic route a record; both are empty for a reply.
	Channel string
	Topic   string
	// Wire is the single JSON line sent to clients, without a newline.
	Wire []byte
	// Time is the Kafka record timestamp (delivery latency); zero for a reply.
	Time time.Time
}

// Conn is the socket side of a client, implemented by the server.
type Conn interface {
	// Write writes msgs to the socket in order. It is called only from the
	// client's writer goroutine, never concurrently with itself.
	Write(msgs []*Message) error
	// Overflow reports that the client's send queue passed a limit. It is called
	// from the hub loop and must not block: the connection closes itself with
	// 1008 "slow" elsewhere.
	Overflow()
}

// Client is one WebSocket client as the hub sees it. Its fields are owned by
// the hub loop except batch (the hand-off to the writer) and writers.
type Client struct {
	conn Conn

	subs          map[string]struct{} // channels, wildcards as "<topic>:*"
	pending       []*Message          // queued, not yet handed to the writer
	spare         []*Message          // the writer's last batch, cleared, reused
	pendingBytes  int
	inflightMsgs  int // handed to the writer and not yet reported written
	inflightBytes int
	writing       bool          // a writer goroutine is running
	waiting       bool          // its writer is parked for a writer slot (hand-off unanswered)
	queued        bool          // in the hub's FIFO of clients waiting for a slot
	gone          bool          // unregistered, overflowed or failed: no more deliveries
	mark          uint64        // last broadcast sequence delivered, de-duplicates wildcards
	slot          int           // index in the hub's batches out, -1 when none counts
	outAt         time.Duration // when its counted batch went out, since Hub.epoch

	// batch carries the next batch from the hub loop to the writer. The loop
	// answers each hand-off request exactly once. Size 2: a writer that was just
	// told "nil, stop" may not have taken that answer yet when its successor
	// asks; the loop must not wait for it (see doc.go).
	batch chan []*Message
	// writers counts running writer goroutines; Wait waits for them.
	writers sync.WaitGroup
}

// NewClient returns a client whose messages are written to conn.
func NewClient(conn Conn) *Client {
	return &Client{conn: conn, batch: make(chan []*Message, 2), slot: -1}
}

// Conn returns the connection the client writes to.
func (c *Client) Conn() Conn { return c.conn }

// Wait blocks until the client's writer goroutine has ended. Call it after
// Unregister has returned, when no new writer can start.
func (c *Client) Wait() { c.writers.Wait() }

// keepSlice is the largest queue capacity an idle client keeps for reuse; a
// burst's bigger slices are dropped so that idle clients stay small.
const keepSlice = 64

func reusable(s []*Message) []*Message {
	if cap(s) > keepSlice {
		return nil
	}
	return s[:0]
}
