// This file is duplicated in ws-multi (internal/server/tls.go) on purpose: the server layer is
// the same for one hub loop and for N shards; they may diverge.

package server

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/adred-codev/ws_poc/ws-single/internal/metrics"
)

// tlsCheckInterval is how often, at most, a handshake looks at the certificate files.
const tlsCheckInterval = time.Second

// certReloader serves the certificate of WS_TLS_CERT_FILE and WS_TLS_KEY_FILE and loads the
// pair again once either file changes, so a renewal (cert-manager, a mounted Secret) needs no
// restart. It has no goroutine: a handshake looks at the files, at most once per
// tlsCheckInterval, and the one that does stats both (os.Stat follows symlinks, so the
// symlink swap of a Kubernetes Secret volume, ..data, shows as new files); when the
// modification time, size or file identity of either differs from the loaded pair's, it
// loads the pair. A pair that does not load (half written, or a certificate without its key
// yet) is counted as failed and the old certificate stays; the next look tries again.
//
// Handshakes never queue here: the one that looks holds mu, the others skip the look
// (TryLock) and take the current certificate.
//
// The cost of TLS on the write path: a *tls.Conn is not a syscall.Conn, so the cork has no
// non-blocking write (nonBlockingWriter returns nil) and every hub write to a TLS client
// collects in the cork and goes out through the client's flusher goroutine (conn.Flush)
// instead of one non-blocking syscall on the hub goroutine: correct, bounded as before (the
// queue limits and the write timeout), but a goroutine, a timer reset and a report back to
// the hub per write, on top of the encryption. Each connection also keeps crypto/tls's state, a few KiB. Where
// that matters, terminate TLS in front of the server.
type certReloader struct {
	certFile, keyFile string
	reloads           *prometheus.CounterVec // ws_tls_reloads_total{result}
	expiry            prometheus.Gauge       // ws_tls_certificate_expiry_timestamp_seconds
	log               *zap.Logger
	now               func() time.Time // time.Now; tests move it

	cert    atomic.Pointer[tls.Certificate] // the certificate every handshake presents
	checked atomic.Int64                    // unix nanoseconds of the last look at the files

	mu                sync.Mutex  // held by the handshake that looks at the files
	certStat, keyStat os.FileInfo // the files behind cert, as stat saw them before loading
}

// newCertReloader loads the pair; it fails when the pair does not load.
func newCertReloader(certFile, keyFile string, m *metrics.Metrics, log *zap.Logger) (*certReloader, error) {
	r := &certReloader{certFile: certFile, keyFile: keyFile, reloads: m.TLSReloads, expiry: m.TLSCertExpiry, log: log, now: time.Now}
	certStat, keyStat, cert, err := r.load()
	if err != nil {
		return nil, fmt.Errorf("server: WS_TLS_CERT_FILE=%q with WS_TLS_KEY_FILE=%q: %w", certFile, keyFile, err)
	}
	r.checked.Store(r.now().UnixNano())
	r.use(cert, certStat, keyStat, "TLS certificate loaded")
	return r, nil
}

// config is the listener's TLS configuration: TLS 1.2 or later, HTTP/1.1 only (a WebSocket
// upgrade is an HTTP/1.1 request; this server speaks no h2), the reloaded certificate.
func (r *certReloader) config() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS12,
		NextProtos:     []string{"http/1.1"},
		GetCertificate: r.getCertificate,
	}
}

// getCertificate is tls.Config.GetCertificate: the current certificate, after a look at the
// files when the last one is tlsCheckInterval old and no other handshake is looking.
func (r *certReloader) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	if now := r.now().UnixNano(); now-r.checked.Load() >= int64(tlsCheckInterval) && r.mu.TryLock() {
		// Another handshake may have looked between the load and the lock.
		if now-r.checked.Load() >= int64(tlsCheckInterval) {
			r.checked.Store(now)
			r.reloadLocked()
		}
		r.mu.Unlock()
	}
	return r.cert.Load(), nil
}

// reloadLocked loads the pair if either file changed since the loaded one; r.mu is held.
func (r *certReloader) reloadLocked() {
	certStat, keyStat, err := r.stat()
	if err == nil && sameFile(certStat, r.certStat) && sameFile(keyStat, r.keyStat) {
		return
	}
	var cert *tls.Certificate
	if err == nil {
		certStat, keyStat, cert, err = r.load()
	}
	if err != nil {
		// The stats are not kept: the next look tries again.
		r.reloads.WithLabelValues(metrics.ResultFailed).Inc()
		r.log.Warn("TLS certificate reload failed; keeping the current certificate", zap.String("cert_file", r.certFile),
			zap.String("key_file", r.keyFile), zap.Error(err))
		return
	}
	r.reloads.WithLabelValues(metrics.ResultOK).Inc()
	r.use(cert, certStat, keyStat, "TLS certificate reloaded")
}

// load stats both files, then loads the pair. Stat comes first: a file that changes after it
// is loaded once more at the next look, never missed.
func (r *certReloader) load() (certStat, keyStat os.FileInfo, cert *tls.Certificate, err error) {
	if certStat, keyStat, err = r.stat(); err != nil {
		return nil, nil, nil, err
	}
	c, err := tls.LoadX509KeyPair(r.certFile, r.keyFile)
	if err != nil {
		return nil, nil, nil, err
	}
	if c.Leaf == nil { // set by LoadX509KeyPair unless GODEBUG=x509keypairleaf=0
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, nil, nil, err
		}
	}
	return certStat, keyStat, &c, nil
}

func (r *certReloader) stat() (certStat, keyStat os.FileInfo, err error) {
	certStat, cerr := os.Stat(r.certFile)
	keyStat, kerr := os.Stat(r.keyFile)
	return certStat, keyStat, errors.Join(cerr, kerr)
}

// use makes cert the certificate of the next handshakes; r.mu is held or r not shared yet.
func (r *certReloader) use(cert *tls.Certificate, certStat, keyStat os.FileInfo, msg string) {
	r.cert.Store(cert)
	r.certStat, r.keyStat = certStat, keyStat
	r.expiry.Set(float64(cert.Leaf.NotAfter.Unix()))
	r.log.Info(msg, zap.String("subject", cert.Leaf.Subject.String()), zap.Strings("dns_names", cert.Leaf.DNSNames),
		zap.Time("not_after", cert.Leaf.NotAfter))
}

// socketOf is the connection a cork drops and sets deadlines on (corkWriter.raw): under TLS
// the TCP connection itself. tls.Conn.Close first sends a close_notify alert, which waits up
// to 5 s on the socket of a client that stopped reading, and the cork drops the socket under
// its lock, which the hub goroutine takes; the drain drops sockets under the live set's lock.
// Deadlines are the same on either (tls.Conn passes them on). Writes still go through TLS
// (corkWriter.sock).
func socketOf(c net.Conn) net.Conn {
	if tc, ok := c.(*tls.Conn); ok {
		return tc.NetConn()
	}
	return c
}

// sameFile reports whether a and b (b may be nil) describe the same file, unchanged.
func sameFile(a, b os.FileInfo) bool {
	return b != nil && os.SameFile(a, b) && a.ModTime().Equal(b.ModTime()) && a.Size() == b.Size()
}
