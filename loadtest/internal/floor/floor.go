package floor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"time"

	"github.com/adred-codev/ws_poc/loadtest/internal/rusage"
)

// Defaults of Config.
const (
	DefaultConns    = 1000
	DefaultDuration = 3 * time.Second
	// DefaultPayload is about one ws-single "message" frame of the bench's latency scenario:
	// 113 B of envelope ({"op":"message","channel":"trades:b-42",...,"data":) plus the
	// producer's ~100 B record value (payload_bytes 100) is ~213 B of JSON, and a text frame
	// of 126 B or more carries a 4-byte WebSocket header.
	DefaultPayload = 217
)

// MaxConns keeps one process pair under the open-file limit (20000 here): every connection
// is one descriptor in the writer and one in the reader, plus the runtime's few.
const MaxConns = 19000

// Config is one probe: the connections, the payload and the rates to measure.
type Config struct {
	// Conns is how many loopback connections the writes go round-robin over; default 1000.
	Conns int
	// Payload is the bytes of one write(2); default DefaultPayload (217).
	Payload int
	// Rates are the write(2) calls per second to measure, one after another over the same
	// connections; required.
	Rates []int
	// Duration is how long each rate runs; default 3s.
	Duration time.Duration
	// ReaderCPUs is the taskset CPU list ("1", "0-1") the reader process runs on; default ""
	// (not pinned: it inherits this process's affinity).
	ReaderCPUs string
	// ReaderCommand is the program and leading arguments that run the reader side, to which
	// Measure appends the reader's flags; default this executable and "floor-reader".
	ReaderCommand []string
	// Log receives the reader's output; default discarded.
	Log io.Writer
}

// Validate names the first offending setting.
func (c *Config) Validate() error {
	switch {
	case c.Conns < 1 || c.Conns > MaxConns:
		return fmt.Errorf("floor: conns %d: want 1 to %d", c.Conns, MaxConns)
	case c.Payload < 1:
		return fmt.Errorf("floor: payload %d: want at least 1 byte", c.Payload)
	case len(c.Rates) == 0:
		return errors.New("floor: no rates")
	case c.Duration <= 0:
		return fmt.Errorf("floor: duration %s: want more than 0", c.Duration)
	}
	for _, r := range c.Rates {
		if r < 1 {
			return fmt.Errorf("floor: rate %d: want at least 1 write/s", r)
		}
	}
	return nil
}

func (c *Config) setDefaults() error {
	if c.Conns == 0 {
		c.Conns = DefaultConns
	}
	if c.Payload == 0 {
		c.Payload = DefaultPayload
	}
	if c.Duration == 0 {
		c.Duration = DefaultDuration
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	if len(c.ReaderCommand) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("floor: find executable: %w", err)
		}
		c.ReaderCommand = []string{exe, "floor-reader"}
	}
	return nil
}

// Report is what Measure found.
type Report struct {
	Conns   int `json:"conns"`
	Payload int `json:"payload"`
	// WriterCPUs and ReaderCPUs are the two processes' CPU lists ("" = not pinned).
	WriterCPUs string `json:"writer_cpus"`
	ReaderCPUs string `json:"reader_cpus"`
	// ReaderExitCode is the reader's exit status: 0 when it ended by itself on its closed stdin.
	ReaderExitCode int `json:"reader_exit_code"`
	// Runs are the rates in the order measured.
	Runs []RateFigures `json:"runs"`
}

// RateFigures is one rate's figures.
type RateFigures struct {
	// Rate is the target write(2) calls per second; Achieved what the writer managed
	// (lower when the writes alone fill its core).
	Rate     int     `json:"rate"`
	Achieved float64 `json:"achieved"`
	// Writes are the write(2) calls that wrote; Short those of them that wrote only part of
	// the payload; EAGAIN the calls that found the socket buffer full and wrote nothing.
	Writes int64 `json:"writes"`
	Short  int64 `json:"short"`
	EAGAIN int64 `json:"eagain"`
	// WallSeconds is the time from the first write to the last.
	WallSeconds float64 `json:"wall_seconds"`
	// CPU is the writer process's user and system CPU over that time.
	CPU rusage.CPU `json:"cpu"`
	// UsPerWrite is CPU per write(2) that wrote, in µs; CoreShare is CPU over wall: the
	// fraction of one core the writes took.
	UsPerWrite float64 `json:"us_per_write"`
	CoreShare  float64 `json:"core_share"`
}

