package load

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

func TestBucketWait(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	ms := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Millisecond) }
	tests := []struct {
		name  string
		taken []int     // bytes taken at t0, in order
		at    time.Time // when wait is asked
		want  int       // bytes asked
		wait  time.Duration
	}{
		{"full bucket: no wait", nil, t0, 1024, 0},
		{"emptied: the whole burst at the rate", []int{1024}, t0, 1024, 1024 * time.Millisecond},
		{"emptied: half a burst", []int{1024}, t0, 512, 512 * time.Millisecond},
		{"refilled in part meanwhile", []int{1024}, ms(256), 512, 256 * time.Millisecond},
		{"refill stops at the burst", []int{1024}, ms(60_000), 1024, 0},
		{"overdrawn (a read past the tokens) waits it off", []int{1024, 1000}, t0, 24, 1024 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := newBucket(1000, 1024, t0) // 1000 bytes per second: 1 ms per byte
			for _, n := range tt.taken {
				b.take(n, t0)
			}
			if got := b.wait(tt.want, tt.at); got != tt.wait {
				t.Errorf("wait(%d) at +%s = %s, want %s", tt.want, tt.at.Sub(t0), got, tt.wait)
			}
		})
	}
}

// TestThrottledConnRate reads 6000 bytes through a 4000 B/s throttled connection: the
// first burst (1024 bytes) goes at once, the rest at the rate, so the read takes about
// 1.25 s and never less; no read takes more than a burst.
func TestThrottledConnRate(t *testing.T) {
	t.Parallel()
	a, b := tcpPair(t)
	const total = 6000
	go func() {
		_, _ = a.Write(make([]byte, total))
	}()
	tc := newThrottledConn(b, 4000)
	defer tc.Close()
	start := time.Now()
	buf := make([]byte, 4096)
	got := 0
	for got < total {
		n, err := tc.Read(buf)
		if err != nil {
			t.Fatalf("read after %d bytes: %v", got, err)
		}
		if n > throttleBurst {
			t.Fatalf("one read took %d bytes, more than a burst (%d)", n, throttleBurst)
		}
		got += n
	}
	elapsed := time.Since(start)
	floor := time.Duration(float64(total-throttleBurst) / 4000 * float64(time.Second))
	if elapsed < floor-20*time.Millisecond {
		t.Errorf("read %d bytes in %s, faster than the rate allows (%s)", total, elapsed, floor)
	}
	if elapsed > floor+2*time.Second {
		t.Errorf("read %d bytes in %s, far slower than the rate (%s)", total, elapsed, floor)
	}
}

// TestThrottledConnCloseWakesRead: a read waiting for tokens ends when the connection is
// closed, without waiting for them.
func TestThrottledConnCloseWakesRead(t *testing.T) {
	t.Parallel()
	a, b := tcpPair(t)
	if _, err := a.Write(make([]byte, 2*throttleBurst)); err != nil {
		t.Fatal(err)
	}
	tc := newThrottledConn(b, 10) // the second burst is 100 s away
	buf := make([]byte, throttleBurst)
	if _, err := io.ReadFull(tc, buf); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := tc.Read(buf)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if err := tc.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("read after close: %v, want net.ErrClosed", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a read waiting for tokens did not end on close")
	}
}

// tcpPair is a connected loopback TCP pair, closed at the test's end.
func tcpPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c
	}()
	b, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	a := <-accepted
	if a == nil {
		b.Close()
		t.Fatal("accept failed")
	}
	t.Cleanup(func() {
		a.Close()
		b.Close()
	})
	return a, b
}
