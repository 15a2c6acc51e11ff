// This file is duplicated in ws-multi (internal/limits/memory_test.go) on purpose; they may diverge.

package limits

import "testing"

func TestSoftMemoryLimit(t *testing.T) {
	const gib = 1 << 30
	tests := []struct {
		name       string
		cgroup     int64
		goMemLimit string
		want       int64
		wantOK     bool
	}{
		{name: "no cgroup limit", cgroup: 0, want: 0, wantOK: false},
		{name: "1 GiB limit", cgroup: gib, want: gib * 9 / 10, wantOK: true},
		{name: "256 MiB limit", cgroup: 256 << 20, want: (256 << 20) * 9 / 10, wantOK: true},
		{name: "GOMEMLIMIT set wins", cgroup: gib, goMemLimit: "500MiB", want: 0, wantOK: false},
		{name: "GOMEMLIMIT off wins", cgroup: gib, goMemLimit: "off", want: 0, wantOK: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := SoftMemoryLimit(tt.cgroup, tt.goMemLimit)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("SoftMemoryLimit(%d, %q) = %d, %v; want %d, %v", tt.cgroup, tt.goMemLimit, got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
