package floor

import (
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Affinity returns this process's CPU affinity as a taskset CPU list ("1", "0-1", "0,2-3"),
// so a child can be pinned where its parent runs.
func Affinity() (string, error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return "", fmt.Errorf("floor: cpu affinity: %w", err)
	}
	var cpus []int
	for cpu := 0; len(cpus) < set.Count(); cpu++ {
		if set.IsSet(cpu) {
			cpus = append(cpus, cpu)
		}
	}
	return cpuList(cpus), nil
}

// cpuList formats ascending CPU numbers as ranges: [0 1 2 5] is "0-2,5".
func cpuList(cpus []int) string {
	var parts []string
	for i := 0; i < len(cpus); {
		j := i
		for j+1 < len(cpus) && cpus[j+1] == cpus[j]+1 {
			j++
		}
		if j == i {
			parts = append(parts, strconv.Itoa(cpus[i]))
		} else {
			parts = append(parts, strconv.Itoa(cpus[i])+"-"+strconv.Itoa(cpus[j]))
		}
		i = j + 1
	}
	return strings.Join(parts, ",")
}
