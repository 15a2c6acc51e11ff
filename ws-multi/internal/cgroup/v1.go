// This file is part of package cgroup, duplicated in ws-single on purpose; they may diverge.

package cgroup

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/cgroups/v3/cgroup1"
	v1stats "github.com/containerd/cgroups/v3/cgroup1/stats"
)

// v1Unlimited: cgroup v1 reports "no limit" as the largest page-aligned int64
// (9223372036854771712 with 4 KiB pages; other page sizes differ slightly),
// so any limit this large means none.
const v1Unlimited = 1 << 62

// newV1 loads the cpu, cpuacct and memory controllers of the process's v1
// cgroup; ok is false when the process has none of them mounted under root.
func newV1(root string, self procCgroup, mounts []mount) (*Reader, bool, error) {
	paths := map[cgroup1.Name]string{}
	for _, name := range []cgroup1.Name{cgroup1.Cpu, cgroup1.Cpuacct, cgroup1.Memory} {
		group, ok := self.v1[string(name)]
		if !ok {
			continue
		}
		group = localize(group, findMount(mounts, string(name)))
		if isDir(inside(filepath.Join(root, string(name)), group)) {
			paths[name] = group
		}
	}
	if len(paths) == 0 {
		return nil, false, nil
	}
	// The controllers are built on root rather than taken from
	// cgroup1.Default, which reads the real /proc/self/mountinfo. The kmem and
	// memsw files are optional kernel features the limits do not need.
	hierarchy := func() ([]cgroup1.Subsystem, error) {
		return []cgroup1.Subsystem{
			cgroup1.NewCpu(root),
			cgroup1.NewCpuacct(root),
			cgroup1.NewMemory(root, cgroup1.IgnoreModules("memsw", "kmem", "kmem.tcp")),
		}, nil
	}
	path := func(name cgroup1.Name) (string, error) {
		if p, ok := paths[name]; ok {
			return p, nil
		}
		return "", cgroup1.ErrControllerNotActive
	}
	cg, err := cgroup1.Load(path, cgroup1.WithHierarchy(hierarchy), allowAny)
	if err != nil {
		return nil, false, wrap("load v1", err)
	}
	r := &Reader{version: 1, v1: cg}
	if p, ok := paths[cgroup1.Cpu]; ok {
		r.v1CPU = inside(filepath.Join(root, string(cgroup1.Cpu)), p)
	}
	return r, true, nil
}

// allowAny skips any of our controllers that is not mounted, instead of the
// default check that demands the devices controller.
func allowAny(c *cgroup1.InitConfig) error {
	c.InitCheck = cgroup1.AllowAny
	return nil
}

func (r *Reader) statV1() (*v1stats.Metrics, error) {
	// IgnoreNotExist: a controller file the kernel does not provide leaves its
	// part of the stats empty instead of failing the whole read.
	st, err := r.v1.Stat(cgroup1.IgnoreNotExist)
	if err != nil {
		return nil, wrap("stat v1", err)
	}
	return st, nil
}

func (r *Reader) limitsV1() (Limits, error) {
	l := Limits{Version: 1}
	cores, err := cpuQuotaV1(r.v1CPU)
	if err != nil {
		return Limits{}, err
	}
	l.CPUCores = cores
	st, err := r.statV1()
	if err != nil {
		return Limits{}, err
	}
	if mem := st.GetMemory(); mem != nil {
		// A group without its own limit is still bound by its ancestors':
		// hierarchical_memory_limit is the smallest of them.
		limit := mem.GetUsage().GetLimit()
		if h := mem.GetHierarchicalMemoryLimit(); h != 0 && (limit == 0 || h < limit) {
			limit = h
		}
		if limit > 0 && limit < v1Unlimited {
			l.MemoryBytes = int64(limit)
		}
	}
	return l, nil
}

func (r *Reader) usageV1() (Usage, error) {
	st, err := r.statV1()
	if err != nil {
		return Usage{}, err
	}
	u := Usage{CPUNanos: st.GetCPU().GetUsage().GetTotal()}
	if mem := st.GetMemory(); mem != nil {
		u.MemoryBytes = workingSet(mem.GetUsage().GetUsage(), mem.GetTotalInactiveFile())
	}
	return u, nil
}

// cpuQuotaV1 reads cpu.cfs_quota_us / cpu.cfs_period_us. containerd's cpu
// controller only writes these files (its Stat reads cpu.stat), so they are
// read here as containerd's readUint does: one trimmed decimal integer.
func cpuQuotaV1(dir string) (float64, error) {
	if dir == "" {
		return 0, nil
	}
	quota, err := readInt(filepath.Join(dir, "cpu.cfs_quota_us"))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if quota <= 0 { // -1: no quota
		return 0, nil
	}
	period, err := readInt(filepath.Join(dir, "cpu.cfs_period_us"))
	if err != nil {
		return 0, err
	}
	if period <= 0 {
		return 0, wrap("cpu.cfs_period_us", errors.New("period is not positive"))
	}
	return float64(quota) / float64(period), nil
}

func readInt(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, wrap("read", err)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
	if err != nil {
		return 0, wrap("parse "+path, err)
	}
	return n, nil
}

// workingSet is usage minus inactive file cache, never below 0.
func workingSet(usage, inactiveFile uint64) int64 {
	if inactiveFile >= usage {
		return 0
	}
	return int64(usage - inactiveFile)
}
