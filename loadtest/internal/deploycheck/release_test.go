//go:build deploycheck

package deploycheck

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/adred-codev/ws_poc/loadtest/internal/testbin"
)

// releaseRepo is a throwaway clone of the repository, with git isolated from the machine's
// configuration, in which deploy/release.sh may commit and tag.
type releaseRepo struct {
	t   *testing.T
	dir string
	env []string
}

func newReleaseRepo(t *testing.T) *releaseRepo {
	t.Helper()
	r := &releaseRepo{t: t, dir: filepath.Join(t.TempDir(), "repo")}
	r.env = append(os.Environ(),
		"GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL="+os.DevNull,
		"GIT_AUTHOR_NAME=release test", "GIT_AUTHOR_EMAIL=release@test.invalid",
		"GIT_COMMITTER_NAME=release test", "GIT_COMMITTER_EMAIL=release@test.invalid",
	)
	// --no-tags: the clone starts with no release, whatever the real repository has tagged.
	if out, err := r.run(testbin.RepoRoot(t), nil, "git", "clone", "-q", "--no-tags", testbin.RepoRoot(t), r.dir); err != nil {
		t.Fatalf("git clone: %v\n%s", err, out)
	}
	return r
}

// run runs a command in dir with the isolated environment plus env; it returns the output.
func (r *releaseRepo) run(dir string, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(append([]string{}, r.env...), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// git runs git in the clone and fails the test on error.
func (r *releaseRepo) git(args ...string) string {
	r.t.Helper()
	out, err := r.run(r.dir, nil, "git", args...)
	if err != nil {
		r.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(out)
}

// addNote adds a line under [Unreleased] of module's CHANGELOG and commits it.
func (r *releaseRepo) addNote(module, note string) {
	r.t.Helper()
	path := filepath.Join(r.dir, module, "CHANGELOG.md")
	b, err := os.ReadFile(path)
	if err != nil {
		r.t.Fatal(err)
	}
	s := strings.Replace(string(b), "## [Unreleased]\n", "## [Unreleased]\n\n### Fixed\n\n- "+note+"\n", 1)
	if err := os.WriteFile(path, []byte(s), 0o644); err != nil {
		r.t.Fatal(err)
	}
	r.git("commit", "-q", "-m", "note", "--", module+"/CHANGELOG.md")
}

func TestReleaseDryRun(t *testing.T) {
	r := newReleaseRepo(t)
	script := filepath.Join(r.dir, "deploy", "release.sh")
	skip := []string{"SKIP_TESTS=1"}

	steps := []struct {
		name    string
		setup   func(t *testing.T)
		cmd     []string
		env     []string
		wantErr string // "" = must succeed
		check   func(t *testing.T)
	}{
		{name: "version without v", cmd: []string{script, "ws-single", "1.2.0"}, env: skip, wantErr: "is not semver"},
		{name: "two-part version", cmd: []string{script, "ws-single", "v1.2"}, env: skip, wantErr: "is not semver"},
		{name: "leading zero", cmd: []string{script, "ws-single", "v1.02.0"}, env: skip, wantErr: "is not semver"},
		{name: "build metadata", cmd: []string{script, "ws-single", "v1.2.0+exp"}, env: skip, wantErr: "build metadata"},
		{name: "unknown module", cmd: []string{script, "ws-triple", "v1.2.0"}, env: skip, wantErr: "unknown module"},
		{
			name: "untracked file",
			setup: func(t *testing.T) {
				if err := os.WriteFile(filepath.Join(r.dir, "ws-single", "scratch.txt"), []byte("x"), 0o644); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { os.Remove(filepath.Join(r.dir, "ws-single", "scratch.txt")) })
			},
			cmd: []string{script, "ws-single", "v1.2.0"}, env: skip, wantErr: "work tree is not clean",
		},
		{
			name: "modified file",
			setup: func(t *testing.T) {
				f, err := os.OpenFile(filepath.Join(r.dir, "README.md"), os.O_APPEND|os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				f.WriteString("\nedit\n")
				f.Close()
				t.Cleanup(func() { r.git("checkout", "--", "README.md") })
			},
			cmd: []string{script, "ws-single", "v1.2.0"}, env: skip, wantErr: "work tree is not clean",
		},
		{
			// The test gate runs `make test/ws-single`; GO=false makes it fail without
			// compiling anything.
			name: "failing tests", cmd: []string{script, "ws-single", "v1.2.0"}, env: []string{"GO=false"},
			wantErr: "make test/ws-single failed",
		},
		{
			name: "release through make", cmd: []string{"make", "--no-print-directory", "release-single", "VERSION=v1.2.0"}, env: skip,
			check: func(t *testing.T) {
				if got := r.git("cat-file", "-t", "ws-single/v1.2.0"); got != "tag" {
					t.Errorf("ws-single/v1.2.0 is a %s, want an annotated tag", got)
				}
				if tagged, head := r.git("rev-list", "-n1", "ws-single/v1.2.0"), r.git("rev-parse", "HEAD"); tagged != head {
					t.Errorf("tag points at %s, want the release commit %s", tagged, head)
				}
				if msg := r.git("log", "-1", "--format=%s"); msg != "ws-single: release v1.2.0" {
					t.Errorf("release commit message %q", msg)
				}
				if files := r.git("show", "--name-only", "--format=", "HEAD"); files != "ws-single/CHANGELOG.md" {
					t.Errorf("release commit changes %q, want only ws-single/CHANGELOG.md", files)
				}
				b, err := os.ReadFile(filepath.Join(r.dir, "ws-single", "CHANGELOG.md"))
				if err != nil {
					t.Fatal(err)
				}
				want := "## [Unreleased]\n\n## [1.2.0] - " + time.Now().UTC().Format("2006-01-02") + "\n\n### Added\n"
				if !strings.Contains(string(b), want) {
					t.Errorf("CHANGELOG does not move [Unreleased] under the release; want %q in\n%s", want, b)
				}
				if st := r.git("status", "--porcelain"); st != "" {
					t.Errorf("work tree dirty after the release:\n%s", st)
				}
				// Never pushed: the origin (the real repository) has no such tag.
				if remote := r.git("ls-remote", "--tags", "origin", "ws-single/v1.2.0"); remote != "" {
					t.Errorf("the tag reached origin: %s", remote)
				}
				// The Makefile now stamps the binary (--version, ws_build_info) with it.
				if out := makeDryRun(t, r.dir, "single"); !strings.Contains(out, "-X main.version=v1.2.0 ") {
					t.Errorf("make -n single after the release:\n%s", out)
				}
				if out := makeDryRun(t, r.dir, "multi"); !strings.Contains(out, "-X main.version=v0.0.0-dev ") {
					t.Errorf("ws-multi's version moved with a ws-single tag:\n%s", out)
				}
			},
		},
		{name: "same version again", cmd: []string{script, "ws-single", "v1.2.0"}, env: skip, wantErr: "not newer than the last release ws-single/v1.2.0"},
		{name: "older version", cmd: []string{script, "ws-single", "v1.1.9"}, env: skip, wantErr: "not newer"},
		{name: "pre-release of the last version", cmd: []string{script, "ws-single", "v1.2.0-rc.1"}, env: skip, wantErr: "not newer"},
		{name: "nothing unreleased", cmd: []string{script, "single", "v1.3.0"}, env: skip, wantErr: "nothing under [Unreleased]"},
		{
			name: "pre-release of the next version", setup: func(t *testing.T) { r.addNote("ws-single", "fix one") },
			cmd: []string{script, "single", "v1.3.0-rc.9"}, env: skip,
		},
		{
			// Numeric pre-release identifiers compare as numbers: rc.10 > rc.9.
			name: "numeric pre-release order", setup: func(t *testing.T) { r.addNote("ws-single", "fix two") },
			cmd: []string{script, "ws-single", "v1.3.0-rc.10"}, env: skip,
		},
		{
			name: "tags sort by semver, not as text", setup: func(t *testing.T) { r.addNote("ws-single", "fix three") },
			cmd: []string{script, "ws-single", "v1.3.0-rc.2"}, env: skip, wantErr: "not newer than the last release ws-single/v1.3.0-rc.10",
		},
		{
			name: "another module releases on its own", cmd: []string{"make", "--no-print-directory", "release-multi", "VERSION=v0.1.0"}, env: skip,
			check: func(t *testing.T) {
				if got := r.git("tag", "--list", "ws-multi/*"); got != "ws-multi/v0.1.0" {
					t.Errorf("ws-multi tags %q", got)
				}
			},
		},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.setup != nil {
				st.setup(t)
			}
			before := r.git("rev-parse", "HEAD")
			tagsBefore := r.git("tag", "--list")
			out, err := r.run(r.dir, st.env, st.cmd[0], st.cmd[1:]...)
			if st.wantErr == "" {
				if err != nil {
					t.Fatalf("%v: %v\n%s", st.cmd, err, out)
				}
				if st.check != nil {
					st.check(t)
				}
				return
			}
			if err == nil {
				t.Fatalf("%v succeeded, want refusal %q\n%s", st.cmd, st.wantErr, out)
			}
			if !strings.Contains(out, st.wantErr) {
				t.Errorf("%v output does not say %q:\n%s", st.cmd, st.wantErr, out)
			}
			// A refusal changes nothing.
			if after := r.git("rev-parse", "HEAD"); after != before {
				t.Errorf("refused release moved HEAD %s -> %s", before, after)
			}
			if tags := r.git("tag", "--list"); tags != tagsBefore {
				t.Errorf("refused release changed tags: %q -> %q", tagsBefore, tags)
			}
		})
	}
}
