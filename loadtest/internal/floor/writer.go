package floor

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"time"

	"github.com/adred-codev/ws_poc/loadtest/internal/rusage"
)

// writePaced writes payload round-robin over fds at rate calls per second for d, and
// returns the calls and the process's CPU over them. On every 1 ms tick it catches up to
// rate × elapsed, as a server's event loop writes what has become due, so a late tick makes
// a burst rather than lost writes; a writer that cannot keep up runs past d until it has made
// every call, and Achieved shows the rate it managed.
func writePaced(ctx context.Context, fds []int, payload []byte, rate int, d time.Duration) (RateFigures, error) {
	run := RateFigures{Rate: rate}
	total := int64(float64(rate) * d.Seconds())
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	cpu0, err := rusage.Self()
	if err != nil {
		return run, err
	}
	t0 := time.Now()
	var calls int64
	next := 0
	for calls < total {
		select {
		case <-ctx.Done():
			return run, fmt.Errorf("floor: write at %d/s: %w", rate, ctx.Err())
		case <-tick.C:
		}
		due := min(total, int64(float64(rate)*time.Since(t0).Seconds()))
		for ; calls < due; calls++ {
			n, err := write(fds[next], payload)
			next++
			if next == len(fds) {
				next = 0
			}
			switch {
			case errors.Is(err, syscall.EAGAIN):
				run.EAGAIN++
			case err != nil:
				return run, fmt.Errorf("floor: write at %d/s: %w", rate, err)
			case n < len(payload):
				run.Short++
				run.Writes++
			default:
				run.Writes++
			}
		}
	}
	wall := time.Since(t0)
	cpu1, err := rusage.Self()
	if err != nil {
		return run, err
	}
	run.CPU = cpu1.Sub(cpu0)
	run.WallSeconds = wall.Seconds()
	run.Achieved = float64(run.Writes) / wall.Seconds()
	if run.Writes > 0 {
		run.UsPerWrite = float64(run.CPU.Total().Nanoseconds()) / 1e3 / float64(run.Writes)
	}
	run.CoreShare = run.CPU.Total().Seconds() / wall.Seconds()
	return run, nil
}

// write is one write(2), retried only when a signal (the Go runtime's preemption) interrupts
// it before it wrote anything.
func write(fd int, b []byte) (int, error) {
	for {
		n, err := syscall.Write(fd, b)
		if !errors.Is(err, syscall.EINTR) {
			return n, err
		}
	}
}
