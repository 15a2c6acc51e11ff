package load

// A throttled link: a client on a slow (mobile) network reads its socket at most at a
// given rate. The kernel must not absorb the backlog on the client's side either, so the
// socket has a small receive buffer (slowRcvBuf) as slow consumers have: what the client
// has not read waits in the server (its queue, its socket's send buffer), where the
// server can see that the client is behind.

import (
	"net"
	"sync"
	"time"
)

// throttleBurst is the token bucket's size in bytes and the most one Read takes from the
// socket: at 20 KB/s about 20 reads a second per client, each after a sleep, so a
// throttled client costs a timer wake-up per burst and never spins.
const throttleBurst = 1024

// bucket is a token bucket of bytes: it fills at rate bytes per second up to burst.
// It is not safe for concurrent use (one reader per connection).
type bucket struct {
	rate   float64 // bytes per second
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate float64, burst int, now time.Time) *bucket {
	return &bucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: now}
}

// wait is how long from now until n bytes of tokens are there (0 when they are).
func (b *bucket) wait(n int, now time.Time) time.Duration {
	b.refill(now)
	short := float64(n) - b.tokens
	if short <= 0 {
		return 0
	}
	return time.Duration(short / b.rate * float64(time.Second))
}

// take spends n bytes of tokens (read from the socket).
func (b *bucket) take(n int, now time.Time) {
	b.refill(now)
	b.tokens -= float64(n)
}

func (b *bucket) refill(now time.Time) {
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(b.burst, b.tokens+d.Seconds()*b.rate)
		b.last = now
	}
}

// throttledConn is a net.Conn whose reads take at most rate bytes per second from the
// socket (bursts of up to throttleBurst). Writes are not throttled: a mobile client's
// requests are few. Close wakes a read waiting for tokens.
type throttledConn struct {
	net.Conn
	b     *bucket
	timer *time.Timer // reused across waits: only the reader uses it
	done  chan struct{}
	once  sync.Once
}

func newThrottledConn(c net.Conn, rate float64) *throttledConn {
	return &throttledConn{Conn: c, b: newBucket(rate, throttleBurst, time.Now()), done: make(chan struct{})}
}

// Read waits until the bucket holds min(len(p), throttleBurst) bytes, then reads at most
// that many from the socket.
func (t *throttledConn) Read(p []byte) (int, error) {
	want := min(len(p), throttleBurst)
	if d := t.b.wait(want, time.Now()); d > 0 {
		if t.timer == nil {
			t.timer = time.NewTimer(d)
		} else {
			t.timer.Reset(d)
		}
		select {
		case <-t.timer.C:
		case <-t.done:
			t.timer.Stop()
			return 0, net.ErrClosed
		}
	}
	n, err := t.Conn.Read(p[:want])
	t.b.take(n, time.Now())
	return n, err
}

// Close closes the socket and wakes a read waiting for tokens.
func (t *throttledConn) Close() error {
	t.once.Do(func() { close(t.done) })
	return t.Conn.Close()
}
