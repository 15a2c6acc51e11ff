package load

// The publishing steps of a broadcast run, as the orchestrator drives them: step after
// step (runSteps), or the failover's one step with A ended within it (runFailover). Around
// each step it notes the clients' received count and, when metrics are on, the server's
// figures, for wall-clock rates per step.

import (
	"context"
	"fmt"
	"time"

	"github.com/adred-codev/ws_poc/loadtest/internal/scrape"
)

// stepMark is what the orchestrator noted around one step.
type stepMark struct {
	start         time.Time
	wall          time.Duration
	recv, recvEnd int64
	dropped       int64
	before, after *scrape.Figures
}

// stepRun is one publishing step under way: its mark so far and its producer's end.
type stepRun struct {
	mark          stepMark
	droppedBefore int64
	done          chan struct{} // closed when the producer has finished the step
}

// startStep notes the clients' counts and the server's figures, then publishes step i in
// a goroutine until the step ends, ctx ends or abort is closed.
func (o *orchestrator) startStep(ctx context.Context, pr *producer, i int, abort <-chan struct{}) *stepRun {
	o.phase = fmt.Sprintf("step %d", i)
	o.stepLive.Reset()
	s := &stepRun{
		mark:          stepMark{start: time.Now(), recv: o.totals().Received},
		droppedBefore: o.totals().Dropped,
		done:          make(chan struct{}),
	}
	if f, err := o.scrape(ctx); err == nil {
		s.mark.before = &f
	}
	go func() {
		defer close(s.done)
		pr.runStep(ctx, i, abort)
	}()
	return s
}

// stopped reports whether the step's publishing has ended.
func (s *stepRun) stopped() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// finishStep waits for the step's publishing to end, then notes its wall time and the
// server's figures.
func (o *orchestrator) finishStep(ctx context.Context, s *stepRun) {
	<-s.done
	s.mark.wall = time.Since(s.mark.start)
	if f, err := o.scrape(ctx); err == nil {
		s.mark.after = &f
	}
}

// settleStep lets the step's last second of progress arrive, notes the clients' received
// and dropped counts and keeps the step's mark, which it returns for judging the step.
func (o *orchestrator) settleStep(ctx context.Context, s *stepRun) stepMark {
	o.pump(ctx, nil, 1100*time.Millisecond, nil)
	s.mark.recvEnd = o.totals().Received
	s.mark.dropped = o.totals().Dropped - s.droppedBefore
	o.marks = append(o.marks, s.mark)
	return s.mark
}

// runSteps publishes step after step; it stops early when the server dropped connections
// during a step, or when a step's live p99 passed StopP99 (when set).
func (o *orchestrator) runSteps(ctx context.Context, pr *producer) (run int, stoppedEarly string) {
	abort := make(chan struct{})
	for i := range o.sc.Steps {
		s := o.startStep(ctx, pr, i, abort)
		o.pump(ctx, s.done, 0, nil)
		o.finishStep(ctx, s)
		run = i + 1
		if ctx.Err() != nil {
			o.marks = append(o.marks, s.mark)
			return run, ctx.Err().Error()
		}
		mark := o.settleStep(ctx, s)
		if i+1 == len(o.sc.Steps) {
			break
		}
		if mark.dropped > 0 {
			return run, fmt.Sprintf("step %d: %d connections dropped", i, mark.dropped)
		}
		if p99 := o.stepLive.Quantile(0.99); o.sc.StopP99 > 0 && p99 > o.sc.StopP99.D() {
			return run, fmt.Sprintf("step %d live p99 %s > %s", i, p99, o.sc.StopP99.D())
		}
	}
	return run, ""
}

// runFailover publishes the failover's one step: At into it, the hook ends A; the step
// goes on until every A client's resume has ended (or Deadline has passed since A's end),
// then for Tail, and stops there. Its mark is taken as runSteps takes them.
func (o *orchestrator) runFailover(ctx context.Context, pr *producer) (run int, stoppedEarly string) {
	fo := o.sc.Failover
	abort := make(chan struct{})
	s := o.startStep(ctx, pr, 0, abort)
	o.stepStart = s.mark.start
	// pump waits for done alone when its duration is not positive: keep them positive.
	o.pump(ctx, s.done, max(time.Until(s.mark.start.Add(fo.At.D())), time.Millisecond), nil)
	switch {
	case ctx.Err() != nil:
		stoppedEarly = ctx.Err().Error()
	case s.stopped():
		stoppedEarly = "the step ended before the failover"
	default:
		o.phase = "failover"
		death, err := o.kill(ctx)
		if err != nil {
			stoppedEarly = fmt.Sprintf("ending A: %v", err)
			break
		}
		o.death = death
		fmt.Fprintf(o.stderr, "[%5.1fs %-8s] A ended (%s)\n", time.Since(o.start).Seconds(), o.phase, fo.Signal)
		// Awaiting only falls as resumes end, so a progress report from before A's end
		// cannot end this early.
		o.pump(ctx, s.done, max(time.Until(death.Add(fo.Deadline.D())), time.Millisecond), func() bool {
			return o.totals().Awaiting == 0
		})
		switch t := o.totals(); {
		case s.stopped():
			stoppedEarly = fmt.Sprintf("the step ended with %d A clients still resuming", t.Awaiting)
		case t.Awaiting > 0:
			stoppedEarly = fmt.Sprintf("%d A clients had not resumed %s after A's end", t.Awaiting, fo.Deadline.D())
		}
		o.phase = "tail"
		o.pump(ctx, s.done, max(fo.Tail.D(), time.Millisecond), nil)
	}
	close(abort)
	o.finishStep(ctx, s)
	o.settleStep(ctx, s)
	return 1, stoppedEarly
}
