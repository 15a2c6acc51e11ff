// Package twins checks that ws-single and ws-multi read side by side: every package and
// file of one variant's internal/ has a twin at the same path in the other, unless it is
// listed in DesignSpecific with the reason it exists on one side only, and the files copied
// on purpose say so in their first line on both sides and stay the same, but for the files
// listed in MayDiffer (docs/ARCHITECTURE.md, "Where each concern lives").
package twins

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

// Variants are the two modules, as directories of the repository root.
var Variants = [2]string{"ws-single", "ws-multi"}

// DesignSpecific lists the files and packages that exist in one variant only, by path from
// the repository root, with the design difference that needs them. It is the one place the
// twin check reads; everything else must have a twin. It is empty today: the design
// difference (one loop against N shards) lives inside twin files (hub/loop.go holds
// ws-single's loop and ws-multi's shard), and ws-multi's variant-only tests sit in
// server/variant_test.go, which both variants have.
var DesignSpecific = map[string]string{}

// MayDiffer lists the files copied on purpose that carry one variant's additions, by path
// under internal/, with what differs. Every other file marked as copied must be the same in
// both variants but for their names.
var MayDiffer = map[string]string{
	"config/config.go":      "ws-multi's WS_SHARDS setting",
	"config/load.go":        "ws-multi reads WS_SHARDS",
	"config/validate.go":    "ws-multi validates WS_SHARDS",
	"config/config_test.go": "ws-multi's WS_SHARDS cases",
	"metrics/metrics.go":    "ws-multi's per-shard series",
}

// copyMarker is what the first line of a file copied on purpose says: "duplicated" ... the
// other variant ... "on purpose" (STYLE.md, Twins).
var copyMarker = regexp.MustCompile(`^(//|<!--) .*duplicated .*ws-(single|multi).* on purpose`)

// Problem is one way the trees are not twins.
type Problem struct {
	Path string // from the repository root
	What string
}

func (p Problem) String() string { return p.Path + ": " + p.What }

// Check compares root/ws-single/internal with root/ws-multi/internal and returns every
// problem, sorted by path; listed is the design-specific list (DesignSpecific for this
// repository). It fails (err) only when it cannot read the trees.
func Check(root string, listed map[string]string) ([]Problem, error) {
	var trees [2]map[string]bool
	for i, v := range Variants {
		t, err := walk(filepath.Join(root, v, "internal"))
		if err != nil {
			return nil, err
		}
		trees[i] = t
	}
	var ps []Problem
	for i := range Variants {
		mine, other := trees[i], trees[1-i]
		for rel, dir := range mine {
			path := Variants[i] + "/internal/" + rel
			if _, ok := listed[path]; ok {
				if _, twin := other[rel]; twin {
					ps = append(ps, Problem{path, "listed in DesignSpecific but it has a twin now: take it off the list"})
				}
				continue
			}
			if under(listed, path) {
				continue // inside a listed design-specific package
			}
			if _, ok := other[rel]; !ok {
				kind := "file"
				if dir {
					kind = "package"
				}
				ps = append(ps, Problem{path, fmt.Sprintf("%s without a twin at %s/internal/%s: add it there, or list it in twins.DesignSpecific with its reason", kind, Variants[1-i], rel)})
				continue
			}
			if dir || i == 1 {
				continue // each pair of files is compared once, from ws-single
			}
			if p, ok, err := compare(root, rel); err != nil {
				return nil, err
			} else if !ok {
				ps = append(ps, p)
			}
		}
	}
	for path := range listed {
		if _, err := os.Stat(filepath.Join(root, path)); err != nil {
			ps = append(ps, Problem{path, "listed in DesignSpecific but gone: take it off the list"})
		}
	}
	slices.SortFunc(ps, func(a, b Problem) int { return strings.Compare(a.Path, b.Path) })
	return ps, nil
}

// under reports whether path lies inside a listed directory.
func under(listed map[string]string, path string) bool {
	for p := range listed {
		if strings.HasPrefix(path, p+"/") {
			return true
		}
	}
	return false
}

// walk returns every file and directory under dir, by path relative to it (slash
// separated), true for directories.
func walk(dir string) (map[string]bool, error) {
	tree := map[string]bool{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, path)
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == "testdata" {
			tree[filepath.ToSlash(rel)] = true
			return filepath.SkipDir // fixtures follow their tests
		}
		tree[filepath.ToSlash(rel)] = d.IsDir()
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("twins: %w", err)
	}
	return tree, nil
}

// compare checks the copy marker of one pair of twin files: a file whose first line says it
// is copied on purpose must have a twin that says so too, and twins identical but for the
// variants' names are copies and must both say so.
func compare(root, rel string) (Problem, bool, error) {
	var body [2][]byte
	var marked [2]bool
	for i, v := range Variants {
		b, err := os.ReadFile(filepath.Join(root, v, "internal", rel))
		if err != nil {
			return Problem{}, false, fmt.Errorf("twins: %w", err)
		}
		first, _, _ := bytes.Cut(b, []byte("\n"))
		marked[i] = copyMarker.Match(first)
		body[i] = normalize(b)
	}
	switch {
	case marked[0] != marked[1]:
		i := 0
		if marked[0] {
			i = 1
		}
		return Problem{Variants[i] + "/internal/" + rel, "its twin's first line says it is copied on purpose, this one's does not"}, false, nil
	case !marked[0] && bytes.Equal(body[0], body[1]):
		return Problem{Variants[0] + "/internal/" + rel, "identical to its twin but for the variant names: a copy on purpose must say so in its first line on both sides"}, false, nil
	case marked[0] && !bytes.Equal(afterFirstLine(body[0]), afterFirstLine(body[1])):
		if _, ok := MayDiffer[rel]; !ok {
			return Problem{Variants[0] + "/internal/" + rel, "marked as copied on purpose but differs from its twin: make them the same, or list it in twins.MayDiffer with what differs"}, false, nil
		}
	}
	return Problem{}, true, nil
}

// variantName matches either variant's name, so that copies can be compared across them.
var variantName = regexp.MustCompile(`ws-(single|multi)`)

func normalize(b []byte) []byte { return variantName.ReplaceAll(b, []byte("ws-X")) }

// afterFirstLine drops the marker line, whose wording may differ between the sides.
func afterFirstLine(b []byte) []byte {
	_, rest, _ := bytes.Cut(b, []byte("\n"))
	return rest
}
