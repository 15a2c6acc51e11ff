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

// slowRcvBuf is the receive buffer of simulated slow consumers: small, so the server's send
// queue, not megabytes of loopback socket buffer, absorbs what they do not read.
const slowRcvBuf = 4096

// dialers holds one HTTP client per source address (and per fast/slow kind), reused by every
// handshake of a group.
type dialers struct {
	fast, slow []*http.Client
	transports []*http.Transport
}

func newDialers(sources []string, timeout time.Duration) (*dialers, error) {
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
		d.fast = append(d.fast, d.client(a, timeout, sockopts(a != nil, false)))
		d.slow = append(d.slow, d.client(a, timeout, sockopts(a != nil, true)))
	}
	return d, nil
}

// sockopts returns the dialer's Control: it runs before bind and connect.
//
// With a source address, IP_BIND_ADDRESS_NO_PORT defers the port choice from bind (which
// must find a port free for every destination, a search that grows with the ports in
// use and made handshakes crawl past ~14K sockets) to connect, which needs it free only
// towards this server address. Slow consumers get a small receive buffer.
func sockopts(bound, slow bool) func(string, string, syscall.RawConn) error {
	if !bound && !slow {
		return nil
	}
	return func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			if bound {
				serr = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
			}
			if slow && serr == nil {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, slowRcvBuf)
			}
		})
		return errors.Join(err, serr)
	}
}

func (d *dialers) client(local net.Addr, timeout time.Duration, control func(string, string, syscall.RawConn) error) *http.Client {
	nd := &net.Dialer{Timeout: timeout, LocalAddr: local, Control: control}
	t := &http.Transport{
		DialContext:         nd.DialContext,
		TLSHandshakeTimeout: timeout,
		// Every connection is hijacked by the WebSocket upgrade; nothing is pooled.
		DisableKeepAlives: true,
		ForceAttemptHTTP2: false,
	}
	d.transports = append(d.transports, t)
	return &http.Client{Transport: t}
}

// pick returns the client for connection i: connections rotate over the source addresses.
func (d *dialers) pick(i int, slow bool) *http.Client {
	if slow {
		return d.slow[i%len(d.slow)]
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
