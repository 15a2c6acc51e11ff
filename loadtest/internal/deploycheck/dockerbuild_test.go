//go:build deploycheck

package deploycheck

import (
	"context"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"

	"github.com/adred-codev/ws_poc/loadtest/internal/testbin"
)

// buildContext copies the repository into dir as `docker build` would send it: every file the
// Dockerfile's .dockerignore keeps (docker's own matcher, moby/patternmatcher).
func buildContext(t *testing.T, dockerfile, dir string) {
	t.Helper()
	f, err := os.Open(dockerfile + ".dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	patterns, err := ignorefile.ReadAll(f)
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		t.Fatal(err)
	}
	root := testbin.RepoRoot(t)
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil || rel == "." {
			return err
		}
		if d.IsDir() {
			// .git and bin/ are never in an image; skipping them keeps the walk short.
			if rel == ".git" || rel == "bin" {
				return filepath.SkipDir
			}
			return nil
		}
		excluded, err := pm.MatchesOrParentMatches(filepath.ToSlash(rel))
		if err != nil || excluded || !d.Type().IsRegular() {
			return err
		}
		return copyFile(path, filepath.Join(dir, rel))
	})
	if err != nil {
		t.Fatalf("build context: %v", err)
	}
}

func copyFile(src, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	info, err := in.Stat()
	if err != nil {
		return err
	}
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, info.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

// copyTree copies a file or a directory's contents (COPY semantics) from src to dst.
func copyTree(src, dst string) error {
	info, err := os.Stat(src)
	if err != nil {
		return err
	}
	if !info.IsDir() {
		if strings.HasSuffix(dst, "/") {
			dst = filepath.Join(dst, filepath.Base(src))
		}
		return copyFile(src, dst)
	}
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		return copyFile(path, filepath.Join(dst, rel))
	})
}

// TestDockerBuildStage plays each Dockerfile's build stage without a container engine: the
// build context filtered by its .dockerignore, then the stage's WORKDIR, COPY, ARG and RUN
// instructions in a temporary root (absolute paths mapped into it), with build args VERSION
// and COMMIT. The binary the final stage copies must exist and report that version and commit,
// so a file the context leaves out, or a build line that does not build, fails here first.
func TestDockerBuildStage(t *testing.T) {
	const version, commit = "v9.8.7-test", "feedbee"
	for _, module := range []string{"ws-single", "ws-multi", "loadtest"} {
		t.Run(module, func(t *testing.T) {
			dockerfile := deployPath(t, "docker", module+".Dockerfile")
			tmp := t.TempDir()
			ctxDir, stage := filepath.Join(tmp, "context"), filepath.Join(tmp, "stage")
			buildContext(t, dockerfile, ctxDir)
			if _, err := os.Stat(filepath.Join(ctxDir, "loadtest", "e2e")); err == nil && module == "loadtest" {
				t.Error("loadtest context carries loadtest/e2e (node clients and node_modules)")
			}

			// in maps an absolute path inside the build container into the temporary root.
			in := func(p string) string { return filepath.Join(stage, p) }
			workdir := "/"
			env := append(os.Environ(), "GOWORK=off", "VERSION="+version, "COMMIT="+commit)
			var finalCopy string // the path the final stage copies from the build stage
			stages := 0
			for _, ins := range dockerInstructions(t, dockerfile) {
				op, args, _ := strings.Cut(ins, " ")
				if op == "FROM" {
					stages++
					continue
				}
				if stages > 1 {
					if op == "COPY" && strings.HasPrefix(args, "--from=build ") {
						finalCopy = strings.Fields(args)[1]
					}
					continue
				}
				switch op {
				case "WORKDIR":
					workdir = filepath.Join(workdir, args)
					if err := os.MkdirAll(in(workdir), 0o755); err != nil {
						t.Fatal(err)
					}
				case "COPY":
					f := strings.Fields(args)
					dst := f[len(f)-1]
					if !filepath.IsAbs(dst) {
						dst = filepath.Join(workdir, dst)
					}
					dst = in(dst)
					if strings.HasSuffix(f[len(f)-1], "/") {
						dst += "/" // a directory: files keep their names inside it
					}
					for _, src := range f[:len(f)-1] {
						if err := copyTree(filepath.Join(ctxDir, src), dst); err != nil {
							t.Fatalf("%s: %v (is it in the build context?)", ins, err)
						}
					}
				case "ARG":
					// Defaults only; VERSION and COMMIT come as build args (env above).
				case "RUN":
					cmdline := mountFlag.ReplaceAllString(args, "")
					cmdline = strings.ReplaceAll(cmdline, " /out/", " "+in("/out")+"/")
					ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
					cmd := exec.CommandContext(ctx, "sh", "-c", cmdline)
					cmd.Dir = in(workdir)
					cmd.Env = env
					out, err := cmd.CombinedOutput()
					cancel()
					if err != nil {
						t.Fatalf("%s: %v\n%s", ins, err, out)
					}
				default:
					t.Fatalf("build stage instruction %q: this check does not know it", op)
				}
			}
			if finalCopy == "" {
				t.Fatal("the final stage copies nothing from the build stage")
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, in(finalCopy), "--version").CombinedOutput()
			if err != nil {
				t.Fatalf("%s --version: %v\n%s", finalCopy, err, out)
			}
			if want := module + " " + version + " (commit " + commit + ")"; strings.TrimSpace(string(out)) != want {
				t.Errorf("image binary --version = %q, want %q", strings.TrimSpace(string(out)), want)
			}
		})
	}
}
