package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
)

// CheckHealth GETs /healthz of a server listening on addr (WS_ADDR, e.g. ":3002"),
// over loopback, and returns nil on 200. It is the `healthcheck` subcommand, for distroless
// images without a shell or curl.
func CheckHealth(ctx context.Context, addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("healthcheck: WS_ADDR=%q: %w", addr, err)
	}
	url := "http://" + net.JoinHostPort("127.0.0.1", port) + "/healthz"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
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
		return fmt.Errorf("healthcheck: %s: status %d", url, resp.StatusCode)
	}
	return nil
}
