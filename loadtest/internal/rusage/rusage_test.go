package rusage

import (
	"runtime"
	"testing"
	"time"
)

func TestSelfGrowsWithWork(t *testing.T) {
	t.Parallel()
	a, err := Self()
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(50 * time.Millisecond)
	x := 0
	for time.Now().Before(deadline) {
		x++
	}
	b, err := Self()
	if err != nil {
		t.Fatal(err)
	}
	if d := b.Sub(a).Total(); d <= 0 {
		t.Errorf("CPU after 50ms of spinning grew by %s (x=%d)", d, x)
	}
	if got := a.Add(b.Sub(a)); got != b {
		t.Errorf("Add(Sub) = %+v, want %+v", got, b)
	}
}

func TestShare(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		cpu   time.Duration
		wall  time.Duration
		cores int
		want  float64
	}{
		{"one core busy of two", time.Second, time.Second, 2, 0.5},
		{"all busy", 4 * time.Second, 2 * time.Second, 2, 1},
		{"no wall", time.Second, 0, 2, 0},
		{"no cores", time.Second, time.Second, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Share(tt.cpu, tt.wall, tt.cores); got != tt.want {
				t.Errorf("Share = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestHostCores(t *testing.T) {
	t.Parallel()
	// The affinity (NumCPU) can only be a subset of the host's cores.
	if h := HostCores(); h < runtime.NumCPU() {
		t.Errorf("HostCores %d < NumCPU %d", h, runtime.NumCPU())
	}
}
