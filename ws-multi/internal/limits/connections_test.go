// This file is part of package limits, duplicated in ws-single on purpose; they may diverge.

package limits

import (
	"bufio"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestMaxConnections(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name       string
		configured int
		memory     int64
		files      uint64
		perIP      int // WS_HTTP_MAX_CONNS_PER_IP
		want       int
	}{
		{name: "configured wins over everything", configured: 123, memory: 1 * mib, files: 100, want: 123},
		{name: "memory is the lower bound", memory: 512 * mib, files: 20000, want: 5734}, // 512 MiB × 0.7 / 64 KiB = 5734.4
		{name: "open files are the lower bound", memory: 4096 * mib, files: 20000, want: 19936},
		{name: "no memory limit: open files only", memory: 0, files: 1024, want: 960},
		{name: "a fraction of a connection rounds down", memory: 64 * 1024 * 1024 * 10 / 7, files: 1 << 20, want: 1023}, // 1023.99...
		{name: "tiny memory limit still serves one", memory: 4096, files: 20000, want: 1},
		{name: "open files below the reserve still serves one", memory: 0, files: 10, want: 1},
		{name: "unlimited open files are capped", memory: 0, files: math.MaxUint64, want: math.MaxInt32},
		{name: "unlimited open files with a memory limit", memory: 1 << 30, files: math.MaxUint64, want: 11468},
		{name: "negative configured means auto", configured: -5, memory: 0, files: 164, want: 100},
		{name: "the per-IP cap is reserved too", memory: 0, files: 1024, perIP: 32, want: 928},
		{name: "open-file limit of 400 with the default cap", memory: 0, files: 400, perIP: 128, want: 208},
		{name: "the reserve applies under a memory limit", memory: 4096 * mib, files: 20000, perIP: 32, want: 19904},
		{name: "open files below the reserve with a cap still serves one", memory: 0, files: 90, perIP: 32, want: 1},
		{name: "configured ignores the reserve", configured: 500, files: 100, perIP: 32, want: 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := MaxConnections(tt.configured, tt.memory, tt.files, tt.perIP); got != tt.want {
				t.Fatalf("MaxConnections(%d, %d, %d, %d) = %d, want %d", tt.configured, tt.memory, tt.files, tt.perIP, got, tt.want)
			}
		})
	}
}

// TestOpenFileLimit compares with the kernel's own report in /proc/self/limits.
func TestOpenFileLimit(t *testing.T) {
	f, err := os.Open("/proc/self/limits")
	if err != nil {
		t.Fatalf("open /proc/self/limits: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "Max open files") {
			continue
		}
		soft := strings.Fields(strings.TrimPrefix(line, "Max open files"))[0]
		want := uint64(math.MaxUint64)
		if soft != "unlimited" {
			if want, err = strconv.ParseUint(soft, 10, 64); err != nil {
				t.Fatalf("parse %q: %v", line, err)
			}
		}
		if got := OpenFileLimit(); got != want {
			t.Fatalf("OpenFileLimit() = %d, /proc/self/limits says %d", got, want)
		}
		return
	}
	t.Fatal("no Max open files line in /proc/self/limits")
}
