// This file is part of package limits, duplicated in ws-single on purpose; they may diverge.

package limits

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/adred-codev/ws_poc/ws-multi/internal/cgroup"
	"github.com/adred-codev/ws_poc/ws-multi/internal/metrics"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeReader returns the next scripted reading on each call pair.
type fakeReader struct {
	mu     sync.Mutex
	limits cgroup.Limits
	usage  cgroup.Usage
	err    error
}

func (f *fakeReader) Limits() (cgroup.Limits, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.limits, f.err
}

func (f *fakeReader) Usage() (cgroup.Usage, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.usage, f.err
}

func (f *fakeReader) set(cpuNanos uint64, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.usage.CPUNanos = cpuNanos
	f.err = err
}

// fakeClock advances only when told.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time          { return c.t }
func (c *fakeClock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newTestAdmission(t *testing.T, r resourceReader, thresholdPercent float64) (*Admission, *metrics.Metrics, *fakeClock, *observer.ObservedLogs) {
	t.Helper()
	m := metrics.New(prometheus.NewRegistry(), metrics.BuildInfo{Variant: "test"}, metrics.Labels{})
	core, logs := observer.New(zap.InfoLevel)
	a := newAdmission(r, thresholdPercent, m, zap.New(core))
	clock := &fakeClock{t: time.Unix(1700000000, 0)}
	a.now = clock.now
	a.numCPU = func() int { return 4 }
	return a, m, clock, logs
}

func TestAdmissionDecision(t *testing.T) {
	tests := []struct {
		name      string
		threshold float64 // percent
		quota     float64 // cores, 0 = none (4 host cores)
		used      time.Duration
		wantCores float64
		wantRatio float64
		wantOK    bool
		wantRetry time.Duration
	}{
		{name: "half of a 2-core quota", threshold: 90, quota: 2, used: time.Second, wantCores: 2, wantRatio: 0.5, wantOK: true},
		{name: "exactly at the threshold is allowed", threshold: 90, quota: 2, used: 1800 * time.Millisecond, wantCores: 2, wantRatio: 0.9, wantOK: true},
		{name: "halfway from threshold to limit", threshold: 90, quota: 2, used: 1900 * time.Millisecond, wantCores: 2, wantRatio: 0.95, wantRetry: 6 * time.Second}, // 1s + 0.5 × 9s, rounded up
		{name: "above the whole limit", threshold: 90, quota: 2, used: 2400 * time.Millisecond, wantCores: 2, wantRatio: 1.2, wantRetry: MaxRetryAfter},
		{name: "just above the threshold", threshold: 50, quota: 1, used: 510 * time.Millisecond, wantCores: 1, wantRatio: 0.51, wantRetry: 2 * time.Second}, // 1s + 0.02 × 9s -> 1.18s -> 2s
		{name: "no quota: host cores are the limit", threshold: 90, quota: 0, used: 3 * time.Second, wantCores: 4, wantRatio: 0.75, wantOK: true},
		{name: "no quota, saturated host", threshold: 90, quota: 0, used: 4 * time.Second, wantCores: 4, wantRatio: 1, wantRetry: MaxRetryAfter},
		{name: "threshold 100 refuses only above the limit", threshold: 100, quota: 1, used: 1100 * time.Millisecond, wantCores: 1, wantRatio: 1.1, wantRetry: MaxRetryAfter},
		{name: "threshold 0 disables refusing", threshold: 0, quota: 1, used: 5 * time.Second, wantCores: 1, wantRatio: 5, wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &fakeReader{limits: cgroup.Limits{Version: 2, CPUCores: tt.quota, MemoryBytes: 1 << 30}, usage: cgroup.Usage{CPUNanos: 1e9, MemoryBytes: 1 << 20}}
			a, m, clock, _ := newTestAdmission(t, r, tt.threshold)

			a.sample()
			if ok, _ := a.Allow(); !ok {
				t.Fatal("Allow() = false after one sample; a ratio needs two")
			}
			clock.advance(time.Second)
			r.set(1e9+uint64(tt.used), nil)
			a.sample()

			ok, retry := a.Allow()
			if ok != tt.wantOK || retry != tt.wantRetry {
				t.Errorf("Allow() = %v, %v; want %v, %v", ok, retry, tt.wantOK, tt.wantRetry)
			}
			if got := testutil.ToFloat64(m.CgroupCPULimitCores); got != tt.wantCores {
				t.Errorf("ws_cgroup_cpu_limit_cores = %v, want %v", got, tt.wantCores)
			}
			if got := testutil.ToFloat64(m.CgroupCPUUsageRatio); got < tt.wantRatio-1e-9 || got > tt.wantRatio+1e-9 {
				t.Errorf("ws_cgroup_cpu_usage_ratio = %v, want %v", got, tt.wantRatio)
			}
			if got := testutil.ToFloat64(m.CgroupMemoryLimit); got != 1<<30 {
				t.Errorf("ws_cgroup_memory_limit_bytes = %v, want %v", got, 1<<30)
			}
			if got := testutil.ToFloat64(m.CgroupMemoryUsage); got != 1<<20 {
				t.Errorf("ws_cgroup_memory_usage_bytes = %v, want %v", got, 1<<20)
			}
		})
	}
}

