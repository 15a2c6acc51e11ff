// This file is duplicated in ws-single (internal/server/tls_test.go) on purpose: the server layer is
// the same for one hub loop and for N shards; they may diverge.

package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/zap"

	"github.com/adred-codev/ws_poc/ws-multi/internal/await"
	"github.com/adred-codev/ws_poc/ws-multi/internal/config"
	"github.com/adred-codev/ws_poc/ws-multi/internal/kafkatest"
	"github.com/adred-codev/ws_poc/ws-multi/internal/metrics"
)

// testPKI is a CA and a server certificate for 127.0.0.1 it signed, made in the test.
type testPKI struct {
	certPEM, keyPEM []byte
	roots           *x509.CertPool // the CA alone
	leaf            *x509.Certificate
}

// newTestPKI makes a CA named name and a leaf for 127.0.0.1 and localhost expiring at
// notAfter (whole seconds, as the expiry gauge shows it).
func newTestPKI(t *testing.T, name string, notAfter time.Time) testPKI {
	t.Helper()
	notBefore := time.Now().Add(-time.Hour)
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " CA"},
		NotBefore: notBefore, NotAfter: notAfter.Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: name},
		NotBefore: notBefore, NotAfter: notAfter,
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(leafDER)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	return testPKI{
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
		roots:   roots,
		leaf:    leaf,
	}
}

