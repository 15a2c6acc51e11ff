package conform

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"net"
	"strings"
	"testing"
	"time"
)

func TestFrameHeader(t *testing.T) {
	t.Parallel()
	tests := []struct {
		length  uint64
		wantLen int // header bytes, mask key included
		second  byte
	}{
		{length: 0, wantLen: 6, second: 0x80},
		{length: 125, wantLen: 6, second: 0x80 | 125},
		{length: 126, wantLen: 8, second: 0x80 | 126},
		{length: 0xFFFF, wantLen: 8, second: 0x80 | 126},
		{length: 0x10000, wantLen: 14, second: 0x80 | 127},
		{length: 1 << 40, wantLen: 14, second: 0x80 | 127},
	}
	for _, tt := range tests {
		h, key := frameHeader(opText, tt.length)
		if len(h) != tt.wantLen || h[0] != 0x81 || h[1] != tt.second {
			t.Fatalf("frameHeader(%d) = % x", tt.length, h)
		}
		if !bytes.Equal(h[len(h)-4:], key[:]) {
			t.Fatalf("frameHeader(%d): the mask key is not last", tt.length)
		}
		if tt.wantLen == 14 && binary.BigEndian.Uint64(h[2:10]) != tt.length {
			t.Fatalf("frameHeader(%d): length % x", tt.length, h[2:10])
		}
	}
}

func TestAppendFrameMasks(t *testing.T) {
	t.Parallel()
	payload := []byte("hello, server")
	f := appendFrame(nil, opPing, payload)
	var key [4]byte
	copy(key[:], f[2:6])
	got := append([]byte(nil), f[6:]...)
	maskBytes(got, key, 0)
	if f[0] != 0x89 || int(f[1]&0x7F) != len(payload) || !bytes.Equal(got, payload) {
		t.Fatalf("appendFrame = % x", f)
	}
}

// TestReadUntilClose feeds server frames (unmasked) through a pipe.
func TestReadUntilClose(t *testing.T) {
	t.Parallel()
	client, server := net.Pipe()
	defer client.Close()
	go func() {
		defer server.Close()
		var b []byte
		b = append(b, 0x8A, 2, 'p', '1')     // pong
		b = append(b, 0x81, 126, 0x01, 0x00) // text of 256 bytes
		b = append(b, bytes.Repeat([]byte("x"), 256)...)
		b = append(b, 0x88, 12, 0x03, 0xF0) // close 1008
		b = append(b, "rate_limit"...)
		_, _ = server.Write(b)
	}()
	r := &rawWS{conn: client, br: bufio.NewReader(client)}
	res := r.readUntilClose(time.Now().Add(5 * time.Second))
	if res.code != 1008 || res.reason != "rate_limit" || res.count(opPong) != 1 || res.count(opText) != 1 {
		t.Fatalf("readUntilClose = %v, %d frames", res, len(res.frames))
	}
}

func TestPaddedValueAndEcho(t *testing.T) {
	t.Parallel()
	for _, n := range []int{12, 100, 65536} {
		if v := paddedValue(n); len(v) != n || !strings.HasPrefix(string(v), `{"pad":"`) || !strings.HasSuffix(string(v), `"}`) {
			t.Fatalf("paddedValue(%d) has %d bytes", n, len(v))
		}
	}
	if got := echoed(strings.Repeat("a", 64)); got != `"`+strings.Repeat("a", 64)+`"` {
		t.Fatalf("64 bytes are quoted whole: %s", got)
	}
	if got := echoed(strings.Repeat("a", 65)); got != `"`+strings.Repeat("a", 64)+`..."` {
		t.Fatalf("65 bytes are cut: %s", got)
	}
}
