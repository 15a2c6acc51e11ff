// This file is part of package limits, duplicated in ws-single on purpose; they may diverge.

package limits

import (
	"context"
	"math"
	"runtime"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/adred-codev/ws_poc/ws-multi/internal/cgroup"
	"github.com/adred-codev/ws_poc/ws-multi/internal/metrics"
)

// SampleInterval is how often Admission reads the cgroup: the CPU ratio is
// the use over the last interval.
const SampleInterval = time.Second

// Retry-After bounds: just above the threshold a client may come back soon;
// far above it (or above the whole limit) it should wait longer, so a crowd of
// reconnecting clients spreads out instead of returning at once.
const (
	MinRetryAfter = time.Second
	MaxRetryAfter = 10 * time.Second
)

// resourceReader is what Admission needs of a *cgroup.Reader.
type resourceReader interface {
	Limits() (cgroup.Limits, error)
	Usage() (cgroup.Usage, error)
}

// Admission refuses new WebSocket upgrades while the CPU use of the cgroup is
// above a threshold of its limit. Run samples; Allow only reads an atomic.
type Admission struct {
	reader    resourceReader
	threshold float64 // fraction of the CPU limit, 0 = never refuse
	m         *metrics.Metrics
	log       *zap.Logger
	interval  time.Duration
	now       func() time.Time
	numCPU    func() int

	// retryAfter is 0 while upgrades are allowed, else the Retry-After to
	// answer, in nanoseconds. Written by Run's goroutine only.
	retryAfter atomic.Int64

	// Previous sample; touched only by Run's goroutine.
	prevAt    time.Time
	prevNanos uint64
	failing   bool // the last read failed; logged once per streak
}

// NewAdmission returns an Admission over r that refuses upgrades while CPU use
// is above thresholdPercent of the CPU limit (0 disables refusing; the gauges
// are still updated). The CPU limit is the cgroup quota, else runtime.NumCPU().
func NewAdmission(r *cgroup.Reader, thresholdPercent float64, m *metrics.Metrics, log *zap.Logger) *Admission {
	return newAdmission(r, thresholdPercent, m, log)
}

func newAdmission(r resourceReader, thresholdPercent float64, m *metrics.Metrics, log *zap.Logger) *Admission {
	if log == nil {
		log = zap.NewNop()
	}
	return &Admission{
		reader:    r,
		threshold: thresholdPercent / 100,
		m:         m,
		log:       log,
		interval:  SampleInterval,
		now:       time.Now,
		numCPU:    runtime.NumCPU,
	}
}

// Allow reports whether a new upgrade may proceed and, when not, how long the
// client should wait (the Retry-After). It is a single atomic load, safe from
// any goroutine. Before the first two samples it always allows.
func (a *Admission) Allow() (ok bool, retryAfter time.Duration) {
	d := a.retryAfter.Load()
	return d == 0, time.Duration(d)
}

// Run samples the cgroup every second until ctx ends, updating the
// ws_cgroup_* gauges and the admission decision, then returns nil. A failed
// read is logged once and leaves upgrades allowed: admission fails open,
// since refusing every client because /sys could not be read is worse.
func (a *Admission) Run(ctx context.Context) error {
	t := time.NewTicker(a.interval)
	defer t.Stop()
	a.sample()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			a.sample()
		}
	}
}

// sample takes one reading and updates gauges and decision.
func (a *Admission) sample() {
	at := a.now()
	limits, err := a.reader.Limits()
	if err == nil {
		var usage cgroup.Usage
		usage, err = a.reader.Usage()
		if err == nil {
			a.update(at, limits, usage)
		}
	}
	if err != nil {
		a.retryAfter.Store(0)
		a.prevAt = time.Time{} // the next good sample starts a new interval
		if !a.failing {
			a.log.Warn("cgroup read failed; CPU admission allows every upgrade until it recovers", zap.Error(err))
		}
		a.failing = true
		return
	}
	if a.failing {
		a.log.Info("cgroup read recovered")
	}
	a.failing = false
}

func (a *Admission) update(at time.Time, limits cgroup.Limits, usage cgroup.Usage) {
	cores := limits.CPUCores
	if cores <= 0 {
		cores = float64(a.numCPU())
	}
	a.m.CgroupCPULimitCores.Set(cores)
	a.m.CgroupMemoryLimit.Set(float64(limits.MemoryBytes))
	a.m.CgroupMemoryUsage.Set(float64(usage.MemoryBytes))

	prevAt, prevNanos := a.prevAt, a.prevNanos
	a.prevAt, a.prevNanos = at, usage.CPUNanos
	elapsed := at.Sub(prevAt)
	// No ratio from the first sample, a clock that did not move, or a counter
	// that went back (the process moved to another cgroup).
	if prevAt.IsZero() || elapsed <= 0 || usage.CPUNanos < prevNanos {
		return
	}
	ratio := float64(usage.CPUNanos-prevNanos) / (float64(elapsed) * cores)
	a.m.CgroupCPUUsageRatio.Set(ratio)
	a.retryAfter.Store(int64(a.retryFor(ratio)))
}

// retryFor maps a CPU ratio to the Retry-After to answer, 0 to allow. Above
// the threshold the wait grows linearly from MinRetryAfter to MaxRetryAfter as
// the ratio goes from the threshold to the whole limit, in whole seconds
// because Retry-After carries seconds.
func (a *Admission) retryFor(ratio float64) time.Duration {
	if a.threshold <= 0 || ratio <= a.threshold {
		return 0
	}
	over := 1.0
	if a.threshold < 1 {
		over = min((ratio-a.threshold)/(1-a.threshold), 1)
	}
	d := MinRetryAfter + time.Duration(over*float64(MaxRetryAfter-MinRetryAfter))
	return time.Duration(math.Ceil(d.Seconds())) * time.Second
}
