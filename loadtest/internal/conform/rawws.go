package conform

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"syscall"
	"time"
)

// WebSocket opcodes (RFC 6455 5.2).
const (
	opText  = 0x1
	opClose = 0x8
	opPing  = 0x9
	opPong  = 0xA
)

// rawWS is a WebSocket connection driven by hand: the checks that need frames no client
// library sends (a header without its payload, pings unpaced, a huge frame the client
// keeps writing while it reads) upgrade with a handshake of their own and write frames
// byte by byte.
type rawWS struct {
	conn net.Conn
	br   *bufio.Reader
}

// rawFrame is one frame from the server.
type rawFrame struct {
	opcode  byte
	payload []byte
}

// netDial opens a connection to the server's address, with TLS for a wss URL. A rcvbuf
// above 0 sets the socket's receive buffer, so that what the client does not read stays
// queued at the server.
func (s *suite) netDial(ctx context.Context, rcvbuf int) (net.Conn, error) {
	u, _ := url.Parse(s.cfg.URL) // validated in Config.Validate
	d := net.Dialer{Timeout: 5 * time.Second}
	if rcvbuf > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			})
			return errors.Join(err, serr)
		}
	}
	var conn net.Conn
	var err error
	if u.Scheme == "wss" {
		td := tls.Dialer{NetDialer: &d, Config: &tls.Config{ServerName: u.Hostname(), NextProtos: []string{"http/1.1"}}}
		conn, err = td.DialContext(ctx, "tcp", hostPort(u))
	} else {
		conn, err = d.DialContext(ctx, "tcp", hostPort(u))
	}
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", hostPort(u), err)
	}
	return conn, nil
}

// rawUpgrade dials the suite's URL (see netDial for rcvbuf) and performs the opening
// handshake by hand.
func (s *suite) rawUpgrade(ctx context.Context, rcvbuf int) (*rawWS, error) {
	u, _ := url.Parse(s.cfg.URL) // validated in Config.Validate
	conn, err := s.netDial(ctx, rcvbuf)
	if err != nil {
		return nil, err
	}
	keyBytes := make([]byte, 16)
	_, _ = rand.Read(keyBytes)
	key := base64.StdEncoding.EncodeToString(keyBytes)
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	_, err = fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nUser-Agent: loadtest-conform\r\n\r\n", u.RequestURI(), u.Host, key)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("write the upgrade request: %w", err)
	}
	br := bufio.NewReaderSize(conn, 64<<10)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		conn.Close()
		return nil, fmt.Errorf("read the upgrade response: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		conn.Close()
		return nil, fmt.Errorf("upgrade: status %d, want 101", resp.StatusCode)
	}
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), base64.StdEncoding.EncodeToString(sum[:]); got != want {
		conn.Close()
		return nil, fmt.Errorf("upgrade: Sec-WebSocket-Accept %q, want %q", got, want)
	}
	_ = conn.SetDeadline(time.Time{})
	return &rawWS{conn: conn, br: br}, nil
}

// frameHeader is the header of a final, masked client frame declaring length bytes of
// payload, and its masking key.
func frameHeader(opcode byte, length uint64) ([]byte, [4]byte) {
	h := []byte{0x80 | opcode}
	switch {
	case length < 126:
		h = append(h, 0x80|byte(length))
	case length <= 0xFFFF:
		h = append(h, 0x80|126)
		h = binary.BigEndian.AppendUint16(h, uint16(length))
	default:
		h = append(h, 0x80|127)
		h = binary.BigEndian.AppendUint64(h, length)
	}
	var key [4]byte
	_, _ = rand.Read(key[:])
	return append(h, key[:]...), key
}

// maskBytes masks (or unmasks) p in place; off is the offset of p in the payload.
func maskBytes(p []byte, key [4]byte, off int) {
	for i := range p {
		p[i] ^= key[(off+i)%4]
	}
}

// appendFrame appends one final, masked client frame.
func appendFrame(dst []byte, opcode byte, payload []byte) []byte {
	h, key := frameHeader(opcode, uint64(len(payload)))
	dst = append(dst, h...)
	start := len(dst)
	dst = append(dst, payload...)
	maskBytes(dst[start:], key, 0)
	return dst
}

// appendBadFrame appends a frame with the given first byte (FIN, RSV and opcode bits) and
// payload, masked or not: the frames RFC 6455 forbids a client to send.
func appendBadFrame(dst []byte, first byte, payload []byte, masked bool) []byte {
	h, key := frameHeader(0, uint64(len(payload)))
	h[0] = first
	if !masked {
		h[1] &^= 0x80
		h = h[:len(h)-4]
	}
	dst = append(dst, h...)
	start := len(dst)
	dst = append(dst, payload...)
	if masked {
		maskBytes(dst[start:], key, 0)
	}
	return dst
}

