package bench

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// allocEnv makes the test binary, started as a child by TestProcessPeakRSS, touch 64 MiB,
// give it back to the kernel, say "freed" and wait for its end.
const allocEnv = "BENCH_TEST_ALLOC"

func TestMain(m *testing.M) {
	if os.Getenv(allocEnv) != "" {
		b := make([]byte, 64<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1 // resident only once written
		}
		b = nil
		debug.FreeOSMemory()
		fmt.Println("freed")
		time.Sleep(time.Minute)
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

// TestProcessPeakRSS: a running child's peak RSS still counts the 64 MiB it touched and
// has given back: a high-water mark, not the current size.
func TestProcessPeakRSS(t *testing.T) {
	t.Parallel()
	pr, pw := io.Pipe()
	p, err := start("child", "", []string{os.Args[0]}, map[string]string{allocEnv: "1"}, pw)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := p.stop(10 * time.Second); err != nil {
			t.Errorf("stop: %v", err)
		}
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil || line != "freed\n" {
		t.Fatalf("child said %q, %v", line, err)
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }() // the child's output, until the pipe closes
	peak, err := p.peakRSS()
	if err != nil {
		t.Fatal(err)
	}
	if peak < 64<<20 {
		t.Errorf("peak RSS %.1f MiB, want at least the 64 MiB the child touched", peak/(1<<20))
	}
}

// TestWaitSeesAnEndedProcess: a process that has ended is reported ended by wait, even
// with no time left to wait (a select between its end and a fired timer picks either).
func TestWaitSeesAnEndedProcess(t *testing.T) {
	t.Parallel()
	p, err := start("true", "", []string{"true"}, nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if ended, err := p.wait(10 * time.Second); !ended || err != nil {
		t.Fatalf("wait = %v, %v; want ended, nil", ended, err)
	}
	for range 100 {
		if ended, _ := p.wait(0); !ended {
			t.Fatal("wait(0) on an ended process said it runs")
		}
	}
	if p.exitedAt.Load() == 0 {
		t.Error("exitedAt not set")
	}
	if err := p.stop(time.Second); err != nil {
		t.Errorf("stop after the end = %v", err)
	}
	if p.exited() == nil {
		t.Error("exited() = nil after stop: the end must stay visible")
	}
}
