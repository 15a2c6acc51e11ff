//go:build deploycheck

package deploycheck

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/adred-codev/ws_poc/loadtest/internal/testbin"
)

// makeDryRun prints the commands `make <target>` would run in dir, without running them.
func makeDryRun(t *testing.T, dir string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "make", append([]string{"--no-print-directory", "-n"}, args...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make -n %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// dockerInstructions reads a Dockerfile into instructions, joining continuation lines and
// dropping comments.
func dockerInstructions(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	cur := ""
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if cur == "" && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if s, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur += s + " "
			continue
		}
		out = append(out, strings.Join(strings.Fields(cur+trimmed), " "))
		cur = ""
	}
	return out
}

var (
	ldVersion = regexp.MustCompile(`-X main\.version=\S+`)
	ldCommit  = regexp.MustCompile(`-X main\.commit=[^\s"]+`)
	outFlag   = regexp.MustCompile(`-o \S+`)
	mountFlag = regexp.MustCompile(`--mount=\S+ `)
)

// normalizeBuild replaces the values that legitimately differ between the Makefile and the
// Dockerfile (version, commit, output path) so the rest must match byte for byte.
func normalizeBuild(line string) string {
	line = ldVersion.ReplaceAllString(line, "-X main.version=VERSION")
	line = ldCommit.ReplaceAllString(line, "-X main.commit=COMMIT")
	line = outFlag.ReplaceAllString(line, "-o OUT")
	return strings.Join(strings.Fields(line), " ")
}

func TestDockerfiles(t *testing.T) {
	root := testbin.RepoRoot(t)
	tests := []struct {
		module     string
		makeTarget string
		server     bool
	}{
		{module: "ws-single", makeTarget: "single", server: true},
		{module: "ws-multi", makeTarget: "multi", server: true},
		{module: "loadtest", makeTarget: "loadtest"},
	}
	for _, tt := range tests {
		t.Run(tt.module, func(t *testing.T) {
			path := filepath.Join(root, "deploy", "docker", tt.module+".Dockerfile")
			ins := dockerInstructions(t, path)

			// The build line: exactly the Makefile's, modulo version, commit and output path.
			var makeBuild string
			for _, line := range strings.Split(makeDryRun(t, root, tt.makeTarget), "\n") {
				if strings.Contains(line, " build ") {
					makeBuild = line
				}
			}
			if makeBuild == "" {
				t.Fatalf("make -n %s prints no go build line", tt.makeTarget)
			}
			var dockerBuild string
			for _, in := range ins {
				if strings.HasPrefix(in, "RUN ") && strings.Contains(in, " go build ") {
					dockerBuild = mountFlag.ReplaceAllString(strings.TrimPrefix(in, "RUN "), "")
				}
			}
			if dockerBuild == "" {
				t.Fatalf("%s: no RUN ... go build line", path)
			}
			if got, want := normalizeBuild(dockerBuild), normalizeBuild(makeBuild); got != want {
				t.Errorf("Dockerfile build line differs from the Makefile's:\n docker: %s\n   make: %s", got, want)
			}
			if !strings.Contains(dockerBuild, "-X main.version=${VERSION}") || !strings.Contains(dockerBuild, "-X main.commit=${COMMIT}") {
				t.Errorf("build line does not stamp the VERSION and COMMIT build args: %s", dockerBuild)
			}

			// The final stage: distroless (or scratch), non-root, the binary as entry point.
			last := 0
			for i, in := range ins {
				if strings.HasPrefix(in, "FROM ") {
					last = i
				}
			}
			final := ins[last:]
			from := final[0]
			if from != "FROM gcr.io/distroless/static-debian12:nonroot" && from != "FROM scratch" {
				t.Errorf("final stage %q: want distroless static nonroot or scratch", from)
			}
			want := map[string]bool{
				"USER nonroot:nonroot":                false,
				`ENTRYPOINT ["/` + tt.module + `"]`:   false,
				"COPY --from=build /out/" + tt.module: false,
			}
			if tt.server {
				want["EXPOSE 3002"] = false
				want[`CMD ["/`+tt.module+`", "healthcheck"]`] = false
			}
			for _, in := range final {
				for w := range want {
					if strings.HasPrefix(in, w) || (strings.HasPrefix(in, "HEALTHCHECK ") && strings.HasSuffix(in, w)) {
						want[w] = true
					}
				}
			}
			for w, ok := range want {
				if !ok {
					t.Errorf("final stage has no %q", w)
				}
			}

			// Every file copied from the build context (the repository root) exists.
			for _, in := range ins {
				if !strings.HasPrefix(in, "COPY ") || strings.Contains(in, "--from=") {
					continue
				}
				f := strings.Fields(in)
				for _, src := range f[1 : len(f)-1] {
					mustExist(t, filepath.Join(root, src), path+" COPY")
				}
			}
			mustExist(t, path+".dockerignore", path)
		})
	}
}

// TestDockerMakeTargets: `make docker-single` tags the image with the same version the binary
// is stamped with, from the variant's own tags.
func TestDockerMakeTargets(t *testing.T) {
	root := testbin.RepoRoot(t)
	for _, tt := range []struct{ target, module, build string }{
		{target: "docker-single", module: "ws-single", build: "single"},
		{target: "docker-multi", module: "ws-multi", build: "multi"},
		{target: "docker-loadtest", module: "loadtest", build: "loadtest"},
	} {
		t.Run(tt.target, func(t *testing.T) {
			version := ldVersion.FindString(makeDryRun(t, root, tt.build))
			version = strings.TrimPrefix(version, "-X main.version=")
			if version == "" {
				t.Fatalf("make -n %s stamps no version", tt.build)
			}
			out := makeDryRun(t, root, tt.target)
			for _, want := range []string{
				"-f deploy/docker/" + tt.module + ".Dockerfile",
				"--build-arg VERSION=" + version + " ",
				"--build-arg COMMIT=",
				"-t " + tt.module + ":" + version + " .",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("make -n %s: no %q in\n%s", tt.target, want, out)
				}
			}
		})
	}
}
