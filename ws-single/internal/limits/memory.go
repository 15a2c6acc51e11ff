// This file is duplicated in ws-multi (internal/limits/memory.go) on purpose; they may diverge.

package limits

// MemoryLimitShare is the part of the cgroup's memory limit given to the Go runtime as its
// soft memory limit. Without one the collector lets garbage grow to about twice the live heap
// (GOGC=100), blind to the container's limit: a burst of disconnects or a backlog can then
// take the process past it and the kernel kills it. Near the soft limit the collector runs
// earlier instead. The remaining tenth is for what the runtime does not count (socket buffers
// are the kernel's, charged to the same cgroup, and are budgeted by MaxConnections).
const MemoryLimitShare = 0.9

// SoftMemoryLimit is the soft memory limit to give the Go runtime (runtime/debug.SetMemoryLimit):
// MemoryLimitShare of the cgroup's memory limit. ok is false, and nothing is to be set, when
// there is no limit (cgroupMemoryBytes 0) or the operator set GOMEMLIMIT (goMemLimit is the
// variable's value), which the runtime has applied already and which wins.
func SoftMemoryLimit(cgroupMemoryBytes int64, goMemLimit string) (limit int64, ok bool) {
	if goMemLimit != "" || cgroupMemoryBytes <= 0 {
		return 0, false
	}
	return int64(float64(cgroupMemoryBytes) * MemoryLimitShare), true
}
