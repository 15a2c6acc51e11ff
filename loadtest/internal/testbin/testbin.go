// Package testbin finds or builds the binaries that loadtest's end-to-end, broadcast and
// deploy tests start, and hands them free loopback addresses. It is imported by tests only.
package testbin

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// buildTimeout bounds one `go build` of a module (a cold race-free build takes well under it).
const buildTimeout = 5 * time.Minute

// RepoRoot is the repository root, seen from a test in loadtest/internal/<package>.
func RepoRoot(t testing.TB) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", "..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// FromEnv returns the binary that envVar names (`make test` sets WS_SINGLE_BIN, WS_MULTI_BIN
// and LOADTEST_BIN to what it just built); ok is false when envVar is unset. A set variable
// naming no file fails the test: it means bin/ is stale, not that the test should build.
func FromEnv(t testing.TB, envVar string) (path string, ok bool) {
	t.Helper()
	p := os.Getenv(envVar)
	if p == "" {
		return "", false
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("%s=%s: %v (run `make build` first, or unset it to build here)", envVar, p, err)
	}
	return p, true
}

// Build builds module (ws-single, ws-multi or loadtest, a directory at the repository root)
// as the Makefile does, GOWORK=off, into dir, and returns the binary's path.
func Build(t testing.TB, module, dir string) string {
	t.Helper()
	out := filepath.Join(dir, module)
	ctx, cancel := context.WithTimeout(context.Background(), buildTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, ".")
	cmd.Dir = filepath.Join(RepoRoot(t), module)
	cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", module, err, b)
	}
	return out
}

// FreeAddr returns a loopback address whose port was free a moment ago.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}
