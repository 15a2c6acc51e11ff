package e2etest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/adred-codev/ws_poc/loadtest/internal/conform"
)

// testCA is a CA made in the test and the server certificate for 127.0.0.1 it signed.
type testCA struct {
	caFile          string // the CA certificate, PEM, for NODE_EXTRA_CA_CERTS
	roots           *x509.CertPool
	certPEM, keyPEM []byte
}

// newTestCA makes a CA named name and a leaf for 127.0.0.1, valid for a day, and writes
// the CA certificate into dir.
func newTestCA(t *testing.T, dir, name string) testCA {
	t.Helper()
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name + " CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(48 * time.Hour),
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
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c := testCA{
		caFile:  filepath.Join(dir, name+"-ca.pem"),
		roots:   x509.NewCertPool(),
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leafDER}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}),
	}
	c.roots.AddCert(ca)
	if err := os.WriteFile(c.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return c
}

// install replaces the certificate and key files with this CA's pair, each with a rename
// (an atomic writer's way; between the two renames the server may see a mismatched pair,
// which it refuses and tries again).
func (c testCA) install(t *testing.T, certFile, keyFile string) {
	t.Helper()
	for path, b := range map[string][]byte{certFile: c.certPEM, keyFile: c.keyPEM} {
		tmp := path + ".tmp"
		if err := os.WriteFile(tmp, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, path); err != nil {
			t.Fatal(err)
		}
	}
}

// waitReadyTLS is waitReady over https, trusting roots.
func waitReadyTLS(t *testing.T, s *server, roots *x509.CertPool, timeout time.Duration) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true,
		TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}}}
	deadline := time.Now().Add(timeout)
	var last string
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+s.addr+"/readyz", nil)
		resp, err := client.Do(req)
		if err == nil {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				cancel()
				return
			}
			last = fmt.Sprintf("status %d: %s", resp.StatusCode, b)
		} else {
			last = err.Error()
			if strings.Contains(last, "server gave HTTP response to HTTPS client") {
				cancel()
				t.Fatalf("%s serves plain HTTP with WS_TLS_CERT_FILE set:\n%s", s.name, s.output())
			}
		}
		cancel()
		select {
		case <-s.exited:
			t.Fatalf("%s exited (%v) before https /readyz answered 200:\n%s", s.name, s.err, s.output())
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: https /readyz not 200 within %v (last: %s):\n%s", s.name, timeout, last, s.output())
		}
	}
}

// waitTrusted waits until a new handshake with s verifies against roots alone: the server
// presents the certificate those roots signed.
func waitTrusted(t *testing.T, s *server, roots *x509.CertPool, timeout time.Duration) {
	t.Helper()
	d := &tls.Dialer{Config: &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: roots}}
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := d.DialContext(ctx, "tcp", s.addr)
		cancel()
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no handshake with the new certificate within %v (last: %v):\n%s", s.name, timeout, err, s.output())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// nodeWSS runs ws-client.mjs against s with NODE_EXTRA_CA_CERTS=caFile (Node's trust store
// plus that CA) and returns "" once it received a record produced after it subscribed, or
// what went wrong.
func nodeWSS(t *testing.T, node, dir string, s *server, prod sarama.SyncProducer, caFile string) string {
	t.Helper()
	t.Setenv("NODE_EXTRA_CA_CERTS", caFile) // read by node at its start
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	key := uniqueKey("wss")
	channel := "trades:" + key
	out, wait := startNode(ctx, t, node, dir, "ws-client.mjs", "wss://"+s.addr+"/ws", channel, "20000")
	if _, err := out.waitLine(ctx, func(l string) bool { return l == "READY" }); err != nil {
		return fmt.Sprintf("never subscribed: %v\n%s", err, wait())
	}
	value := fmt.Sprintf(`{"price":"7.5","key":%q}`, key)
	produce(t, prod, "trades", key, value)
	if msg := wait(); msg != "" {
		return msg
	}
	line, err := out.waitLine(ctx, func(l string) bool { return len(l) > 0 && l[0] == '{' })
	if err != nil {
		return fmt.Sprintf("no message printed: %v\n%s", err, out.all())
	}
	e, err := conform.ParseLine([]byte(line))
	if err != nil || e.Op != "message" || e.Channel != channel || string(e.Data) != value {
		return fmt.Sprintf("received %s (%v), want a message on %s with data %s", line, err, channel, value)
	}
	return ""
}

// TestTLS: each variant serves wss:// with WS_TLS_CERT_FILE and WS_TLS_KEY_FILE, made in
// the test; Node's ws client trusting the CA receives a record. The files are then replaced
// by a pair of another CA while the server runs: the server presents it within seconds, a
// client trusting the new CA gets its record, one trusting only the old CA fails on the
// certificate. The healthcheck subcommand speaks https.
func TestTLS(t *testing.T) {
	node := requireTool(t, "node", "install Node.js 20+ (the Debian package nodejs)")
	dir := e2eDir(t)
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			bin := binary(t, v.envVar, v.name)
			broker := startBroker(t)
			tmp := t.TempDir()
			first, second := newTestCA(t, tmp, "first"), newTestCA(t, tmp, "second")
			certFile, keyFile := filepath.Join(tmp, "tls.crt"), filepath.Join(tmp, "tls.key")
			first.install(t, certFile, keyFile)
			tlsEnv := []string{"WS_TLS_CERT_FILE=" + certFile, "WS_TLS_KEY_FILE=" + keyFile}
			srv := startServerUnready(t, v.name, bin, broker, tlsEnv...)
			waitReadyTLS(t, srv, first.roots, 30*time.Second)
			prod := newProducer(t, broker)

			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			health := exec.CommandContext(ctx, bin, "healthcheck")
			health.Env = append(os.Environ(), append([]string{"WS_ADDR=" + srv.addr, "WS_KAFKA_BROKERS=" + broker}, tlsEnv...)...)
			if out, err := health.CombinedOutput(); err != nil {
				t.Errorf("healthcheck: %v\n%s", err, out)
			}
			if msg := nodeWSS(t, node, dir, srv, prod, first.caFile); msg != "" {
				t.Fatalf("node wss trusting the CA: %s", msg)
			}

			second.install(t, certFile, keyFile)
			waitTrusted(t, srv, second.roots, 15*time.Second)
			if msg := nodeWSS(t, node, dir, srv, prod, second.caFile); msg != "" {
				t.Fatalf("node wss trusting the new CA after the reload: %s", msg)
			}
			msg := nodeWSS(t, node, dir, srv, prod, first.caFile)
			if msg == "" || !strings.Contains(msg, "certificate") {
				t.Fatalf("node wss trusting only the old CA after the reload: %q, want a certificate error", msg)
			}
			if i := strings.LastIndex(msg, "ws-client:"); i >= 0 {
				t.Logf("trusting only the old CA: %s", strings.TrimSpace(msg[i:]))
			}
		})
	}
}
