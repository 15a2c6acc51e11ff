// This file is part of package cgroup, duplicated in ws-single on purpose; they may diverge.

package cgroup

import (
	"syscall"
)

// processUsage is the fallback without a cgroup: the CPU time of this process
// (getrusage), which is what the CPU admission needs to measure; the memory
// working set is unknown (0).
func processUsage() (Usage, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return Usage{}, wrap("getrusage", err)
	}
	return Usage{CPUNanos: uint64(ru.Utime.Nano() + ru.Stime.Nano())}, nil
}
