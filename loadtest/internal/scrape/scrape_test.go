package scrape

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseFigures(t *testing.T) {
	t.Parallel()
	f, err := os.Open("testdata/metrics.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	got := s.Figures()
	tests := []struct {
		name      string
		got, want float64
	}{
		{"connections", got.Connections, 1200},
		{"rss", got.ResidentBytes, 24576000},
		{"cpu", got.CPUSeconds, 12.5},
		{"delivered", got.Delivered, 123456},
		{"rejected cpu", got.Rejected["cpu"], 3},
		{"rejected max", got.Rejected["max_connections"], 7},
		{"slow disconnects", got.Disconnects["slow"], 2},
		{"latency count", got.DeliveryLatencyCount, 20},
		{"latency sum", got.DeliveryLatencySum, 0.5},
		{"rejected sum", s.Sum("ws_connections_rejected_total"), 10},
		{"rejected matching", s.Sum("ws_connections_rejected_total", "reason", "cpu"), 3},
		{"absent metric", s.Sum("ws_nope"), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if tt.got != tt.want {
				t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
			}
		})
	}
}

func TestSub(t *testing.T) {
	t.Parallel()
	before := Figures{CPUSeconds: 1, Delivered: 100, Connections: 5, Disconnects: map[string]float64{"slow": 1}}
	after := Figures{CPUSeconds: 3, Delivered: 600, Connections: 7, Disconnects: map[string]float64{"slow": 4, "client": 2}}
	d := after.Sub(before)
	if d.CPUSeconds != 2 || d.Delivered != 500 || d.Connections != 7 {
		t.Errorf("delta cpu %v delivered %v connections %v, want 2 500 7", d.CPUSeconds, d.Delivered, d.Connections)
	}
	if FormatMap(d.Disconnects) != "client=2 slow=3" {
		t.Errorf("disconnects %q, want %q", FormatMap(d.Disconnects), "client=2 slow=3")
	}
}

func TestFetch(t *testing.T) {
	t.Parallel()
	body, err := os.ReadFile("testdata/metrics.txt")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/metrics" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		_, _ = w.Write(body)
	}))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s, err := Fetch(ctx, srv.Client(), srv.URL+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	if s.Figures().Delivered != 123456 {
		t.Errorf("delivered %v, want 123456", s.Figures().Delivered)
	}
	if _, err := Fetch(ctx, srv.Client(), srv.URL+"/nope"); err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("fetch of a missing page: %v, want a 404 error", err)
	}
}
