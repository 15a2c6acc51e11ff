package server

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// countingWriter records every Write it gets: one Write is one syscall.
type countingWriter struct {
	writes []string
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.writes = append(w.writes, string(p))
	return len(p), nil
}

func TestCorkWriter(t *testing.T) {
	pool := &sync.Pool{New: func() any { b := make([]byte, 0, 16); return &b }}
	sock := &countingWriter{}
	w := &corkWriter{conn: sock, pool: pool}

	_, _ = w.Write([]byte("direct"))
	w.cork()
	_, _ = w.Write([]byte("a"))
	_, _ = w.Write([]byte("b"))
	if len(sock.writes) != 1 {
		t.Fatalf("corked writes reached the socket: %q", sock.writes)
	}
	if err := w.uncork(time.Second); err != nil {
		t.Fatal(err)
	}
	_, _ = w.Write([]byte("after"))
	if got := strings.Join(sock.writes, "|"); got != "direct|ab|after" {
		t.Fatalf("socket writes = %q, want direct|ab|after", got)
	}
	if w.buf != nil {
		t.Fatal("uncorked writer still holds a buffer")
	}

	// A cork flushes on its own past corkFlushBytes.
	sock.writes = nil
	w.cork()
	big := bytes.Repeat([]byte("x"), corkFlushBytes)
	_, _ = w.Write(big)
	_, _ = w.Write([]byte("tail"))
	if len(sock.writes) != 1 || len(sock.writes[0]) != corkFlushBytes {
		t.Fatalf("after %d corked bytes: %d socket writes", corkFlushBytes, len(sock.writes))
	}
	_ = w.uncork(time.Second)
	if len(sock.writes) != 2 || sock.writes[1] != "tail" {
		t.Fatalf("uncork wrote %q", sock.writes[1:])
	}
}

// TestCorkWriterUncorkDeadline: an uncork the peer does not read times out with
// os.ErrDeadlineExceeded, and the deadline does not outlive it.
func TestCorkWriterUncorkDeadline(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	pool := &sync.Pool{New: func() any { b := make([]byte, 0, 16); return &b }}
	w := &corkWriter{conn: a, raw: a, pool: pool}
	w.cork()
	_, _ = w.Write([]byte("stuck"))
	err := w.uncork(20 * time.Millisecond) // nobody reads b
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("uncork = %v, want a deadline error", err)
	}
	// A later straight-through write is not cut by the old deadline.
	done := make(chan error, 1)
	go func() { _, err := w.Write([]byte("later")); done <- err }()
	buf := make([]byte, 5)
	if _, err := b.Read(buf); err != nil || string(buf) != "later" {
		t.Fatalf("read %q, %v", buf, err)
	}
	if err := <-done; err != nil {
		t.Fatalf("write after the uncork deadline: %v", err)
	}
}

// deadlineCounter is a net.Conn that counts SetWriteDeadline calls.
type deadlineCounter struct {
	net.Conn
	sets int
}

func (d *deadlineCounter) SetWriteDeadline(t time.Time) error {
	d.sets++
	return d.Conn.SetWriteDeadline(t)
}

// TestCorkWriterArmsDeadlineLazily: busy writes share one deadline (re-armed only when a
// quarter of the timeout has gone by), and a stalled straight-through write still fails
// within the timeout.
func TestCorkWriterArmsDeadlineLazily(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	go func() { _, _ = io.Copy(io.Discard, b) }()
	dc := &deadlineCounter{Conn: a}
	pool := &sync.Pool{New: func() any { b := make([]byte, 0, 16); return &b }}
	w := &corkWriter{conn: dc, raw: dc, pool: pool, timeout: time.Minute}
	for range 100 {
		w.cork()
		_, _ = w.Write([]byte("frame"))
		if err := w.uncork(time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte("pong")); err != nil {
			t.Fatal(err)
		}
	}
	if dc.sets != 1 {
		t.Errorf("%d SetWriteDeadline calls for 200 writes within a quarter timeout, want 1", dc.sets)
	}

	c, d := net.Pipe() // nobody reads d
	defer c.Close()
	defer d.Close()
	w = &corkWriter{conn: c, raw: c, pool: pool, timeout: 30 * time.Millisecond}
	start := time.Now()
	_, err := w.Write([]byte("stuck"))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("stalled write = %v, want a deadline error", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Errorf("stalled write took %v with a 30ms timeout", el)
	}
}

// TestCorkWriterFullCorkWriteHasDeadline: corked writes that fill the cork write to the socket
// inside Write; with a peer that does not read, that write fails at the deadline too.
func TestCorkWriterFullCorkWriteHasDeadline(t *testing.T) {
	a, b := net.Pipe() // nobody reads b
	defer a.Close()
	defer b.Close()
	pool := &sync.Pool{New: func() any { b := make([]byte, 0, 16); return &b }}
	w := &corkWriter{conn: a, raw: a, pool: pool, timeout: 30 * time.Millisecond}
	w.cork()
	chunk := make([]byte, 1024)
	var err error
	for i := 0; i < 2*corkFlushBytes/len(chunk) && err == nil; i++ {
		_, err = w.Write(chunk)
	}
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("corked writes past %d bytes to a stalled peer = %v, want a deadline error", corkFlushBytes, err)
	}
}
