package server

import (
	"embed"
	"io/fs"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

//go:embed web
var webFS embed.FS

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", s.handleReady)
	// A Gatherer that is also a Registerer (a *prometheus.Registry) gets promhttp's own
	// error counter, as before.
	reg, _ := s.d.Gatherer.(prometheus.Registerer)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.d.Gatherer, promhttp.HandlerOpts{Registry: reg}))
	web, _ := fs.Sub(webFS, "web") // cannot fail: "web" is embedded above
	mux.Handle("GET /", http.FileServerFS(web))
	// /ws takes every method: a request that is no upgrade gets 426 from the upgrade,
	// whatever its method (a "GET /ws" route would answer a plain POST 405). A method-less
	// "/ws" pattern conflicts with "GET /" in the mux, so /ws is routed before it.
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ws" {
			s.handleWS(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// handleReady is 200 only while Kafka is attached and the server is not draining, so a load
// balancer sends new clients elsewhere during an outage or a shutdown.
func (s *Server) handleReady(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	switch {
	case s.draining.Load():
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("draining\n"))
	case !s.d.Kafka.Attached():
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte("kafka not attached\n"))
	default:
		_, _ = w.Write([]byte("ready\n"))
	}
}