func TestAdmissionRecoversWhenLoadDrops(t *testing.T) {
	r := &fakeReader{limits: cgroup.Limits{Version: 1, CPUCores: 1}}
	a, _, clock, _ := newTestAdmission(t, r, 80)
	steps := []struct {
		cpuNanos uint64
		wantOK   bool
	}{
		{0, true},              // first sample: no ratio yet
		{950_000_000, false},   // 95%
		{1_900_000_000, false}, // 95%
		{2_100_000_000, true},  // 20%
		{2_050_000_000, true},  // counter went back: no ratio, decision kept
		{3_040_000_000, false}, // 99% measured from the reset sample
	}
	for i, s := range steps {
		r.set(s.cpuNanos, nil)
		a.sample()
		if ok, _ := a.Allow(); ok != s.wantOK {
			t.Fatalf("step %d (cpu %d): Allow() = %v, want %v", i, s.cpuNanos, ok, s.wantOK)
		}
		clock.advance(time.Second)
	}
}

// TestAdmissionFailsOpen: a reader that fails allows every upgrade, logs once
// per failure streak, and a new interval starts when it recovers.
func TestAdmissionFailsOpen(t *testing.T) {
	r := &fakeReader{limits: cgroup.Limits{Version: 2, CPUCores: 1}}
	a, _, clock, logs := newTestAdmission(t, r, 50)
	broken := errors.New("read /sys/fs/cgroup/cpu.stat: no such device")

	r.set(0, nil)
	a.sample()
	clock.advance(time.Second)
	r.set(900_000_000, nil)
	a.sample()
	if ok, _ := a.Allow(); ok {
		t.Fatal("Allow() = true at 90% with threshold 50%")
	}
	for range 3 {
		clock.advance(time.Second)
		r.set(0, broken)
		a.sample()
		if ok, _ := a.Allow(); !ok {
			t.Fatal("Allow() = false while the cgroup cannot be read")
		}
	}
	if n := logs.FilterMessageSnippet("cgroup read failed").Len(); n != 1 {
		t.Fatalf("logged the failure %d times, want once", n)
	}
	clock.advance(time.Second)
	r.set(5_000_000_000, nil) // recovered: no ratio across the gap
	a.sample()
	if ok, _ := a.Allow(); !ok {
		t.Fatal("Allow() = false on the first sample after recovery")
	}
	if n := logs.FilterMessageSnippet("recovered").Len(); n != 1 {
		t.Fatalf("logged recovery %d times, want once", n)
	}
}

// TestAdmissionRun drives the real loop on a short interval while other
// goroutines call Allow, then checks it stops with its context.
func TestAdmissionRun(t *testing.T) {
	r := &fakeReader{limits: cgroup.Limits{Version: 2, CPUCores: 1}}
	a, m, _, _ := newTestAdmission(t, r, 50)
	a.now = time.Now
	a.interval = 5 * time.Millisecond

	// Report 100% use of one core whatever the real elapsed time.
	start := time.Now()
	r.set(0, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()

	var readers sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for {
				select {
				case <-stop:
					return
				default:
					a.Allow()
				}
			}
		}()
	}

	deadline := time.After(5 * time.Second)
	for refused := false; !refused; {
		select {
		case <-deadline:
			t.Fatal("Run never refused at 100% CPU")
		case <-time.After(time.Millisecond):
			r.set(uint64(time.Since(start)), nil)
			ok, _ := a.Allow()
			refused = !ok
		}
	}
	close(stop)
	readers.Wait()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run() = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if got := testutil.ToFloat64(m.CgroupCPULimitCores); got != 1 {
		t.Fatalf("ws_cgroup_cpu_limit_cores = %v, want 1", got)
	}
}

// TestNewAdmissionOnThisHost runs the exported constructor over the real cgroup.
func TestNewAdmissionOnThisHost(t *testing.T) {
	cg, err := cgroup.Detect()
	if err != nil {
		t.Fatalf("cgroup.Detect() = %v", err)
	}
	m := metrics.New(prometheus.NewRegistry(), metrics.BuildInfo{Variant: "test"}, metrics.Labels{})
	a := NewAdmission(cg, 90, m, nil)
	a.sample()
	if ok, _ := a.Allow(); !ok {
		t.Fatal("Allow() = false after a single sample")
	}
	if got := testutil.ToFloat64(m.CgroupCPULimitCores); got <= 0 {
		t.Fatalf("ws_cgroup_cpu_limit_cores = %v, want > 0", got)
	}
}
