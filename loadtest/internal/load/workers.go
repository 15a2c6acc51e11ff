package load

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"sync"
	"time"

	"github.com/adred-codev/ws_poc/loadtest/internal/rusage"
)

// event is what a running group tells the orchestrator: progress, or its end.
type event struct {
	group    int
	progress *Progress
	result   *GroupResult
	err      error
}

// startLocal runs a group in this process.
func startLocal(ctx context.Context, idx int, plan Plan, stop <-chan struct{}, events chan<- event, wg *sync.WaitGroup) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		g, err := newGroup(plan)
		if err != nil {
			events <- event{group: idx, err: err}
			return
		}
		r := g.run(ctx, stop, func(p Progress) { events <- event{group: idx, progress: &p} })
		events <- event{group: idx, result: r}
	}()
}

// startProcess runs a group in a worker process: this executable re-run as `loadtest
// worker`, plan on stdin, JSON lines back on stdout, "stop" on stdin to end it.
func startProcess(ctx context.Context, idx int, plan Plan, workerCmd func() (string, []string, error), stop <-chan struct{}, events chan<- event, wg *sync.WaitGroup, stderr io.Writer) error {
	exe, args, err := workerCmd()
	if err != nil {
		return fmt.Errorf("worker %d: find executable: %w", idx, err)
	}
	cmd := exec.CommandContext(ctx, exe, args...)
	cmd.Stderr = stderr
	// If the worker ignores stop, the context kill ends it; WaitDelay bounds the pipes' drain.
	cmd.WaitDelay = 10 * time.Second
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return fmt.Errorf("worker %d: stdin: %w", idx, err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("worker %d: stdout: %w", idx, err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("worker %d: start: %w", idx, err)
	}
	b, err := json.Marshal(plan)
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return fmt.Errorf("worker %d: encode plan: %w", idx, err)
	}
	if _, err := stdin.Write(append(b, '\n')); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return fmt.Errorf("worker %d: send plan: %w", idx, err)
	}
	done := make(chan struct{})
	wg.Add(2)
	go func() {
		defer wg.Done()
		select {
		case <-stop:
			_, _ = io.WriteString(stdin, "stop\n")
		case <-done:
		}
		stdin.Close()
	}()
	go func() {
		defer wg.Done()
		defer close(done)
		var result *GroupResult
		var werr error
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 256<<20)
		for sc.Scan() {
			var m wireMsg
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				werr = fmt.Errorf("worker %d: decode line: %w", idx, err)
				break
			}
			switch {
			case m.Error != "":
				werr = fmt.Errorf("worker %d: %s", idx, m.Error)
			case m.Result != nil:
				result = m.Result
			case m.Progress != nil:
				events <- event{group: idx, progress: m.Progress}
			}
		}
		if err := sc.Err(); err != nil && werr == nil {
			werr = fmt.Errorf("worker %d: read: %w", idx, err)
		}
		_, _ = io.Copy(io.Discard, stdout)
		if err := cmd.Wait(); err != nil && werr == nil && result == nil {
			werr = fmt.Errorf("worker %d: %w", idx, err)
		}
		if result == nil && werr == nil {
			werr = fmt.Errorf("worker %d: ended without a result", idx)
		}
		events <- event{group: idx, result: result, err: werr}
	}()
	return nil
}

// RunWorker is the body of the hidden `loadtest worker` subcommand: read a Plan line from
// in, run the group, stream progress and the result as JSON lines to out. A "stop" line or
// the end of in ends the run.
func RunWorker(ctx context.Context, in io.Reader, out io.Writer) error {
	r := bufio.NewReader(in)
	line, err := r.ReadBytes('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("worker: read plan: %w", err)
	}
	var plan Plan
	if err := json.Unmarshal(line, &plan); err != nil {
		return fmt.Errorf("worker: decode plan: %w", err)
	}
	enc := json.NewEncoder(out)
	var mu sync.Mutex
	write := func(m wireMsg) {
		mu.Lock()
		defer mu.Unlock()
		// A parent that stopped reading is gone; the run still ends on stop or EOF.
		_ = enc.Encode(m)
	}
	g, err := newGroup(plan)
	if err != nil {
		write(wireMsg{Error: err.Error()})
		return err
	}
	stop := make(chan struct{})
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		// Any line (normally "stop") or EOF ends the run: the parent owns the worker.
		_, _ = r.ReadBytes('\n')
		close(stop)
	}()
	res := g.run(ctx, stop, func(p Progress) {
		if cpu, err := rusage.Self(); err == nil {
			p.CPU = cpu
		}
		write(wireMsg{Progress: &p})
	})
	if cpu, err := rusage.Self(); err == nil {
		res.CPU = cpu
	}
	write(wireMsg{Result: res})
	select {
	case <-readDone:
	case <-ctx.Done():
	}
	return nil
}
