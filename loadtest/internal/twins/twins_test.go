package twins

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestVariantsAreTwins runs the check on this repository: every package and file of
// ws-single/internal has its twin in ws-multi/internal, or is listed in DesignSpecific.
func TestVariantsAreTwins(t *testing.T) {
	t.Parallel()
	ps, err := Check(filepath.Join("..", "..", ".."), DesignSpecific)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		t.Error(p)
	}
	for path, reason := range DesignSpecific {
		if strings.TrimSpace(reason) == "" {
			t.Errorf("%s: listed in DesignSpecific without a reason", path)
		}
	}
}

// TestCheck proves the check on small trees: each kind of problem is found, and a clean
// pair of trees has none.
func TestCheck(t *testing.T) {
	t.Parallel()
	const marked = "// This file is duplicated from ws-multi on purpose.\npackage p\n"
	tests := []struct {
		name   string
		files  map[string]string // path from the root -> content
		listed map[string]string
		want   []string // substrings of the problems, in path order
	}{
		{
			name: "twins",
			files: map[string]string{
				"ws-single/internal/hub/hub.go": "package hub // one loop\n",
				"ws-multi/internal/hub/hub.go":  "package hub // shards\n",
			},
		},
		{
			name: "a file without a twin",
			files: map[string]string{
				"ws-single/internal/hub/hub.go": "package hub\n",
				"ws-multi/internal/hub/hub.go":  "package hub // shards\n",
				"ws-multi/internal/hub/x.go":    "package hub\n",
			},
			want: []string{"ws-multi/internal/hub/x.go: file without a twin"},
		},
		{
			name: "a package without a twin",
			files: map[string]string{
				"ws-single/internal/hub/hub.go":    "package hub\n",
				"ws-single/internal/extra/a.go":    "package extra\n",
				"ws-multi/internal/hub/hub.go":     "package hub // shards\n",
				"ws-single/internal/extra/b_x.txt": "x",
			},
			want: []string{"ws-single/internal/extra: package without a twin", "ws-single/internal/extra/a.go: file", "ws-single/internal/extra/b_x.txt: file"},
		},
		{
			name: "listed design-specific package",
			files: map[string]string{
				"ws-single/internal/hub/hub.go": "package hub\n",
				"ws-multi/internal/hub/hub.go":  "package hub // shards\n",
				"ws-multi/internal/shard/s.go":  "package shard\n",
			},
			listed: map[string]string{"ws-multi/internal/shard": "shards"},
		},
		{
			name: "stale listing",
			files: map[string]string{
				"ws-single/internal/hub/hub.go": "package hub\n",
				"ws-multi/internal/hub/hub.go":  "package hub // shards\n",
			},
			listed: map[string]string{"ws-multi/internal/hub/gone.go": "was here"},
			want:   []string{"ws-multi/internal/hub/gone.go: listed in DesignSpecific but gone"},
		},
		{
			name: "a listed file that has a twin",
			files: map[string]string{
				"ws-single/internal/hub/hub.go": "package hub\n",
				"ws-multi/internal/hub/hub.go":  "package hub // shards\n",
			},
			listed: map[string]string{"ws-multi/internal/hub/hub.go": "shards"},
			want:   []string{"ws-multi/internal/hub/hub.go: listed in DesignSpecific but it has a twin"},
		},
		{
			name: "marker on one side only",
			files: map[string]string{
				"ws-single/internal/cork/cork.go": marked,
				"ws-multi/internal/cork/cork.go":  "package p\n",
			},
			want: []string{"ws-multi/internal/cork/cork.go: its twin's first line says it is copied on purpose"},
		},
		{
			name: "identical but unmarked",
			files: map[string]string{
				"ws-single/internal/cork/cork.go": "package p // ws-single\n",
				"ws-multi/internal/cork/cork.go":  "package p // ws-multi\n",
			},
			want: []string{"ws-single/internal/cork/cork.go: identical to its twin"},
		},
		{
			name: "marked copies that differ",
			files: map[string]string{
				"ws-single/internal/cork/cork.go": marked + "// more\n",
				"ws-multi/internal/cork/cork.go":  strings.Replace(marked, "ws-multi", "ws-single", 1),
			},
			want: []string{"ws-single/internal/cork/cork.go: marked as copied on purpose but differs"},
		},
		{
			name: "marked copies on both sides",
			files: map[string]string{
				"ws-single/internal/cork/cork.go": marked,
				"ws-multi/internal/cork/cork.go":  strings.Replace(marked, "ws-multi", "ws-single", 1),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			root := t.TempDir()
			for _, v := range Variants {
				if err := os.MkdirAll(filepath.Join(root, v, "internal"), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			for path, content := range tt.files {
				p := filepath.Join(root, path)
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			ps, err := Check(root, tt.listed)
			if err != nil {
				t.Fatal(err)
			}
			if len(ps) != len(tt.want) {
				t.Fatalf("problems %q, want %d matching %q", ps, len(tt.want), tt.want)
			}
			for i, p := range ps {
				if !strings.Contains(p.String(), tt.want[i]) {
					t.Errorf("problem %d = %q, want it to contain %q", i, p, tt.want[i])
				}
			}
		})
	}
}
