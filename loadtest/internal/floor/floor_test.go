package floor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// readerEnv makes the test binary act as the reader process (see TestMain), so Measure is
// tested with a real child, its pipes and its exit.
const readerEnv = "FLOOR_TEST_AS_READER"

func TestMain(m *testing.M) {
	if os.Getenv(readerEnv) == "1" {
		args := os.Args[1:]
		// Run's default reader command is this executable with "floor-reader" first.
		if len(args) > 0 && args[0] == "floor-reader" {
			args = args[1:]
		}
		if err := readerMain(context.Background(), args, os.Stdin, os.Stderr); err != nil {
			os.Stderr.WriteString(err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

func TestMeasure(t *testing.T) {
	t.Setenv(readerEnv, "1")
	own, err := Affinity()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		readerCPUs string
		rates      []int
	}{
		{"reader not pinned", "", []int{1000}},
		{"reader under taskset, two rates", own, []int{1000, 2000}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fdsBefore := openFDs(t)
			var log bytes.Buffer
			rep, err := Measure(testCtx(t), Config{
				Conns: 20, Payload: 200, Rates: tt.rates, Duration: 300 * time.Millisecond,
				ReaderCPUs: tt.readerCPUs, ReaderCommand: []string{os.Args[0]}, Log: &log,
			})
			if err != nil {
				t.Fatalf("Measure: %v (reader said %q)", err, log.String())
			}
			if rep.ReaderExitCode != 0 {
				t.Errorf("reader exit code %d, want 0: it ends by itself when its stdin closes", rep.ReaderExitCode)
			}
			if rep.ReaderCPUs != tt.readerCPUs || rep.WriterCPUs != own || rep.Conns != 20 || rep.Payload != 200 {
				t.Errorf("report header %+v, want reader CPUs %q, writer CPUs %q, 20 conns, 200 B", rep, tt.readerCPUs, own)
			}
			if len(rep.Runs) != len(tt.rates) {
				t.Fatalf("%d runs, want %d", len(rep.Runs), len(tt.rates))
			}
			for i, run := range rep.Runs {
				want := int64(float64(tt.rates[i]) * 0.3)
				if run.Rate != tt.rates[i] || run.Writes+run.EAGAIN != want || run.Writes == 0 {
					t.Errorf("run %d: rate %d, %d writes + %d EAGAIN, want rate %d and %d calls", i, run.Rate, run.Writes, run.EAGAIN, tt.rates[i], want)
				}
				if run.UsPerWrite <= 0 || run.CPU.Total() <= 0 || run.CoreShare <= 0 {
					t.Errorf("run %d: %.2f µs/write, CPU %s, share %.2f: want all above 0", i, run.UsPerWrite, run.CPU.Total(), run.CoreShare)
				}
				// Paced on 1 ms ticks: the run takes about its duration, not a burst.
				if run.WallSeconds < 0.25 || run.WallSeconds > 3 {
					t.Errorf("run %d: wall %.3fs, want about 0.3s", i, run.WallSeconds)
				}
			}
			if after := openFDs(t); after > fdsBefore {
				t.Errorf("%d descriptors open after Measure, %d before: sockets or pipes leaked", after, fdsBefore)
			}
		})
	}
}

func TestMeasureReaderFails(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		command []string
	}{
		{"reader exits at once", []string{"false"}},
		{"reader does not start", []string{"/nonexistent/floor-reader"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			start := time.Now()
			_, err := Measure(testCtx(t), Config{Conns: 5, Rates: []int{100}, Duration: 100 * time.Millisecond, ReaderCommand: tt.command})
			if err == nil {
				t.Fatal("Measure = nil, want an error: no reader connected")
			}
			if d := time.Since(start); d > 10*time.Second {
				t.Errorf("Measure took %s to notice the reader was gone", d)
			}
		})
	}
}

func TestMeasureRejectsConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no rates", Config{}, "no rates"},
		{"too many conns", Config{Conns: MaxConns + 1, Rates: []int{1}}, "conns"},
		{"negative payload", Config{Payload: -1, Rates: []int{1}}, "payload"},
		{"zero rate", Config{Rates: []int{100, 0}}, "rate 0"},
		{"negative duration", Config{Rates: []int{1}, Duration: -time.Second}, "duration"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := Measure(context.Background(), tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Measure = %v, want an error about %q", err, tt.want)
			}
		})
	}
}

