// This file is duplicated in ws-single (internal/server/healthcheck.go) on purpose: the server layer is
// the same for one hub loop and for N shards; they may diverge.

package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
)

// CheckHealth GETs /healthz of a server listening on addr (WS_ADDR, only its
// port counts) over loopback and returns nil on 200: the `healthcheck` subcommand,
// the probe of distroless images, which have no shell or curl.
func CheckHealth(ctx context.Context, addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("healthcheck: WS_ADDR=%q: %w", addr, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort("127.0.0.1", port)+"/healthz", nil)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("healthcheck: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("healthcheck: status %s", resp.Status)
	}
	return nil
}
