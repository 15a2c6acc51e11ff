//go:build deploycheck

package deploycheck

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/adred-codev/ws_poc/loadtest/internal/testbin"
)

// TestMakeFuzzRunsEveryTarget: the Makefile's FUZZ_TARGETS names every Fuzz function of the
// three modules, each in its own package, and nothing else: `make fuzz` runs every target.
func TestMakeFuzzRunsEveryTarget(t *testing.T) {
	t.Parallel()
	root := testbin.RepoRoot(t)
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, m := range regexp.MustCompile(`(?m)^\s+([a-z-]+):(\./[^:]+):(Fuzz\w+):\w+`).FindAllStringSubmatch(string(mk), -1) {
		listed = append(listed, m[1]+"/"+strings.TrimPrefix(m[2], "./")+" "+m[3])
	}
	fuzzFunc := regexp.MustCompile(`(?m)^func (Fuzz\w+)\(\w+ \*testing\.F\)`)
	var found []string
	for _, mod := range []string{"ws-single", "ws-multi", "loadtest"} {
		err := filepath.WalkDir(filepath.Join(root, mod), func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, "_test.go") {
				return err
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(root, filepath.Dir(path))
			for _, m := range fuzzFunc.FindAllStringSubmatch(string(b), -1) {
				found = append(found, filepath.ToSlash(rel)+" "+m[1])
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(listed)
	slices.Sort(found)
	if len(found) == 0 || !slices.Equal(listed, found) {
		t.Errorf("Makefile FUZZ_TARGETS:\n  %s\nFuzz functions in the modules:\n  %s", strings.Join(listed, "\n  "), strings.Join(found, "\n  "))
	}
}
