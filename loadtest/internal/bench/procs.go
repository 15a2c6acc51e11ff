package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// process is a child process the bench owns: the broker or a server.
type process struct {
	name string
	cmd  *exec.Cmd
	done chan error
	// exitedAt is when Wait returned (Unix nanoseconds; 0 while it runs).
	exitedAt atomic.Int64
}

// start runs argv (under taskset when cpus is set) with env added to ours, output to log.
func start(name, cpus string, argv []string, env map[string]string, log io.Writer) (*process, error) {
	if cpus != "" {
		argv = append([]string{"taskset", "-c", cpus}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan error, 1)}
	go func() {
		err := cmd.Wait()
		p.exitedAt.Store(time.Now().UnixNano())
		p.done <- err
	}()
	return p, nil
}

// peakRSS is the running process's peak resident set in bytes: the kernel's high-water
// mark of its memory map (VmHWM), since its last exec. Not wait4's ru_maxrss: that also
// counts the map the child was forked with, ours (os/exec forks with CLONE_VM), so it
// reports the bench's own size.
func (p *process) peakRSS() (float64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		return 0, fmt.Errorf("%s: peak RSS: %w", p.name, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb float64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%g kB", &kb); err != nil {
				return 0, fmt.Errorf("%s: peak RSS: %q: %w", p.name, line, err)
			}
			return kb * 1024, nil
		}
	}
	return 0, fmt.Errorf("%s: peak RSS: no VmHWM in /proc/%d/status", p.name, p.cmd.Process.Pid)
}

// stop sends SIGTERM, waits up to grace, then kills; it always reaps the process. Once
// stopped, the process stays ended for exited, wait and stop.
func (p *process) stop(grace time.Duration) error {
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil && !errors.Is(err, os.ErrProcessDone) {
		_ = p.cmd.Process.Kill()
	}
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case err := <-p.done:
		p.done <- err
		return exitErr(p.name, err)
	case <-t.C:
		_ = p.cmd.Process.Kill()
		p.done <- <-p.done
		return fmt.Errorf("%s: did not stop within %s, killed", p.name, grace)
	}
}

func exitErr(name string, err error) error {
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ProcessState.Sys().(syscall.WaitStatus).Signaled() {
		// Ended by our SIGTERM after handling it by dying: not an error of the run.
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}

// wait waits up to d for the process to end by itself: ended is false when it was still
// running (it is left running), err how it ended otherwise.
func (p *process) wait(d time.Duration) (ended bool, err error) {
	// A process that has ended must say so even when d is 0: a select with the timer
	// ready too would pick either.
	select {
	case err := <-p.done:
		p.done <- err
		return true, err
	default:
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case err := <-p.done:
		p.done <- err
		return true, err
	case <-t.C:
		return false, nil
	}
}

// exited reports whether the process has ended (it must not have, while in use).
func (p *process) exited() error {
	select {
	case err := <-p.done:
		p.done <- err
		if err == nil {
			err = errors.New("exited")
		}
		return fmt.Errorf("%s: %w", p.name, err)
	default:
		return nil
	}
}

// freePort asks the kernel for an unused loopback port.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// waitHTTP polls url until it answers 200, the process ends, or timeout passes.
func waitHTTP(ctx context.Context, url string, p *process, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return fmt.Errorf("wait %s: %w", url, err)
		}
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if err := p.exited(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait %s: not ready after %s", url, timeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitTCP polls addr until it accepts a connection.
func waitTCP(ctx context.Context, addr string, p *process, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if err := p.exited(); err != nil {
			return err
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("wait %s: not listening after %s", addr, timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
