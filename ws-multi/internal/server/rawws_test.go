package server

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// WebSocket opcodes for raw frames.
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xa
)

// rawClient is a WebSocket client on a bare TCP socket, for what a library will not send:
// floods, malformed frames, lies about lengths. It never answers anything by itself.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	br   *bufio.Reader
}

// host is the server's host:port.
func (e *env) host() string { return strings.TrimPrefix(e.url, "http://") }

// dialTCP opens a plain TCP connection to the server, closed at the end of the test.
func (e *env) dialTCP() net.Conn {
	e.t.Helper()
	conn, err := net.DialTimeout("tcp", e.host(), 5*time.Second)
	if err != nil {
		e.t.Fatalf("dial: %v", err)
	}
	e.t.Cleanup(func() { conn.Close() })
	return conn
}

// dialRaw upgrades a plain TCP connection by hand and returns it after the 101.
func (e *env) dialRaw() *rawClient {
	e.t.Helper()
	conn := e.dialTCP()
	fmt.Fprintf(conn, "GET /ws HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", e.host())
	br := bufio.NewReader(conn)
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		e.t.Fatalf("handshake: %v", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		e.t.Fatalf("handshake: status %d", resp.StatusCode)
	}
	_ = conn.SetReadDeadline(time.Time{})
	return &rawClient{t: e.t, conn: conn, br: br}
}

// wsFrame encodes a client frame; masked as a client must, unless mask is false.
func wsFrame(fin bool, op byte, payload []byte, mask bool) []byte {
	b := []byte{op}
	if fin {
		b[0] |= 0x80
	}
	var m byte
	if mask {
		m = 0x80
	}
	switch n := len(payload); {
	case n < 126:
		b = append(b, m|byte(n))
	case n < 1<<16:
		b = append(b, m|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, m|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if !mask {
		return append(b, payload...)
	}
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	b = append(b, key[:]...)
	for i, c := range payload {
		b = append(b, c^key[i%4])
	}
	return b
}

// send writes raw bytes.
func (c *rawClient) send(b []byte) error {
	_ = c.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err := c.conn.Write(b)
	return err
}

// frame is one server frame.
type frame struct {
	op      byte
	payload []byte
}

// closeCode returns a close frame's code and reason.
func (f frame) closeCode() (int, string) {
	if f.op != opClose || len(f.payload) < 2 {
		return -1, ""
	}
	return int(binary.BigEndian.Uint16(f.payload)), string(f.payload[2:])
}

// readFrame reads one server frame (servers do not mask).
func (c *rawClient) readFrame(timeout time.Duration) (frame, error) {
	_ = c.conn.SetReadDeadline(time.Now().Add(timeout))
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return frame{}, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var l [2]byte
		if _, err := io.ReadFull(c.br, l[:]); err != nil {
			return frame{}, err
		}
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		if _, err := io.ReadFull(c.br, l[:]); err != nil {
			return frame{}, err
		}
		n = binary.BigEndian.Uint64(l[:])
	}
	if n > 64<<20 {
		return frame{}, fmt.Errorf("frame of %d bytes", n)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(c.br, p); err != nil {
		return frame{}, err
	}
	return frame{op: h[0] & 0x0f, payload: p}, nil
}

// untilClose reads frames until a close frame and returns the frames before it and the
// close code and reason; code -1 when the connection ended without one.
func (c *rawClient) untilClose(timeout time.Duration) (before []frame, code int, reason string) {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		f, err := c.readFrame(time.Until(deadline))
		if err != nil {
			return before, -1, err.Error()
		}
		if f.op == opClose {
			code, reason := f.closeCode()
			return before, code, reason
		}
		before = append(before, f)
	}
}

// waitEOF reads until the server closes the socket and returns how long that took; it fails
// the test when the socket is still open after timeout.
func waitEOF(t *testing.T, conn net.Conn, r io.Reader, timeout time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	_ = conn.SetReadDeadline(start.Add(timeout))
	_, err := io.Copy(io.Discard, r)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("socket still open after %v", timeout)
	}
	return time.Since(start)
}
