// This file is part of package cgroup, duplicated in ws-multi on purpose; they may diverge.

package cgroup

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/cgroups/v3/cgroup2"
)

// newV2 loads the process's group of the unified hierarchy; ok is false when
// root is not a cgroup2 mount (no cgroup.controllers file).
func newV2(root string, self procCgroup, mounts []mount) (*Reader, bool, error) {
	if self.unified == "" {
		return nil, false, nil
	}
	if _, err := os.Stat(filepath.Join(root, "cgroup.controllers")); err != nil {
		return nil, false, nil
	}
	group := localize(self.unified, findMount(mounts, ""))
	dir := inside(root, group)
	if !isDir(dir) {
		return nil, false, nil
	}
	m, err := cgroup2.Load(filepath.Clean("/"+group), cgroup2.WithMountpoint(root))
	if err != nil {
		return nil, false, wrap("load v2 "+group, err)
	}
	return &Reader{version: 2, v2: m, v2Dir: dir}, true, nil
}

func (r *Reader) limitsV2() (Limits, error) {
	cores, err := cpuMaxV2(r.v2Dir)
	if err != nil {
		return Limits{}, err
	}
	st, err := r.v2.StatFiltered(cgroup2.StatMemory)
	if err != nil {
		return Limits{}, wrap("stat v2", err)
	}
	l := Limits{Version: 2, CPUCores: cores}
	// containerd gives memory.max as MaxUint64 for "max" and 0 when the memory
	// controller is not enabled for the group: both mean no limit.
	if limit := st.GetMemory().GetUsageLimit(); limit != 0 && limit <= math.MaxInt64 {
		l.MemoryBytes = int64(limit)
	}
	return l, nil
}

func (r *Reader) usageV2() (Usage, error) {
	st, err := r.v2.StatFiltered(cgroup2.StatCPU | cgroup2.StatMemory)
	if err != nil {
		return Usage{}, wrap("stat v2", err)
	}
	mem := st.GetMemory()
	return Usage{
		CPUNanos:    st.GetCPU().GetUsageUsec() * 1000,
		MemoryBytes: workingSet(mem.GetUsage(), mem.GetInactiveFile()),
	}, nil
}

// cpuMaxV2 reads cpu.max, "$MAX $PERIOD" with "max" for no quota. containerd
// parses this file only inside its unexported CPUMax writer, so it is read
// here the same way. A missing file (cpu controller not enabled) is no quota.
func cpuMaxV2(dir string) (float64, error) {
	b, err := os.ReadFile(filepath.Join(dir, "cpu.max"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, wrap("read cpu.max", err)
	}
	return parseCPUMax(string(b))
}

// parseCPUMax turns the content of cpu.max into cores; 0 = no quota.
func parseCPUMax(s string) (float64, error) {
	fields := strings.Fields(s)
	if len(fields) == 0 || len(fields) > 2 {
		return 0, wrap("parse cpu.max", errors.New("want \"$MAX $PERIOD\", got "+strconv.Quote(s)))
	}
	if fields[0] == "max" {
		return 0, nil
	}
	quota, err := strconv.ParseInt(fields[0], 10, 64)
	if err != nil {
		return 0, wrap("parse cpu.max quota", err)
	}
	period := int64(100000) // the kernel default when the file holds only the quota
	if len(fields) == 2 {
		if period, err = strconv.ParseInt(fields[1], 10, 64); err != nil {
			return 0, wrap("parse cpu.max period", err)
		}
	}
	if quota <= 0 || period <= 0 {
		return 0, wrap("parse cpu.max", errors.New("quota and period must be positive, got "+strconv.Quote(s)))
	}
	return float64(quota) / float64(period), nil
}
