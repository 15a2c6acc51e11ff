// This file is duplicated in ws-multi (internal/server/listener.go) on purpose: the variants share
// no library of ours; they may diverge.

package server

import (
	"errors"
	"net"
	"net/http"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"
)

// countingListener counts the errors its Accept returns (ws_accept_errors_total), such as
// running out of file descriptors; net/http logs them and retries, as before. The error of
// a listener closed by shutdown is not a failure and is not counted.
type countingListener struct {
	net.Listener
	errors prometheus.Counter
}

// Accept implements net.Listener.
func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		l.errors.Inc()
	}
	return c, err
}

// ipLimit caps the connections from one source address that are not WebSocket connections
// (plain HTTP requests, keep-alive connections, handshakes in progress) at
// WS_HTTP_MAX_CONNS_PER_IP: one host cannot take every descriptor with idle or half-sent
// requests. It is the http.Server's ConnState hook: a new connection counts (and is closed
// at once, before any byte is read, when its address is at the cap); it stops counting once
// hijacked (upgraded: WS_MAX_CONNECTIONS bounds those) or closed. The address is the host
// part of RemoteAddr (X-Forwarded-For is not trusted).
type ipLimit struct {
	max      int
	rejected prometheus.Counter // ws_connections_rejected_total{reason="ip_limit"}
	audit    *zap.Logger        // sampled

	mu    sync.Mutex
	perIP map[string]int
	conns map[net.Conn]string // counted connections and their address
}

func newIPLimit(max int, rejected prometheus.Counter, audit *zap.Logger) *ipLimit {
	return &ipLimit{max: max, rejected: rejected, audit: audit,
		perIP: make(map[string]int), conns: make(map[net.Conn]string)}
}

// connState is the http.Server.ConnState hook.
func (l *ipLimit) connState(c net.Conn, state http.ConnState) {
	switch state {
	case http.StateNew:
		ip := remoteIP(c.RemoteAddr())
		l.mu.Lock()
		if l.perIP[ip] >= l.max {
			l.mu.Unlock()
			l.rejected.Inc()
			if ce := l.audit.Check(zap.InfoLevel, "connection refused at accept"); ce != nil {
				ce.Write(zap.String("reason", "ip_limit"), zap.String("remote", c.RemoteAddr().String()))
			}
			_ = c.Close() // net/http's read fails at once; StateClosed follows, uncounted
			return
		}
		l.perIP[ip]++
		l.conns[c] = ip
		l.mu.Unlock()
	case http.StateHijacked, http.StateClosed:
		l.mu.Lock()
		defer l.mu.Unlock()
		ip, ok := l.conns[c]
		if !ok {
			return
		}
		delete(l.conns, c)
		if l.perIP[ip]--; l.perIP[ip] <= 0 {
			delete(l.perIP, ip)
		}
	}
}

// remoteIP is the host part of a connection's remote address.
func remoteIP(addr net.Addr) string {
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	return host
}