// listen accepts and holds connections for a reader test, counting them.
func listen(t *testing.T) (string, <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	accepted := make(chan net.Conn, 100)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		close(accepted)
		for c := range accepted {
			c.Close()
		}
	})
	return ln.Addr().String(), accepted
}

func TestRunReaderEnds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		timeout    time.Duration
		closeStdin bool
	}{
		{"stdin closes", time.Minute, true},
		{"deadline passes with stdin open", 300 * time.Millisecond, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			addr, accepted := listen(t)
			pr, pw := io.Pipe()
			// Closing the pipe at the end releases the stdin watcher of the deadline case.
			t.Cleanup(func() { pw.Close() })
			errc := make(chan error, 1)
			go func() { errc <- RunReader(testCtx(t), ReaderConfig{Addr: addr, Conns: 5, Timeout: tt.timeout}, pr) }()
			var peers []net.Conn
			for range 5 {
				select {
				case c := <-accepted:
					peers = append(peers, c)
				case <-time.After(10 * time.Second):
					t.Fatalf("reader dialed %d of 5 connections", len(peers))
				}
			}
			// The reader reads and discards.
			if _, err := peers[0].Write([]byte("hello")); err != nil {
				t.Fatal(err)
			}
			if tt.closeStdin {
				pw.Close()
			}
			select {
			case err := <-errc:
				if err != nil {
					t.Fatalf("RunReader: %v", err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("RunReader did not return")
			}
			// It closed its ends: the peers read EOF, or a reset where the reader closed
			// before it had read the greeting.
			for i, c := range peers {
				c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := c.Read(make([]byte, 1)); err != io.EOF && !errors.Is(err, syscall.ECONNRESET) {
					t.Errorf("peer %d read %v, want EOF or a reset", i, err)
				}
			}
		})
	}
}

func TestReaderMainRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		args []string
	}{
		{"positional argument", []string{"--addr", "127.0.0.1:1", "--conns", "1", "extra"}},
		{"no address", []string{"--conns", "1"}},
		{"no conns", []string{"--addr", "127.0.0.1:1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := readerMain(context.Background(), tt.args, strings.NewReader(""), io.Discard); err == nil {
				t.Error("readerMain = nil, want an error")
			}
		})
	}
}

func TestRunJSON(t *testing.T) {
	t.Setenv(readerEnv, "1")
	var out, errOut bytes.Buffer
	err := Run(testCtx(t), []string{"--conns", "10", "--payload", "100", "--rate", "500,1000", "--duration", "200ms", "--json"}, &out, &errOut)
	if err != nil {
		t.Fatalf("floor: %v (stderr %q)", err, errOut.String())
	}
	var rep Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("output is not a JSON report: %v\n%s", err, out.String())
	}
	if rep.Conns != 10 || rep.Payload != 100 || len(rep.Runs) != 2 || rep.Runs[0].Rate != 500 || rep.Runs[1].Rate != 1000 {
		t.Errorf("report %+v, want 10 conns, 100 B, runs at 500 and 1000/s", rep)
	}
	var table bytes.Buffer
	if err := rep.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"10 connections, 100 B", "µs/write", "1000"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}
}

func TestParseRates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want []int
		err  bool
	}{
		{"50000", []int{50000}, false},
		{"50000, 100000", []int{50000, 100000}, false},
		{"", nil, true},
		{"1k", nil, true},
		{"100,-1", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			t.Parallel()
			got, err := parseRates(tt.in)
			if (err != nil) != tt.err || len(got) != len(tt.want) {
				t.Fatalf("parseRates(%q) = %v, %v; want %v (error %v)", tt.in, got, err, tt.want, tt.err)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("parseRates(%q)[%d] = %d, want %d", tt.in, i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestCPUList(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cpus []int
		want string
	}{
		{"one", []int{1}, "1"},
		{"range", []int{0, 1}, "0-1"},
		{"mixed", []int{0, 1, 2, 5, 7, 8}, "0-2,5,7-8"},
		{"none", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := cpuList(tt.cpus); got != tt.want {
				t.Errorf("cpuList(%v) = %q, want %q", tt.cpus, got, tt.want)
			}
		})
	}
}
