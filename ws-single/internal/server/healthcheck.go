// This file is duplicated in ws-multi (internal/server/healthcheck.go) on purpose: the server layer is
// the same for one hub loop and for N shards; they may diverge.

package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
)

// CheckHealth GETs /healthz of a server listening on addr (WS_ADDR, only its
// port counts) over loopback, with https when useTLS (WS_TLS_CERT_FILE is set),
// and returns nil on 200: the `healthcheck` subcommand, the probe of distroless
// images, which have no shell or curl.
func CheckHealth(ctx context.Context, addr string, useTLS bool) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("healthcheck: WS_ADDR=%q: %w", addr, err)
	}
	scheme := "http"
	transport := &http.Transport{DisableKeepAlives: true}
	if useTLS {
		scheme = "https"
		// The probe dials 127.0.0.1, a name the certificate need not carry, and
		// asks only whether the process answers (liveness): it does not verify
		// the certificate. Clients do.
		transport.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: true}
	}
	url := scheme + "://" + net.JoinHostPort("127.0.0.1", port) + "/healthz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	resp, err := (&http.Client{Transport: transport}).Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: status %s", resp.Status)
	}
	return nil
}
