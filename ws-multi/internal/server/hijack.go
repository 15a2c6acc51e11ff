// This file is duplicated from ws-single (internal/server/upgrade.go) on purpose: both
// variants must spend the same memory per idle connection; they may diverge.

package server

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// Socket buffer sizes of an upgraded connection. net/http hands over a hijacked connection
// with 4 KiB read and write buffers, which coder/websocket keeps for the connection's life:
// 8 KiB of every idle connection. Client frames are small and rare, so a 512-byte read buffer
// costs nothing; a 1 KiB write buffer still carries a typical message and its header in one
// syscall, and bufio writes larger payloads straight through.
const (
	connReadBuffer  = 512
	connWriteBuffer = 1024
)

// upgradeWriter remembers the status Accept answered with, so a 403 for a bad Origin can be
// counted, closes the connection after any other answer than 101, and hijacks with small
// buffers.
type upgradeWriter struct {
	http.ResponseWriter
	status int
	corks  *sync.Pool // cork buffers shared by every connection
	// timeout bounds every socket write (WS_WRITE_TIMEOUT; see corkWriter).
	timeout time.Duration
	// limit bounds the bytes of control frames waiting for the socket (WS_SEND_QUEUE_BYTES).
	limit int
	cut   func(error) // told when the cork cuts the client (see corkWriter)
	cork  *corkWriter // set by Hijack: the socket under coder/websocket's write buffer
	raw   net.Conn    // set by Hijack: the socket
}

// WriteHeader implements http.ResponseWriter. A refused upgrade (403, 426, ...) carries
// Connection: close, so net/http closes the socket after the answer instead of keeping it
// for another request.
func (w *upgradeWriter) WriteHeader(code int) {
	w.status = code
	if code != http.StatusSwitchingProtocols {
		w.Header().Set("Connection", "close")
	}
	w.ResponseWriter.WriteHeader(code)
}

// Hijack implements http.Hijacker, which coder/websocket looks for.
func (w *upgradeWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	// Bytes the client sent right behind its handshake may already sit in net/http's read
	// buffer; they must stay buffered in ours, since coder/websocket only keeps what is
	// buffered when it re-points the reader at the raw connection.
	br := bufio.NewReaderSize(conn, connReadBuffer)
	if n := brw.Reader.Buffered(); n > 0 {
		ahead, _ := brw.Reader.Peek(n)
		br = bufio.NewReaderSize(io.MultiReader(bytes.NewReader(bytes.Clone(ahead)), conn), max(n, connReadBuffer))
		if _, err := br.Peek(n); err != nil {
			conn.Close()
			return nil, nil, fmt.Errorf("server: keep read-ahead bytes: %w", err)
		}
	}
	w.cork = newCorkWriter(conn, w.corks, w.timeout, w.limit, w.cut)
	w.raw = conn
	return conn, bufio.NewReadWriter(br, bufio.NewWriterSize(w.cork, connWriteBuffer)), nil
}
