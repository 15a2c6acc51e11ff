package server

import (
	"embed"
	"net/http"
)

//go:embed web/index.html
var web embed.FS // read-only assets, not mutable state

// demoHandler serves the live demo page.
func demoHandler() http.Handler {
	page, _ := web.ReadFile("web/index.html") // embedded at build time: cannot fail
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-cache")
		_, _ = w.Write(page)
	})
}
