// This file is duplicated in ws-single (internal/server/rawws_test.go) on purpose: the server layer is
// the same for one hub loop and for N shards; they may diverge.

package server

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// WebSocket opcodes, for hand-made frames.
const (
	opCont  = 0x0
	opText  = 0x1
	opBin   = 0x2
	opClose = 0x8
	opPing  = 0x9
	opPong  = 0xa
)

// rawClient is a WebSocket client on a raw socket, for what a well-behaved
// library will not do: pings in bulk, unmasked or malformed frames, a huge
// declared length, a client that never reads or never answers a close.
type rawClient struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

// rawDial connects and upgrades; rcvbuf > 0 shrinks the socket's receive
// buffer first, so a client that does not read stalls the server quickly.
func (f *fixture) rawDial(rcvbuf int) *rawClient {
	f.t.Helper()
	return f.rawDialMSS(rcvbuf, 0)
}

// rawDialMSS is rawDial announcing a maximum segment size of mss > 0, as a WAN link's: the
// server's kernel then keeps about 70 KB unsent for a client that reads slowly, not the
// megabytes loopback's 64 KB segments let it.
func (f *fixture) rawDialMSS(rcvbuf, mss int) *rawClient {
	f.t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	d.Control = func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			if rcvbuf > 0 {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			}
			if mss > 0 && serr == nil {
				serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, mss)
			}
		})
		if err != nil {
			return err
		}
		return serr
	}
	nc, err := d.Dial("tcp", f.addr)
	if err != nil {
		f.t.Fatalf("dial: %v", err)
	}
	f.t.Cleanup(func() { _ = nc.Close() })
	c := &rawClient{t: f.t, nc: nc, br: bufio.NewReader(nc)}
	req := "GET /ws HTTP/1.1\r\nHost: " + f.addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
	c.write([]byte(req))
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		f.t.Fatalf("handshake = %v, %v", resp, err)
	}
	_ = nc.SetReadDeadline(time.Time{})
	return c
}

// frame encodes one frame with FIN set; a client frame is masked unless told.
func frame(op byte, payload []byte, masked bool) []byte {
	return frameHeader(op, true, uint64(len(payload)), masked, payload)
}

// frameHeader encodes a frame header declaring length, followed by payload
// (masked when masked), which may be shorter than length.
func frameHeader(op byte, fin bool, length uint64, masked bool, payload []byte) []byte {
	b0 := op
	if fin {
		b0 |= 0x80
	}
	b := []byte{b0}
	var m byte
	if masked {
		m = 0x80
	}
	switch {
	case length < 126:
		b = append(b, m|byte(length))
	case length < 1<<16:
		b = append(b, m|126, byte(length>>8), byte(length))
	default:
		b = append(b, m|127)
		b = binary.BigEndian.AppendUint64(b, length)
	}
	if !masked {
		return append(b, payload...)
	}
	key := [4]byte{0x12, 0x34, 0x56, 0x78}
	b = append(b, key[:]...)
	for i, x := range payload {
		b = append(b, x^key[i%4])
	}
	return b
}

func (c *rawClient) write(b []byte) {
	c.t.Helper()
	_ = c.nc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.nc.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// readFrame reads one server frame (unmasked) within timeout.
func (c *rawClient) readFrame(timeout time.Duration) (op byte, payload []byte, err error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(timeout))
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var l [2]byte
		if _, err := io.ReadFull(c.br, l[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		if _, err := io.ReadFull(c.br, l[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(l[:])
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(c.br, payload); err != nil {
		return 0, nil, err
	}
	return h[0] & 0x0f, payload, nil
}

// gotClose is a close frame as read: its code and text.
type gotClose struct {
	code websocket.StatusCode
	text string
}

// untilClose reads frames until the server's close frame, answers it with a
// close frame as clients do (ending the server's linger), and returns it with
// how many frames of each opcode came before it and the text frames.
func (c *rawClient) untilClose(timeout time.Duration) (gotClose, map[byte]int, []string) {
	c.t.Helper()
	seen := map[byte]int{}
	var texts []string
	deadline := time.Now().Add(timeout)
	for {
		op, p, err := c.readFrame(time.Until(deadline))
		if err != nil {
			c.t.Fatalf("reading until the close frame (after %v): %v", seen, err)
		}
		if op == opClose {
			_ = c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
			_, _ = c.nc.Write(frame(opClose, p[:min(len(p), 2)], true))
			if len(p) < 2 {
				return gotClose{code: websocket.StatusNoStatusRcvd}, seen, texts
			}
			return gotClose{code: websocket.StatusCode(binary.BigEndian.Uint16(p)), text: string(p[2:])}, seen, texts
		}
		seen[op]++
		if op == opText {
			texts = append(texts, string(p))
		}
	}
}

func (cf gotClose) String() string { return fmt.Sprintf("%d %q", cf.code, cf.text) }
