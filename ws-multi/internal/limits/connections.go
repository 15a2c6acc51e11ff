// This file is duplicated in ws-single (internal/limits/connections.go) on purpose; they may diverge.

// Package limits derives the connection limit from the container's resources
// and refuses new connections while the CPU is saturated.
package limits

import (
	"math"
	"syscall"
)

const (
	// BytesPerConnection is the memory budgeted per connection when the limit
	// is derived from the cgroup memory limit: socket buffers, the goroutines'
	// stacks and the client's share of queues. README: limit × 0.7 / 64 KiB.
	BytesPerConnection = 64 << 10
	// MemoryShare is the part of the memory limit given to connections; the
	// rest is headroom for the Kafka consumer, the heap's GC target and bursts.
	MemoryShare = 0.7
	// ReservedFiles are the file descriptors kept for everything that is not a
	// client connection or a handshake: the listener, Kafka connections, log and
	// /proc reads, /healthz and /metrics. MaxConnections adds one source
	// address's worth of connections that have not upgraded
	// (WS_HTTP_MAX_CONNS_PER_IP) on top.
	ReservedFiles = 64
	// maxDerived caps the derived limit so an unlimited RLIMIT_NOFILE cannot
	// overflow int on any platform.
	maxDerived = math.MaxInt32
)

// MaxConnections is the connection limit: configured when it is above 0,
// else the lower of memoryLimitBytes × 0.7 / 64 KiB (only when there is a
// memory limit, i.e. memoryLimitBytes > 0) and openFileLimit − (64 +
// maxConnsPerIP), so that when every client slot is taken one source's
// handshakes, the listener, Kafka, /healthz and /metrics still get a descriptor
// (maxConnsPerIP is WS_HTTP_MAX_CONNS_PER_IP; 0, no cap, reserves nothing more).
// The result is at least 1, so a tiny container still serves someone and 0
// never means "no limit" downstream.
func MaxConnections(configured int, memoryLimitBytes int64, openFileLimit uint64, maxConnsPerIP int) int {
	if configured > 0 {
		return configured
	}
	reserve := uint64(ReservedFiles + max(maxConnsPerIP, 0))
	n := uint64(maxDerived)
	if openFileLimit < n+reserve {
		n = 0
		if openFileLimit > reserve {
			n = openFileLimit - reserve
		}
	}
	if memoryLimitBytes > 0 {
		byMemory := uint64(float64(memoryLimitBytes) * MemoryShare / BytesPerConnection)
		n = min(n, byMemory)
	}
	return int(max(n, 1))
}

// OpenFileLimit is the soft RLIMIT_NOFILE of the process. Go raises the soft
// limit to the hard one at start-up, so this is what the process can open.
// If the limit cannot be read (getrlimit does not fail on Linux for this
// resource), it answers 1024, the usual default soft limit.
func OpenFileLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return defaultOpenFiles
	}
	return rl.Cur
}

const defaultOpenFiles = 1024
