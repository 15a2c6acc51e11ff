//go:build deploycheck

package deploycheck

import (
	"bufio"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/adred-codev/ws_poc/loadtest/internal/testbin"
)

// deployPath joins parts under the repository's deploy/ directory.
func deployPath(t *testing.T, parts ...string) string {
	t.Helper()
	return filepath.Join(append([]string{testbin.RepoRoot(t), "deploy"}, parts...)...)
}

// mustExist fails the test when path does not exist; what says who referred to it.
func mustExist(t *testing.T, path, what string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		t.Errorf("%s refers to %s, which does not exist: %v", what, path, err)
	}
}

// readmeTable returns the first-column names of the README table rows whose first cell is
// a code span matching pattern: the configuration variables or the metric names (the contract).
func readmeTable(t *testing.T, pattern string) map[string]bool {
	t.Helper()
	f, err := os.Open(filepath.Join(testbin.RepoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	row := regexp.MustCompile("^\\| `(" + pattern + ")` \\|")
	names := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := row.FindStringSubmatch(sc.Text()); m != nil {
			names[m[1]] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(names) == 0 {
		t.Fatalf("README.md: no table rows match %q", pattern)
	}
	return names
}

// readmeConfig is the set of configuration variables in the README's table.
func readmeConfig(t *testing.T) map[string]bool { return readmeTable(t, "WS_[A-Z_]+") }

// readmeMetrics is the set of metric names in the README's table.
func readmeMetrics(t *testing.T) map[string]bool { return readmeTable(t, "ws_[a-z_]+") }

// metricRef matches the metric names a PromQL expression can use from our servers, the
// standard process/Go collectors and Prometheus' own `up`.
var metricRef = regexp.MustCompile(`\b((?:ws|go|process)_[a-z0-9_]+|up)\b`)

// checkMetricNames fails for every metric in expr that the servers do not export: not in the
// README's table (histograms via _bucket/_sum/_count) nor a standard collector.
func checkMetricNames(t *testing.T, where, expr string, contract map[string]bool) {
	t.Helper()
	for _, name := range metricRef.FindAllString(expr, -1) {
		if strings.HasPrefix(name, "go_") || strings.HasPrefix(name, "process_") || name == "up" {
			continue
		}
		base := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if b, ok := strings.CutSuffix(name, suffix); ok && contract[b] {
				base = b
			}
		}
		if !contract[base] {
			t.Errorf("%s: metric %s is not in the README's metrics table: %s", where, name, expr)
		}
	}
}

// readEnvFile reads KEY=VALUE lines, skipping blanks and # comments.
func readEnvFile(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Errorf("%s:%d: not KEY=VALUE: %q", path, i+1, line)
			continue
		}
		env[k] = v
	}
	return env
}

// checkEnvKeys fails for every WS_ variable that is not in the README's configuration table.
func checkEnvKeys(t *testing.T, where string, env map[string]string) {
	t.Helper()
	known := readmeConfig(t)
	for k := range env {
		if strings.HasPrefix(k, "WS_") && !known[k] {
			t.Errorf("%s: %s is not a configuration variable of the README", where, k)
		}
	}
}

// decodeYAMLDocs decodes every document of a YAML file (maps, lists or scalars).
func decodeYAMLDocs(t *testing.T, path string) []any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dec := yaml.NewDecoder(f)
	var docs []any
	for {
		var doc any
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if doc != nil {
			docs = append(docs, doc)
		}
	}
	return docs
}

// decodeYAML decodes a single-document YAML file into v (fields v does not name are ignored).
func decodeYAML(t *testing.T, path string, v any) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := yaml.NewDecoder(f).Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// decodeYAMLBytes decodes one YAML document from b into v; name is for messages.
func decodeYAMLBytes(t *testing.T, name string, b []byte, v any) {
	t.Helper()
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}
