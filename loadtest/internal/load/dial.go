package load

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/coder/websocket"
	"golang.org/x/sys/unix"
)

// slowRcvBuf is the receive buffer of simulated slow consumers and throttled clients:
// small, so the client's kernel does not absorb what they have not read.
const slowRcvBuf = 4096

// throttledMSS is the MSS a throttled client announces, a WAN's (a 1440-byte path MTU, as
// on many mobile networks) instead of loopback's 64 KB. The server's kernel sizes its
// socket's send buffer from the MSS: with loopback's it takes about 3 MB from a client that
// does not read before a write stalls (minutes of a slow link, hidden from the server);
// with this one about 72 KB, as over a real network.
const throttledMSS = 1400

// dialers holds one HTTP client per source address (and per fast/slow/throttled kind),
// reused by every handshake of a group.
type dialers struct {
	fast, slow, throttled []*http.Client
	transports            []*http.Transport
}

// Kinds of connection a dialer makes.
const (
	dialFast      = iota
	dialSlow      // small receive buffer; the client stops reading once subscribed
	dialThrottled // small receive buffer; reads at most Scenario.ThrottleBytesPerSec
)

// newDialers makes the clients; with throttleRate > 0 (bytes per second) also the
// throttled ones, each of whose connections reads through a token bucket of its own.
func newDialers(sources []string, timeout time.Duration, throttleRate float64) (*dialers, error) {
	d := &dialers{}
	addrs := []net.Addr{nil}
	if len(sources) > 0 {
		addrs = addrs[:0]
		for _, s := range sources {
			ip := net.ParseIP(s)
			if ip == nil {
				return nil, fmt.Errorf("source address %q: not an IP address", s)
			}
			addrs = append(addrs, &net.TCPAddr{IP: ip})
		}
	}
	for _, a := range addrs {
		d.fast = append(d.fast, d.client(a, timeout, sockopts(a != nil, 0, 0), 0))
		d.slow = append(d.slow, d.client(a, timeout, sockopts(a != nil, slowRcvBuf, 0), 0))
		if throttleRate > 0 {
			d.throttled = append(d.throttled, d.client(a, timeout, sockopts(a != nil, slowRcvBuf, throttledMSS), throttleRate))
		}
	}
	return d, nil
}

// sockopts returns the dialer's Control: it runs before bind and connect.
//
// With a source address, IP_BIND_ADDRESS_NO_PORT defers the port choice from bind (which
// must find a port free for every destination, a search that grows with the ports in
// use and made handshakes crawl past ~14K sockets) to connect, which needs it free only
// towards this server address. Slow consumers and throttled clients get a small receive
// buffer (rcvbuf bytes, 0: the kernel's), throttled clients a WAN's MSS (mss, 0: the
// route's).
func sockopts(bound bool, rcvbuf, mss int) func(string, string, syscall.RawConn) error {
	if !bound && rcvbuf == 0 && mss == 0 {
		return nil
	}
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if bound {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
			}
			if rcvbuf > 0 && serr == nil {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, rcvbuf)
			}
			if mss > 0 && serr == nil {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_TCP, unix.TCP_MAXSEG, mss)
			}
		})
		return errors.Join(err, serr)
	}
}

// client is an HTTP client dialing from local; with throttleRate > 0 its connections read
// at most that many bytes per second.
func (d *dialers) client(local net.Addr, timeout time.Duration, control func(string, string, syscall.RawConn) error, throttleRate float64) *http.Client {
	nd := &net.Dialer{Timeout: timeout, LocalAddr: local, Control: control}
	dial := nd.DialContext
	if throttleRate > 0 {
		dial = func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := nd.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return newThrottledConn(c, throttleRate), nil
		}
	}
	t := &http.Transport{
		DialContext:         dial,
		TLSHandshakeTimeout: timeout,
		// Every connection is hijacked by the WebSocket upgrade; nothing is pooled.
		DisableKeepAlives: true,
		ForceAttemptHTTP2: false,
	}
	d.transports = append(d.transports, t)
	return &http.Client{Transport: t}
}

// pick returns the client of the kind (dialFast, dialSlow, dialThrottled) for connection
// i: connections rotate over the source addresses.
func (d *dialers) pick(i, kind int) *http.Client {
	switch kind {
	case dialSlow:
		return d.slow[i%len(d.slow)]
	case dialThrottled:
		return d.throttled[i%len(d.throttled)]
	}
	return d.fast[i%len(d.fast)]
}

func (d *dialers) close() {
	for _, t := range d.transports {
		t.CloseIdleConnections()
	}
}

// dialCause names why a handshake failed, for the failures-by-cause table.
func dialCause(ctx context.Context, resp *http.Response, err error) string {
	if resp != nil && resp.StatusCode != http.StatusSwitchingProtocols {
		return fmt.Sprintf("http_%d", resp.StatusCode)
	}
	return netCause(ctx, err, "handshake_timeout")
}

// closeCause names why an open connection ended.
func closeCause(ctx context.Context, err error) string {
	var ce websocket.CloseError
	if errors.As(err, &ce) {
		if ce.Reason != "" {
			return fmt.Sprintf("close_%d_%s", int(ce.Code), ce.Reason)
		}
		return fmt.Sprintf("close_%d", int(ce.Code))
	}
	return netCause(ctx, err, "timeout")
}

func netCause(ctx context.Context, err error, timeout string) string {
	switch {
	case err == nil:
		return "none"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "reset"
	case errors.Is(err, syscall.EADDRNOTAVAIL), errors.Is(err, syscall.EADDRINUSE):
		return "no_source_port"
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return "fd_limit"
	case errors.Is(err, syscall.EPIPE):
		return "broken_pipe"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		return timeout
	case ctx.Err() != nil:
		return "canceled"
	case strings.Contains(err.Error(), "EOF"):
		return "eof"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return timeout
	}
	return "other"
}
