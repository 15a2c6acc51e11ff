// This file is part of package cgroup, duplicated in ws-single on purpose; they may diverge.

package cgroup

import (
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

// containerd's v1 Stat reads controllers on goroutines of its own; they must
// all be joined before it returns.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fixture points the Reader at one testdata folder: proc_cgroup and mountinfo
// stand in for /proc/self/{cgroup,mountinfo}, root/ for /sys/fs/cgroup.
func fixture(name string) Paths {
	dir := filepath.Join("testdata", name)
	return Paths{
		Root:       filepath.Join(dir, "root"),
		ProcCgroup: filepath.Join(dir, "proc_cgroup"),
		MountInfo:  filepath.Join(dir, "mountinfo"),
	}
}

const (
	mib = 1 << 20
	gib = 1 << 30
)

func TestReader(t *testing.T) {
	tests := []struct {
		name       string
		wantLimits Limits
		wantUsage  Usage
	}{
		// cgroup v1
		{name: "v1-unlimited", wantLimits: Limits{Version: 1}, wantUsage: Usage{CPUNanos: 123456789000, MemoryBytes: 200 * mib}},
		{name: "v1-limited", wantLimits: Limits{Version: 1, CPUCores: 1.5, MemoryBytes: 512 * mib}, wantUsage: Usage{CPUNanos: 5000000000, MemoryBytes: 150 * mib}},
		{name: "v1-hierarchical-limit", wantLimits: Limits{Version: 1, CPUCores: 0.5, MemoryBytes: 256 * mib}, wantUsage: Usage{CPUNanos: 42, MemoryBytes: 90 * mib}},
		{name: "v1-container-host-path", wantLimits: Limits{Version: 1, CPUCores: 2, MemoryBytes: gib}, wantUsage: Usage{CPUNanos: 7, MemoryBytes: 64 * mib}},
		{name: "v1-subgroup", wantLimits: Limits{Version: 1, MemoryBytes: 128 * mib}, wantUsage: Usage{CPUNanos: 99, MemoryBytes: 64 * mib}},
		{name: "v1-hybrid", wantLimits: Limits{Version: 1, CPUCores: 1, MemoryBytes: 64 * mib}, wantUsage: Usage{CPUNanos: 1, MemoryBytes: 1 * mib}},
		{name: "v1-no-memory-controller", wantLimits: Limits{Version: 1, CPUCores: 3}, wantUsage: Usage{CPUNanos: 1000}},
		// cgroup v2
		{name: "v2-unlimited", wantLimits: Limits{Version: 2}, wantUsage: Usage{CPUNanos: 123456789000, MemoryBytes: 200 * mib}},
		{name: "v2-limited", wantLimits: Limits{Version: 2, CPUCores: 2.5, MemoryBytes: gib}, wantUsage: Usage{CPUNanos: 5000000000, MemoryBytes: 300 * mib}},
		{name: "v2-quota-only", wantLimits: Limits{Version: 2, CPUCores: 0.5, MemoryBytes: 64 * mib}, wantUsage: Usage{CPUNanos: 1000, MemoryBytes: 1 * mib}},
		{name: "v2-nested-group", wantLimits: Limits{Version: 2, CPUCores: 1, MemoryBytes: 256 * mib}, wantUsage: Usage{CPUNanos: 2000000, MemoryBytes: 100 * mib}},
		{name: "v2-no-controllers", wantLimits: Limits{Version: 2}, wantUsage: Usage{CPUNanos: 77000}},
		{name: "v2-mount-of-subgroup", wantLimits: Limits{Version: 2, CPUCores: 2}, wantUsage: Usage{CPUNanos: 3000, MemoryBytes: 10 * mib}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := New(fixture(tt.name))
			if err != nil {
				t.Fatalf("New() error = %v", err)
			}
			if r.Version() != tt.wantLimits.Version {
				t.Errorf("Version() = %d, want %d", r.Version(), tt.wantLimits.Version)
			}
			l, err := r.Limits()
			if err != nil {
				t.Fatalf("Limits() error = %v", err)
			}
			if l != tt.wantLimits {
				t.Errorf("Limits() = %+v, want %+v", l, tt.wantLimits)
			}
			u, err := r.Usage()
			if err != nil {
				t.Fatalf("Usage() error = %v", err)
			}
			if u != tt.wantUsage {
				t.Errorf("Usage() = %+v, want %+v", u, tt.wantUsage)
			}
		})
	}
}