// Measure runs the probe: it starts the reader, accepts its connections and measures every
// rate of cfg in turn. The reader and the sockets are gone when it returns.
func Measure(ctx context.Context, cfg Config) (_ *Report, err error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	writerCPUs, err := Affinity()
	if err != nil {
		return nil, err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("floor: listen: %w", err)
	}
	defer ln.Close()

	// The reader must end on its own even if this process dies without closing its stdin:
	// its deadline covers the dials, every rate and a margin.
	readerLife := time.Minute + time.Duration(len(cfg.Rates))*(cfg.Duration+time.Second)
	rd, err := startReader(cfg, ln.Addr().String(), readerLife)
	if err != nil {
		return nil, err
	}
	rep := &Report{Conns: cfg.Conns, Payload: cfg.Payload, WriterCPUs: writerCPUs, ReaderCPUs: cfg.ReaderCPUs}
	defer func() {
		code, werr := rd.stop(10 * time.Second)
		rep.ReaderExitCode = code
		if err == nil && werr != nil {
			err = werr
		}
	}()

	conns, err := acceptAll(ctx, ln.(*net.TCPListener), cfg.Conns, rd, time.Minute)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	if err != nil {
		return nil, err
	}
	fds, err := rawFDs(conns)
	if err != nil {
		return nil, err
	}
	payload := make([]byte, cfg.Payload)
	for i := range payload {
		payload[i] = 'x'
	}
	for i, rate := range cfg.Rates {
		// Let the previous rate's receive work and the reader's backlog settle first, so one
		// rate's tail does not count against the next.
		if err := sleep(ctx, settle(i)); err != nil {
			return nil, err
		}
		run, err := writePaced(ctx, fds, payload, rate, cfg.Duration)
		if err != nil {
			return nil, err
		}
		if err := rd.exited(); err != nil {
			return nil, err
		}
		rep.Runs = append(rep.Runs, run)
	}
	return rep, nil
}

// settle is the pause before rate i: longer before the first, while the reader's connections
// and goroutines come to rest after the dials.
func settle(i int) time.Duration {
	if i == 0 {
		return 500 * time.Millisecond
	}
	return 200 * time.Millisecond
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return fmt.Errorf("floor: %w", ctx.Err())
	case <-t.C:
		return nil
	}
}

// reader is the child process that holds the other ends of the connections.
type reader struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan error // receives Wait's error once; exited puts it back
}

func startReader(cfg Config, addr string, life time.Duration) (*reader, error) {
	argv := append([]string{}, cfg.ReaderCommand...)
	argv = append(argv, "--addr", addr, "--conns", strconv.Itoa(cfg.Conns), "--timeout", life.String())
	if cfg.ReaderCPUs != "" {
		argv = append([]string{"taskset", "-c", cfg.ReaderCPUs}, argv...)
	}
	// No CommandContext: stop ends the reader on every path (stdin, then a kill after a
	// grace), and the reader's own deadline covers this process dying first.
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = cfg.Log, cfg.Log
	// Bounds how long Wait drains the output pipes after the reader ends.
	cmd.WaitDelay = 5 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("floor: reader stdin: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("floor: start reader %v: %w", argv, err)
	}
	r := &reader{cmd: cmd, stdin: stdin, done: make(chan error, 1)}
	go func() { r.done <- cmd.Wait() }()
	return r, nil
}

// exited returns an error when the reader has already ended (it must not have, in use).
func (r *reader) exited() error {
	select {
	case err := <-r.done:
		r.done <- err
		if err == nil {
			err = errors.New("exited")
		}
		return fmt.Errorf("floor: reader: %w", err)
	default:
		return nil
	}
}

// stop closes the reader's stdin, which ends it, waits up to grace, then kills it; it always
// reaps the process and returns its exit code.
func (r *reader) stop(grace time.Duration) (int, error) {
	r.stdin.Close()
	t := time.NewTimer(grace)
	defer t.Stop()
	var err error
	select {
	case err = <-r.done:
	case <-t.C:
		_ = r.cmd.Process.Kill()
		<-r.done
		err = fmt.Errorf("floor: reader did not exit within %s of its stdin closing, killed", grace)
	}
	code := r.cmd.ProcessState.ExitCode()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		err = fmt.Errorf("floor: reader: %w", err)
	}
	return code, err
}

// acceptAll accepts n connections, giving up when the reader exits, ctx ends or timeout
// passes. It returns what it accepted even on error, for the caller to close.
func acceptAll(ctx context.Context, ln *net.TCPListener, n int, rd *reader, timeout time.Duration) ([]*net.TCPConn, error) {
	conns := make([]*net.TCPConn, 0, n)
	deadline := time.Now().Add(timeout)
	for len(conns) < n {
		if err := ctx.Err(); err != nil {
			return conns, fmt.Errorf("floor: accept: %w", err)
		}
		if err := rd.exited(); err != nil {
			return conns, err
		}
		if time.Now().After(deadline) {
			return conns, fmt.Errorf("floor: accepted %d of %d connections in %s", len(conns), n, timeout)
		}
		// A short deadline so the loop notices the reader's exit and ctx.
		if err := ln.SetDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
			return conns, fmt.Errorf("floor: accept deadline: %w", err)
		}
		c, err := ln.AcceptTCP()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			continue
		}
		if err != nil {
			return conns, fmt.Errorf("floor: accept: %w", err)
		}
		conns = append(conns, c)
	}
	return conns, nil
}

// rawFDs returns the sockets' descriptors. They stay valid while the conns are open, which
// is until Measure returns; Go already made them non-blocking.
func rawFDs(conns []*net.TCPConn) ([]int, error) {
	fds := make([]int, len(conns))
	for i, c := range conns {
		rc, err := c.SyscallConn()
		if err != nil {
			return nil, fmt.Errorf("floor: raw conn: %w", err)
		}
		var nbErr error
		if err := rc.Control(func(fd uintptr) {
			fds[i] = int(fd)
			nbErr = syscall.SetNonblock(int(fd), true)
		}); err != nil {
			return nil, fmt.Errorf("floor: raw conn: %w", err)
		}
		if nbErr != nil {
			return nil, fmt.Errorf("floor: non-blocking: %w", nbErr)
		}
	}
	return fds, nil
}
