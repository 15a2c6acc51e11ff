// This file is duplicated in ws-single (internal/server/http.go) on purpose: the server layer is
// the same for one hub loop and for N shards; they may diverge.

package server

import (
	"embed"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"
)

// routes are the HTTP routes: /ws, /healthz, /readyz, /metrics and the
// demo page with its client library.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/ws", s.handleWS)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.handleReady)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.d.Gatherer, promhttp.HandlerOpts{}))
	mux.Handle("GET /{$}", asset("web/index.html", "text/html; charset=utf-8"))
	mux.Handle("GET /wsclient.js", asset("web/wsclient.js", "text/javascript; charset=utf-8"))
	return mux
}

func (s *Server) handleReady(w http.ResponseWriter, _ *http.Request) {
	switch {
	case s.draining.Load():
		http.Error(w, "draining", http.StatusServiceUnavailable)
	default:
		if ok, why := s.d.Kafka.Ready(); !ok {
			http.Error(w, why, http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ready\n"))
	}
}

// httpServer is the HTTP side's hygiene: a request's headers within 10 s and
// WS_MAX_HEADER_BYTES (net/http answers 431), idle keep-alive connections closed
// after WS_HTTP_IDLE_TIMEOUT, and at most WS_HTTP_MAX_CONNS_PER_IP connections
// per source address that are not WebSocket connections (ipLimit).
func (s *Server) httpServer() *http.Server {
	srv := &http.Server{
		Handler:           s.routes(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       s.cfg.HTTPIdleTimeout,
		MaxHeaderBytes:    s.cfg.MaxHeaderBytes,
		ErrorLog:          zap.NewStdLog(sampled(s.log.Named("http"))), // TLS handshake failures from probes and scanners come in storms
	}
	if s.perIP != nil {
		srv.ConnState = s.perIP.connState
	}
	return srv
}

// The demo page and the client library it imports (a copy of clients/js/src/wsclient.js).
//
//go:embed web/index.html web/wsclient.js
var web embed.FS // read-only assets, not mutable state

// asset serves one embedded file of the demo page.
func asset(name, contentType string) http.Handler {
	body, _ := web.ReadFile(name) // embedded at build time: cannot fail
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", contentType)
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(body)
	})
}
