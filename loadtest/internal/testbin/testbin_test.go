package testbin

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

func TestFreeAddrIsLoopbackAndListenable(t *testing.T) {
	t.Parallel()
	addr := FreeAddr(t)
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("FreeAddr = %q, want 127.0.0.1:<port>", addr)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	l.Close()
}

func TestFromEnv(t *testing.T) {
	t.Setenv("TESTBIN_UNSET", "")
	if _, ok := FromEnv(t, "TESTBIN_UNSET"); ok {
		t.Fatal("FromEnv of an unset variable reported ok")
	}
	file := filepath.Join(t.TempDir(), "bin")
	if err := os.WriteFile(file, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("TESTBIN_SET", file)
	if p, ok := FromEnv(t, "TESTBIN_SET"); !ok || p != file {
		t.Fatalf("FromEnv = %q, %v; want %q, true", p, ok, file)
	}
}

func TestRepoRootHoldsTheModules(t *testing.T) {
	t.Parallel()
	for _, m := range []string{"ws-single", "ws-multi", "loadtest"} {
		if _, err := os.Stat(filepath.Join(RepoRoot(t), m, "go.mod")); err != nil {
			t.Errorf("%s: %v", m, err)
		}
	}
}
