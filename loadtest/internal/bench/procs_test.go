package bench

import (
	"io"
	"os"
	"testing"
	"time"
)

// allocEnv makes the test binary, started as a child by TestProcessMaxRSS, touch 64 MiB
// and exit.
const allocEnv = "BENCH_TEST_ALLOC_MIB"

func TestMain(m *testing.M) {
	if os.Getenv(allocEnv) != "" {
		b := make([]byte, 64<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1 // resident only once written
		}
		os.Exit(int(b[len(b)-4096]) - 1)
	}
	os.Exit(m.Run())
}

// TestProcessMaxRSS: a stopped child reports its peak RSS from the kernel, the 64 MiB it
// touched included, although it had freed nothing and exited before anyone sampled it.
func TestProcessMaxRSS(t *testing.T) {
	p, err := start("child", "", []string{os.Args[0]}, map[string]string{allocEnv: "64"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	// Let it finish on its own: stop's SIGTERM would end it before it allocated.
	deadline := time.Now().Add(20 * time.Second)
	for p.exited() == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := p.stop(time.Second); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if p.maxRSS < 64<<20 {
		t.Errorf("maxRSS %.1f MiB, want at least the 64 MiB the child touched", p.maxRSS/(1<<20))
	}
}