// TestNoCgroup: a host without cgroups is Version 0 with no limits, not an
// error, and usage falls back to the process's own CPU time.
func TestNoCgroup(t *testing.T) {
	for _, name := range []string{"none-no-proc-file", "none-nothing-mounted"} {
		t.Run(name, func(t *testing.T) {
			r, err := New(fixture(name))
			if err != nil {
				t.Fatalf("New() error = %v", err)
			}
			l, err := r.Limits()
			if err != nil || l != (Limits{}) {
				t.Fatalf("Limits() = %+v, %v; want zero Limits, nil", l, err)
			}
			before, err := r.Usage()
			if err != nil {
				t.Fatalf("Usage() error = %v", err)
			}
			burn(t, before.CPUNanos, r)
		})
	}
}

// burn spins until the process's CPU time, as the Reader sees it, passes since.
func burn(t *testing.T, since uint64, r *Reader) {
	t.Helper()
	x := 0
	for range 200 {
		for i := range 1_000_000 {
			x += i
		}
		u, err := r.Usage()
		if err != nil {
			t.Fatalf("Usage() error = %v", err)
		}
		if u.CPUNanos > since {
			return
		}
	}
	t.Fatalf("process CPU time never grew past %d (x=%d)", since, x)
}

func TestMalformed(t *testing.T) {
	r, err := New(fixture("v2-malformed-cpu-max"))
	if err != nil {
		t.Fatalf("New() error = %v", err)
	}
	_, err = r.Limits()
	if err == nil || !strings.Contains(err.Error(), "cpu.max") {
		t.Fatalf("Limits() error = %v, want a cpu.max parse error", err)
	}
}

func TestParseCPUMax(t *testing.T) {
	tests := []struct {
		name    string
		content string
		want    float64
		wantErr bool
	}{
		{name: "no quota", content: "max 100000", want: 0},
		{name: "bare max", content: "max", want: 0},
		{name: "two cores", content: "200000 100000\n", want: 2},
		{name: "quota only uses the default period", content: "25000", want: 0.25},
		{name: "odd period", content: "75000 50000", want: 1.5},
		{name: "garbage", content: "lots", wantErr: true},
		{name: "zero quota", content: "0 100000", wantErr: true},
		{name: "three fields", content: "1 2 3", wantErr: true},
		{name: "empty", content: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseCPUMax(tt.content)
			if (err != nil) != tt.wantErr {
				t.Fatalf("parseCPUMax(%q) error = %v, wantErr %v", tt.content, err, tt.wantErr)
			}
			if got != tt.want {
				t.Fatalf("parseCPUMax(%q) = %v, want %v", tt.content, got, tt.want)
			}
		})
	}
}

func TestLocalize(t *testing.T) {
	tests := []struct {
		name, group, mountRoot, want string
	}{
		{name: "mount of the whole hierarchy", group: "/a/b", mountRoot: "/", want: "/a/b"},
		{name: "mount of our own group", group: "/docker/x", mountRoot: "/docker/x", want: "/"},
		{name: "group below the mount root", group: "/docker/x/sub", mountRoot: "/docker/x", want: "/sub"},
		{name: "group outside the mount", group: "/other", mountRoot: "/docker/x", want: "/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := localize(tt.group, &mount{root: tt.mountRoot}); got != tt.want {
				t.Fatalf("localize(%q, root %q) = %q, want %q", tt.group, tt.mountRoot, got, tt.want)
			}
		})
	}
}

// TestDetectOnThisHost: whatever the host is, Detect must not fail and the
// values must be sane; CPU time must grow as the process works.
func TestDetectOnThisHost(t *testing.T) {
	r, err := Detect()
	if err != nil {
		t.Fatalf("Detect() error = %v", err)
	}
	l, err := r.Limits()
	if err != nil {
		t.Fatalf("Limits() error = %v", err)
	}
	if l.Version != r.Version() || l.CPUCores < 0 || l.MemoryBytes < 0 {
		t.Fatalf("Limits() = %+v (Version() = %d)", l, r.Version())
	}
	u, err := r.Usage()
	if err != nil {
		t.Fatalf("Usage() error = %v", err)
	}
	burn(t, u.CPUNanos, r)
}