// closePayload is the payload of a close frame.
func closePayload(code uint16, reason string) []byte {
	return append(binary.BigEndian.AppendUint16(nil, code), reason...)
}

// write writes b with a deadline.
func (r *rawWS) write(b []byte, timeout time.Duration) error {
	_ = r.conn.SetWriteDeadline(time.Now().Add(timeout))
	_, err := r.conn.Write(b)
	return err
}

// readFrame reads one server frame. Server frames are never masked.
func (r *rawWS) readFrame() (rawFrame, error) {
	var h [2]byte
	if _, err := io.ReadFull(r.br, h[:]); err != nil {
		return rawFrame{}, err
	}
	f := rawFrame{opcode: h[0] & 0x0F}
	if h[1]&0x80 != 0 {
		return f, errors.New("the server sent a masked frame")
	}
	n := uint64(h[1] & 0x7F)
	switch n {
	case 126:
		var b [2]byte
		if _, err := io.ReadFull(r.br, b[:]); err != nil {
			return f, err
		}
		n = uint64(binary.BigEndian.Uint16(b[:]))
	case 127:
		var b [8]byte
		if _, err := io.ReadFull(r.br, b[:]); err != nil {
			return f, err
		}
		n = binary.BigEndian.Uint64(b[:])
	}
	if n > 64<<20 {
		return f, fmt.Errorf("the server sent a frame of %d bytes", n)
	}
	f.payload = make([]byte, n)
	if _, err := io.ReadFull(r.br, f.payload); err != nil {
		return f, err
	}
	return f, nil
}

// rawClose is how a raw connection ended.
type rawClose struct {
	code   int // -1: no close frame
	reason string
	err    error // why reading stopped without a close frame
	frames []rawFrame
	at     time.Time
}

// readReply reads frames until a text frame holding a reply with id, before deadline.
func (r *rawWS) readReply(id string, deadline time.Time) (Envelope, error) {
	_ = r.conn.SetReadDeadline(deadline)
	for {
		f, err := r.readFrame()
		if err != nil {
			return Envelope{}, fmt.Errorf("waiting for the reply %q: %w", id, err)
		}
		if f.opcode != opText {
			continue
		}
		envs, err := SplitFrame(f.payload)
		if err != nil {
			return Envelope{}, err
		}
		for _, e := range envs {
			if e.Op != "message" && e.IDIs(id) {
				return e, nil
			}
		}
	}
}

// readUntilClose reads frames until the server's close frame, the connection's end or
// the deadline. It skips the server's pings (a raw client does not answer them).
func (r *rawWS) readUntilClose(deadline time.Time) rawClose {
	_ = r.conn.SetReadDeadline(deadline)
	var out rawClose
	for {
		f, err := r.readFrame()
		if err != nil {
			out.code, out.err, out.at = -1, err, time.Now()
			return out
		}
		if f.opcode != opClose {
			out.frames = append(out.frames, f)
			continue
		}
		out.at = time.Now()
		switch {
		case len(f.payload) == 0:
			out.code = 1005
		case len(f.payload) == 1:
			out.code, out.err = -1, errors.New("a close frame with a 1-byte payload")
		default:
			out.code = int(binary.BigEndian.Uint16(f.payload))
			out.reason = string(f.payload[2:])
		}
		return out
	}
}

// count returns how many frames with opcode were read.
func (c rawClose) count(opcode byte) int {
	n := 0
	for _, f := range c.frames {
		if f.opcode == opcode {
			n++
		}
	}
	return n
}

// timedOut reports whether reading stopped at the deadline.
func (c rawClose) timedOut() bool {
	var ne net.Error
	return c.code == -1 && errors.As(c.err, &ne) && ne.Timeout()
}

func (c rawClose) String() string {
	if c.code == -1 {
		return fmt.Sprintf("no close frame (%v)", c.err)
	}
	return fmt.Sprintf("close %d %q", c.code, c.reason)
}

// finish answers the server's close frame (so its close handshake ends at once) and
// closes the socket.
func (r *rawWS) finish(c rawClose) {
	if c.code > 0 && c.code != 1005 {
		_ = r.write(appendFrame(nil, opClose, closePayload(uint16(c.code), "")), time.Second)
	}
	r.conn.Close()
}
