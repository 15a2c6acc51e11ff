// This file is duplicated in ws-multi (internal/server/nonblock_unix.go) on purpose: the variants
// share no library of ours; they may diverge.

//go:build unix

package server

import (
	"errors"
	"net"
	"syscall"
)

// nonBlockingWriter returns a write that takes as many bytes as the socket's send buffer has
// room for now and never waits (Go keeps its sockets in non-blocking mode; net.Conn's Write
// would park the goroutine until the rest fits). It returns nil for a connection that is not a
// socket.
func nonBlockingWriter(c net.Conn) func([]byte) (int, error) {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	w := &rawWriter{rc: rc}
	w.fn = w.write // one closure for the connection's life, not one per write
	return w.Write
}

type rawWriter struct {
	rc  syscall.RawConn
	fn  func(fd uintptr) bool
	p   []byte
	n   int
	err error
}

func (w *rawWriter) Write(p []byte) (int, error) {
	w.p = p
	err := w.rc.Write(w.fn)
	n, werr := w.n, w.err
	w.p, w.n, w.err = nil, 0, nil
	if err != nil {
		return 0, err // the socket is closed
	}
	return n, werr
}

// write runs inside RawConn.Write; returning true tells it not to wait for writability.
func (w *rawWriter) write(fd uintptr) bool {
	for len(w.p) > 0 {
		n, err := syscall.Write(int(fd), w.p)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if n > 0 {
			w.n += n
			w.p = w.p[n:]
		}
		if err != nil {
			if !errors.Is(err, syscall.EAGAIN) {
				w.err = err
			}
			break
		}
	}
	return true
}
