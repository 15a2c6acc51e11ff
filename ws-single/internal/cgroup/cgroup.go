// This file is duplicated in ws-multi (internal/cgroup/cgroup.go) on purpose; they may diverge.

// Package cgroup reads the CPU and memory limits and usage of the process's
// own cgroup, v1 or v2, through github.com/containerd/cgroups/v3.
//
// All paths (the cgroup mount root, /proc/self/cgroup, /proc/self/mountinfo)
// are injectable, so the tests run on fixture trees under testdata/ on any
// host. A host without cgroups is not an error: the Reader reports Version 0,
// no limits, and the process's own CPU time as usage.
package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/containerd/cgroups/v3/cgroup1"
	"github.com/containerd/cgroups/v3/cgroup2"
)

// Limits are the resource limits of the cgroup.
type Limits struct {
	Version     int     // 1 or 2; 0 when no cgroup was found
	CPUCores    float64 // CPU quota in cores (quota / period); 0 = no quota
	MemoryBytes int64   // memory limit in bytes; 0 = no limit
}

// Usage is the resource use of the cgroup at one instant.
type Usage struct {
	// CPUNanos is the cumulative CPU time of the cgroup in nanoseconds; the
	// rate between two samples is the CPU use.
	CPUNanos uint64
	// MemoryBytes is the working set: usage minus inactive file cache, the
	// figure the kernel's OOM decision and `kubectl top` look at. 0 with Version 0.
	MemoryBytes int64
}

// Paths locate the cgroup filesystem and the process's view of it.
type Paths struct {
	Root       string // cgroup mount root, "/sys/fs/cgroup"
	ProcCgroup string // "/proc/self/cgroup"
	MountInfo  string // "/proc/self/mountinfo"
}

// DefaultPaths are the paths of the running process.
func DefaultPaths() Paths {
	return Paths{Root: "/sys/fs/cgroup", ProcCgroup: "/proc/self/cgroup", MountInfo: "/proc/self/mountinfo"}
}

// Reader reads limits and usage of one cgroup. It holds no mutable state of its
// own and is safe for concurrent use.
type Reader struct {
	version int
	v1      cgroup1.Cgroup   // version 1: the cpu, cpuacct and memory controllers
	v1CPU   string           // version 1: directory of the cpu controller, for the quota files
	v2      *cgroup2.Manager // version 2
	v2Dir   string           // version 2: the group's directory, for cpu.max
}

// Detect finds the cgroup of the running process under /sys/fs/cgroup.
func Detect() (*Reader, error) {
	return New(DefaultPaths())
}

// New finds the process's cgroup using p. Missing cgroup files give a Reader
// of Version 0, not an error; only unreadable or malformed ones are errors.
func New(p Paths) (*Reader, error) {
	self, err := readProcCgroup(p.ProcCgroup)
	if errors.Is(err, os.ErrNotExist) {
		return &Reader{}, nil
	}
	if err != nil {
		return nil, err
	}
	mounts, err := readMountInfo(p.MountInfo)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	// v1 controllers first: in hybrid mode the unified hierarchy is mounted too,
	// but it holds no controllers and so no limits.
	if r, ok, err := newV1(p.Root, self, mounts); ok || err != nil {
		return r, err
	}
	if r, ok, err := newV2(p.Root, self, mounts); ok || err != nil {
		return r, err
	}
	return &Reader{}, nil
}

// Version is 1 or 2, or 0 when the process has no cgroup.
func (r *Reader) Version() int { return r.version }

// Limits reads the CPU quota and memory limit.
func (r *Reader) Limits() (Limits, error) {
	switch r.version {
	case 1:
		return r.limitsV1()
	case 2:
		return r.limitsV2()
	}
	return Limits{}, nil
}

// Usage reads the cumulative CPU time and the memory working set.
func (r *Reader) Usage() (Usage, error) {
	switch r.version {
	case 1:
		return r.usageV1()
	case 2:
		return r.usageV2()
	}
	return processUsage()
}

// isDir reports whether path is an existing directory.
func isDir(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.IsDir()
}

// inside joins a cgroup path (absolute within its hierarchy) to a directory
// without letting ".." climb out of it.
func inside(dir, group string) string {
	return filepath.Join(dir, filepath.Clean("/"+group))
}

func wrap(what string, err error) error {
	return fmt.Errorf("cgroup: %s: %w", what, err)
}
