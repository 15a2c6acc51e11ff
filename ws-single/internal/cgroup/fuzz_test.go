// This file is part of package cgroup, duplicated in ws-multi on purpose; they may diverge.

package cgroup

import (
	"math"
	"strings"
	"testing"
)

func FuzzParseCPUMax(f *testing.F) {
	for _, s := range []string{"max 100000", "max", "150000 100000\n", "25000", "0 100000", "-1 100000", "1 2 3", "", "9223372036854775807 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		cores, err := parseCPUMax(s)
		if err != nil {
			if cores != 0 {
				t.Fatalf("parseCPUMax(%q) = %v with error %v", s, cores, err)
			}
			return
		}
		if cores < 0 || math.IsNaN(cores) || math.IsInf(cores, 0) {
			t.Fatalf("parseCPUMax(%q) = %v", s, cores)
		}
		if cores == 0 && strings.Fields(s)[0] != "max" {
			t.Fatalf("parseCPUMax(%q) = 0 (no quota) without \"max\"", s)
		}
	})
}

func FuzzParseMountInfo(f *testing.F) {
	f.Add("32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n")
	f.Add("31 23 0:26 /a /sys/fs/cgroup rw - cgroup2 cgroup2 rw,nsdelegate\n")
	f.Add("1 2 3 - \n - - -\n")
	f.Fuzz(func(t *testing.T, s string) {
		mounts, err := parseMountInfo(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, m := range mounts {
			if m.fstype != "cgroup" && m.fstype != "cgroup2" {
				t.Fatalf("parseMountInfo kept a %q mount", m.fstype)
			}
		}
	})
}
