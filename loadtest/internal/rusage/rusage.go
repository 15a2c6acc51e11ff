// Package rusage reads the CPU time the load generator itself used, so a report can say
// whether the client, rather than the server, was the bottleneck.
package rusage

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"
)

// CPU is user plus system CPU time.
type CPU struct {
	User   time.Duration `json:"user_ns"`
	System time.Duration `json:"system_ns"`
}

// Total is user + system.
func (c CPU) Total() time.Duration { return c.User + c.System }

// Self returns the CPU used by this process so far. Worker processes report their own Self
// to the parent, which adds them up; RUSAGE_CHILDREN is not used because the bench runner's
// children include the servers under test.
func Self() (CPU, error) {
	var self syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &self); err != nil {
		return CPU{}, fmt.Errorf("rusage: self: %w", err)
	}
	return CPU{User: tv(self.Utime), System: tv(self.Stime)}, nil
}

// Sub returns c minus earlier.
func (c CPU) Sub(earlier CPU) CPU {
	return CPU{User: c.User - earlier.User, System: c.System - earlier.System}
}

// Add returns c plus o.
func (c CPU) Add(o CPU) CPU {
	return CPU{User: c.User + o.User, System: c.System + o.System}
}

func tv(t syscall.Timeval) time.Duration {
	return time.Duration(t.Sec)*time.Second + time.Duration(t.Usec)*time.Microsecond
}

// Share is the fraction of the machine's cores (0..1) that cpu represents over wall.
func Share(cpu time.Duration, wall time.Duration, cores int) float64 {
	if wall <= 0 || cores <= 0 {
		return 0
	}
	return cpu.Seconds() / (wall.Seconds() * float64(cores))
}

// HostCores counts the host's online CPUs (/proc/cpuinfo), whatever this process's CPU
// affinity; runtime.NumCPU gives the affinity instead. It falls back to 1.
func HostCores() int {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return 1
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "processor") {
			n++
		}
	}
	return max(n, 1)
}