// replaceFile replaces path with a new file holding b, at once (a rename), as an atomic
// writer does.
func replaceFile(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.CreateTemp(filepath.Dir(path), ".tmp-")
	if err != nil {
		t.Fatal(err)
	}
	_, err = f.Write(b)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// secretDir is a directory laid out as the kubelet mounts a Secret: tls.crt and tls.key are
// symlinks into ..data, itself a symlink to a directory of the current files, which an
// update swaps for a new one in one rename.
type secretDir struct {
	t   *testing.T
	dir string
}

func newSecretDir(t *testing.T, certPEM, keyPEM []byte) *secretDir {
	t.Helper()
	s := &secretDir{t: t, dir: t.TempDir()}
	s.update(certPEM, keyPEM)
	for _, name := range []string{"tls.crt", "tls.key"} {
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(s.dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func (s *secretDir) certFile() string { return filepath.Join(s.dir, "tls.crt") }
func (s *secretDir) keyFile() string  { return filepath.Join(s.dir, "tls.key") }

// update writes both files into a new directory and points ..data at it in one rename.
func (s *secretDir) update(certPEM, keyPEM []byte) {
	s.t.Helper()
	gen, err := os.MkdirTemp(s.dir, "..gen-")
	if err != nil {
		s.t.Fatal(err)
	}
	for name, b := range map[string][]byte{"tls.crt": certPEM, "tls.key": keyPEM} {
		if err := os.WriteFile(filepath.Join(gen, name), b, 0o600); err != nil {
			s.t.Fatal(err)
		}
	}
	tmp := filepath.Join(s.dir, "..data_tmp")
	if err := os.Symlink(filepath.Base(gen), tmp); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, "..data")); err != nil {
		s.t.Fatal(err)
	}
}

func newTestMetrics() *metrics.Metrics {
	return metrics.New(prometheus.NewRegistry(), metrics.BuildInfo{Variant: config.Variant}, metrics.Labels{})
}

// fakeClock is a reloader's clock that only the test moves.
type fakeClock struct{ now time.Time }

func (c *fakeClock) Now() time.Time          { return c.now }
func (c *fakeClock) advance(d time.Duration) { c.now = c.now.Add(d) }
func cn(c *tls.Certificate) string           { return c.Leaf.Subject.CommonName }
func reloads(m *metrics.Metrics, r string) float64 {
	return testutil.ToFloat64(m.TLSReloads.WithLabelValues(r))
}

// TestCertReloader walks a reloader through changes of its files on a clock the test moves:
// a look at most once per interval, a reload only when a file changed, a broken pair kept
// out (and tried again at every look), recovery.
func TestCertReloader(t *testing.T) {
	day := time.Now().Add(24 * time.Hour).Truncate(time.Second)
	a, b, c := newTestPKI(t, "a", day), newTestPKI(t, "b", day.Add(time.Hour)), newTestPKI(t, "c", day.Add(2*time.Hour))
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	replaceFile(t, certFile, a.certPEM)
	replaceFile(t, keyFile, a.keyPEM)
	m := newTestMetrics()
	r, err := newCertReloader(certFile, keyFile, m, zap.NewNop())
	if err != nil {
		t.Fatalf("newCertReloader() = %v", err)
	}
	clock := &fakeClock{now: time.Now()}
	r.now = clock.Now
	r.checked.Store(clock.now.UnixNano())

	tests := []struct {
		name       string
		change     func()
		advance    time.Duration
		want       string // the presented certificate's CN
		ok, failed float64
	}{
		{name: "unchanged", advance: 2 * time.Second, want: "a"},
		{name: "changed, looked at within the interval", change: func() {
			replaceFile(t, certFile, b.certPEM)
			replaceFile(t, keyFile, b.keyPEM)
		}, advance: 500 * time.Millisecond, want: "a"},
		{name: "changed, after the interval", advance: 500 * time.Millisecond, want: "b", ok: 1},
		{name: "unchanged after a reload", advance: time.Second, want: "b", ok: 1},
		{name: "new certificate without its key", change: func() { replaceFile(t, certFile, c.certPEM) },
			advance: time.Second, want: "b", ok: 1, failed: 1},
		{name: "still without its key: tried again", advance: time.Second, want: "b", ok: 1, failed: 2},
		{name: "its key arrives", change: func() { replaceFile(t, keyFile, c.keyPEM) },
			advance: time.Second, want: "c", ok: 2, failed: 2},
		{name: "half-written certificate", change: func() {
			if err := os.WriteFile(certFile, a.certPEM[:len(a.certPEM)/2], 0o600); err != nil {
				t.Fatal(err)
			}
		}, advance: time.Second, want: "c", ok: 2, failed: 3},
		{name: "removed certificate", change: func() {
			if err := os.Remove(certFile); err != nil {
				t.Fatal(err)
			}
		}, advance: time.Second, want: "c", ok: 2, failed: 4},
		{name: "written again", change: func() {
			for path, b := range map[string][]byte{certFile: a.certPEM, keyFile: a.keyPEM} {
				if err := os.WriteFile(path, b, 0o600); err != nil {
					t.Fatal(err)
				}
			}
		}, advance: time.Second, want: "a", ok: 3, failed: 4},
	}
	for _, tt := range tests {
		if tt.change != nil {
			tt.change()
		}
		clock.advance(tt.advance)
		got, err := r.getCertificate(nil)
		if err != nil {
			t.Fatalf("%s: getCertificate() = %v", tt.name, err)
		}
		if cn(got) != tt.want || reloads(m, metrics.ResultOK) != tt.ok || reloads(m, metrics.ResultFailed) != tt.failed {
			t.Fatalf("%s: certificate %s, reloads ok %v failed %v; want %s, %v, %v", tt.name, cn(got),
				reloads(m, metrics.ResultOK), reloads(m, metrics.ResultFailed), tt.want, tt.ok, tt.failed)
		}
		if exp := testutil.ToFloat64(m.TLSCertExpiry); exp != float64(got.Leaf.NotAfter.Unix()) {
			t.Fatalf("%s: expiry gauge %v, want %d", tt.name, exp, got.Leaf.NotAfter.Unix())
		}
	}
}

// TestCertReloaderSecretVolume: the files of a Kubernetes Secret volume are symlinks that an
// update swaps all at once; the pair behind them is reloaded.
func TestCertReloaderSecretVolume(t *testing.T) {
	day := time.Now().Add(24 * time.Hour)
	a, b := newTestPKI(t, "a", day), newTestPKI(t, "b", day)
	s := newSecretDir(t, a.certPEM, a.keyPEM)
	m := newTestMetrics()
	r, err := newCertReloader(s.certFile(), s.keyFile(), m, zap.NewNop())
	if err != nil {
		t.Fatalf("newCertReloader() = %v", err)
	}
	clock := &fakeClock{now: time.Now().Add(time.Minute)}
	r.now = clock.Now
	if got, _ := r.getCertificate(nil); cn(got) != "a" {
		t.Fatalf("certificate %s, want a", cn(got))
	}
	s.update(b.certPEM, b.keyPEM)
	clock.advance(time.Second)
	if got, _ := r.getCertificate(nil); cn(got) != "b" || reloads(m, metrics.ResultOK) != 1 {
		t.Fatalf("after the swap: certificate %s, %v reloads; want b, 1", cn(got), reloads(m, metrics.ResultOK))
	}
}

// TestCertReloaderLookingSkips: a handshake while another looks at the files takes the current
// certificate at once instead of waiting; the look happens on a later handshake.
func TestCertReloaderLookingSkips(t *testing.T) {
	day := time.Now().Add(24 * time.Hour)
	a, b := newTestPKI(t, "a", day), newTestPKI(t, "b", day)
	s := newSecretDir(t, a.certPEM, a.keyPEM)
	r, err := newCertReloader(s.certFile(), s.keyFile(), newTestMetrics(), zap.NewNop())
	if err != nil {
		t.Fatalf("newCertReloader() = %v", err)
	}
	clock := &fakeClock{now: time.Now().Add(time.Minute)}
	r.now = clock.Now
	s.update(b.certPEM, b.keyPEM)
	r.mu.Lock() // another handshake is looking
	got, _ := r.getCertificate(nil)
	r.mu.Unlock()
	if cn(got) != "a" {
		t.Fatalf("while another looks: certificate %s, want a", cn(got))
	}
	if got, _ := r.getCertificate(nil); cn(got) != "b" {
		t.Fatalf("next handshake: certificate %s, want b", cn(got))
	}
}

func TestNewCertReloaderRefusesABrokenPair(t *testing.T) {
	a, b := newTestPKI(t, "a", time.Now().Add(time.Hour)), newTestPKI(t, "b", time.Now().Add(time.Hour))
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	replaceFile(t, certFile, a.certPEM)
	replaceFile(t, keyFile, b.keyPEM)
	if _, err := newCertReloader(certFile, keyFile, newTestMetrics(), zap.NewNop()); err == nil {
		t.Error("newCertReloader accepted a certificate with another's key")
	}
	if _, err := newCertReloader(filepath.Join(dir, "missing.pem"), keyFile, newTestMetrics(), zap.NewNop()); err == nil {
		t.Error("newCertReloader accepted a missing certificate")
	}
}

// withTLS serves TLS with the certificate and key in these files, chaining to roots: the
// fixture's requests and dials trust them.
func withTLS(certFile, keyFile string, roots *x509.CertPool) option {
	return func(c *config.Config, o *setup) {
		c.TLSCertFile, c.TLSKeyFile = certFile, keyFile
		o.roots = roots
	}
}

// dialTLS dials wss:// trusting roots.
func (f *fixture) dialTLS(roots *x509.CertPool) (*websocket.Conn, *http.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return websocket.Dial(ctx, "wss://"+f.addr+"/ws", &websocket.DialOptions{HTTPClient: httpClient(roots)})
}

func (f *fixture) connectTLS(roots *x509.CertPool) *client {
	f.t.Helper()
	ws, _, err := f.dialTLS(roots)
	if err != nil {
		f.t.Fatalf("dial wss: %v", err)
	}
	ws.SetReadLimit(-1)
	f.t.Cleanup(func() { _ = ws.CloseNow() })
	return &client{t: f.t, ws: ws}
}

// presented is the certificate a new handshake with the server presents (not verified here:
// the test compares it).
func (f *fixture) presented() *x509.Certificate {
	f.t.Helper()
	d := tls.Dialer{Config: &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", f.addr)
	if err != nil {
		f.t.Fatalf("TLS handshake: %v", err)
	}
	defer c.Close()
	return c.(*tls.Conn).ConnectionState().PeerCertificates[0]
}

// TestTLS: wss:// with a certificate made in the test; the certificate replaced by one of
// another CA is presented to new handshakes within a second or so while the open connection
// goes on; a broken pair keeps the current certificate; plain HTTP is refused.
func TestTLS(t *testing.T) {
	day := time.Now().Add(24 * time.Hour).Truncate(time.Second)
	first, second := newTestPKI(t, "first", day), newTestPKI(t, "second", day.Add(time.Hour))
	secret := newSecretDir(t, first.certPEM, first.keyPEM)
	f := start(t, withTLS(secret.certFile(), secret.keyFile(), first.roots))
	if got := testutil.ToFloat64(f.m.TLSCertExpiry); got != float64(day.Unix()) {
		t.Errorf("expiry gauge = %v, want %d", got, day.Unix())
	}

	c := f.connectTLS(first.roots)
	c.send(`{"op":"subscribe","id":"1","channels":["trades:BTC-USD"]}`)
	c.expect(map[string]any{"op": "subscribed", "id": "1"})
	kafkatest.Produce(t, f.brokers, kafkatest.Record("trades", 0, "BTC-USD", `{"price":"1"}`))
	c.expect(map[string]any{"op": "message", "channel": "trades:BTC-USD", "offset": 0})

	if ws, resp, err := f.dial(nil); err == nil {
		_ = ws.CloseNow()
		t.Error("plain ws:// upgraded on the TLS port")
	} else if resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Errorf("plain ws:// = %v, %v; want 400", resp, err)
	}

	// Renewed: another CA, another expiry.
	secret.update(second.certPEM, second.keyPEM)
	await.True(t, 10*time.Second, func() bool { return f.presented().Equal(second.leaf) }, "the new certificate")
	if ok := reloads(f.m, metrics.ResultOK); ok != 1 {
		t.Errorf("ws_tls_reloads_total{ok} = %v, want 1", ok)
	}
	if got := testutil.ToFloat64(f.m.TLSCertExpiry); got != float64(day.Add(time.Hour).Unix()) {
		t.Errorf("expiry gauge = %v, want %d", got, day.Add(time.Hour).Unix())
	}
	renewed := f.connectTLS(second.roots)
	renewed.send(`{"op":"subscribe","id":"2","channels":["trades:BTC-USD"]}`)
	renewed.expect(map[string]any{"op": "subscribed", "id": "2"})
	kafkatest.Produce(t, f.brokers, kafkatest.Record("trades", 0, "BTC-USD", `{"price":"2"}`))
	c.expect(map[string]any{"op": "message", "offset": 1}) // the connection from before goes on
	renewed.expect(map[string]any{"op": "message", "offset": 1})
	ws, _, err := f.dialTLS(first.roots)
	if err == nil {
		_ = ws.CloseNow()
	}
	if cve := new(tls.CertificateVerificationError); !errors.As(err, &cve) {
		t.Errorf("dial trusting only the old CA: %v, want a certificate verification error", err)
	}

	// Broken: a certificate with another's key.
	secret.update(first.certPEM, second.keyPEM)
	await.True(t, 10*time.Second, func() bool {
		f.presented()
		return reloads(f.m, metrics.ResultFailed) >= 1
	}, "a failed reload")
	if !f.presented().Equal(second.leaf) || reloads(f.m, metrics.ResultOK) != 1 {
		t.Error("a broken pair replaced the certificate")
	}
	c.send(`{"op":"ping","id":"p"}`)
	c.expect(map[string]any{"op": "pong", "id": "p"})
}

// TestTLSPerIPLimit: with TLS the per-address cap still counts connections from their accept
// (before the handshake) and stops counting them once upgraded.
func TestTLSPerIPLimit(t *testing.T) {
	pki := newTestPKI(t, "limit", time.Now().Add(time.Hour))
	secret := newSecretDir(t, pki.certPEM, pki.keyPEM)
	f := start(t, withTLS(secret.certFile(), secret.keyFile(), pki.roots),
		func(c *config.Config, _ *setup) { c.HTTPMaxConnsPerIP = 2 })
	for range 3 {
		c := f.connectTLS(pki.roots) // upgraded: not counted
		c.send(`{"op":"ping","id":"p"}`)
		c.expect(map[string]any{"op": "pong", "id": "p"})
	}
	for range 2 { // connected, no handshake yet: counted
		raw, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = raw.Close() })
	}
	rejected := f.m.ConnectionsRejected.WithLabelValues(RejectIPLimit)
	await.True(t, 10*time.Second, func() bool {
		if resp, err := f.get("/healthz"); err == nil && resp.StatusCode == http.StatusOK {
			return false // the raw connections are not accepted yet
		}
		return testutil.ToFloat64(rejected) >= 1
	}, "a refusal at the cap")
}

