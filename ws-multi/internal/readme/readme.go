// This package is duplicated in ws-single (internal/readme) on purpose; they may diverge.

// Package readme reads what tests check against the repository's README: the documented
// label values of the metrics table. It is imported by tests only.
package readme

import (
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

var (
	metricRow = regexp.MustCompile("(?m)^\\| `(ws_[a-z_]+)` \\| [a-z]+ \\|([^|]*)\\|")
	quoted    = regexp.MustCompile("`([a-z0-9_]+)`")
)

// LabelValues returns the documented label values of each ws_ metric of the README's metrics
// table, in order: the back-quoted values after the colon of its labels column
// ("`reason`: `a`, `b`").
func LabelValues(t testing.TB) map[string][]string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	b, err := os.ReadFile(filepath.Join(filepath.Dir(file), "..", "..", "..", "README.md"))
	if err != nil {
		t.Fatalf("read README: %v", err)
	}
	out := map[string][]string{}
	for _, m := range metricRow.FindAllStringSubmatch(string(b), -1) {
		i := strings.Index(m[2], ":")
		if i < 0 {
			continue
		}
		for _, v := range quoted.FindAllStringSubmatch(m[2][i:], -1) {
			out[m[1]] = append(out[m[1]], v[1])
		}
	}
	return out
}
