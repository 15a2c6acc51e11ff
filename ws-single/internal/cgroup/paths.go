// This file is part of package cgroup, duplicated in ws-multi on purpose; they may diverge.

package cgroup

import (
	"bufio"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/containerd/cgroups/v3"
)

// procCgroup is the process's line of /proc/self/cgroup per hierarchy.
type procCgroup struct {
	v1      map[string]string // controller (e.g. "memory", "name=systemd") -> path
	unified string            // the "0::" path; "" when absent
}

func readProcCgroup(path string) (procCgroup, error) {
	// containerd's parser takes the file path, so it reads fixtures as well.
	v1, unified, err := cgroups.ParseCgroupFileUnified(path)
	if err != nil {
		return procCgroup{}, wrap("read "+path, err)
	}
	return procCgroup{v1: v1, unified: unified}, nil
}

// mount is one cgroup filesystem of /proc/self/mountinfo.
type mount struct {
	root    string   // the cgroup path mounted (field 4); "/" unless the mount is of a sub-group
	point   string   // where it is mounted
	fstype  string   // "cgroup" or "cgroup2"
	options []string // super options; for v1 they name the controllers
}

// readMountInfo lists the cgroup mounts. containerd reads this file too
// (getCgroupDestination) but only from the fixed /proc/self path, so it is read
// here the same way: fields 4 and 5, then after " - " fstype, source, options.
func readMountInfo(path string) ([]mount, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, wrap("read mountinfo", err)
	}
	defer f.Close()
	mounts, err := parseMountInfo(f)
	if err != nil {
		return nil, wrap("read mountinfo", err)
	}
	return mounts, nil
}

// parseMountInfo keeps the cgroup and cgroup2 lines; others, and malformed
// lines, are skipped: the file describes every mount on the host.
func parseMountInfo(r io.Reader) ([]mount, error) {
	var mounts []mount
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20) // mount options can make long lines
	for sc.Scan() {
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if len(fields) < 5 || len(tail) < 3 || (tail[0] != "cgroup" && tail[0] != "cgroup2") {
			continue
		}
		mounts = append(mounts, mount{
			root: fields[3], point: fields[4], fstype: tail[0], options: strings.Split(tail[2], ","),
		})
	}
	return mounts, sc.Err()
}

// localize turns the path /proc/self/cgroup shows into a path under the mount.
// Without a cgroup namespace a container sees its host path
// (/docker/<id>) while the mount's own root is that same group, so the
// process's group is the mount root itself.
func localize(group string, m *mount) string {
	if m == nil || m.root == "/" {
		return group
	}
	rel, err := filepath.Rel(m.root, group)
	if err != nil || rel == "." || strings.HasPrefix(rel, "..") {
		return "/"
	}
	return "/" + rel
}

// findMount returns the mount of a v1 controller (fstype "cgroup", the
// controller among its options) or, for controller "", the cgroup2 mount.
func findMount(mounts []mount, controller string) *mount {
	for i := range mounts {
		m := &mounts[i]
		if controller == "" && m.fstype == "cgroup2" {
			return m
		}
		if controller != "" && m.fstype == "cgroup" {
			for _, o := range m.options {
				if o == controller {
					return m
				}
			}
		}
	}
	return nil
}