// TestCheckHealthTLS: the healthcheck probe speaks https to a TLS server (the certificate is
// not the probe's concern) and fails when it speaks http to one.
func TestCheckHealthTLS(t *testing.T) {
	pki := newTestPKI(t, "health", time.Now().Add(time.Hour))
	secret := newSecretDir(t, pki.certPEM, pki.keyPEM)
	f := start(t, withTLS(secret.certFile(), secret.keyFile(), pki.roots))
	_, port, _ := net.SplitHostPort(f.addr)
	if err := CheckHealth(t.Context(), ":"+port, true); err != nil {
		t.Errorf("CheckHealth over https: %v", err)
	}
	if err := CheckHealth(t.Context(), ":"+port, false); err == nil {
		t.Error("CheckHealth over http of a TLS server succeeded")
	}
}

// TestCorkTLSCutIsImmediate: the cork over a TLS connection whose client stopped reading
// cuts it as soon as its drain passes the write timeout. Dropping the socket must not wait
// to send TLS's close_notify into the full socket (tls.Conn.Close waits up to 5 s for it,
// under the cork's lock, which the hub goroutine takes): the cork drops the TCP connection.
func TestCorkTLSCutIsImmediate(t *testing.T) {
	pki := newTestPKI(t, "cork", time.Now().Add(time.Hour))
	cert, err := tls.X509KeyPair(pki.certPEM, pki.keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	peer := make(chan net.Conn, 1) // the client, which never reads
	go func() {
		d := tls.Dialer{Config: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pki.roots}}
		c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
		if err != nil {
			t.Error(err)
		}
		peer <- c
	}()
	tcp, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	if err := tcp.(*net.TCPConn).SetWriteBuffer(4096); err != nil { // full soon
		t.Fatal(err)
	}
	sock := tls.Server(tcp, &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}})
	defer sock.Close()
	if err := sock.HandshakeContext(ctx); err != nil {
		t.Fatal(err)
	}
	if c := <-peer; c != nil {
		defer c.Close()
	}

	pool := &sync.Pool{New: func() any { b := make([]byte, 0, corkFlushBytes); return &b }}
	cut := make(chan error, 1)
	w := newCorkWriter(sock, pool, 200*time.Millisecond, 0, func(err error) { cut <- err })
	start := time.Now()
	if _, err := w.Write(make([]byte, 8<<20)); err != nil { // more than both socket buffers hold
		t.Fatal(err)
	}
	if err := <-cut; !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("cut with %v, want a deadline error", err)
	}
	w.wait()
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("the cut of a TLS client took %v with a 200ms write timeout", took)
	}
}
