package sequence

import (
	"reflect"
	"testing"
)

type obs struct {
	seq    uint64
	part   int32
	offset int64
	step   int
	want   Verdict
}

func TestTracker(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		obs          []obs
		produced     []int64
		wantDistinct []int64
		wantDup      int64
		wantOOO      int64
		wantLost     []int64
	}{
		{
			name:         "in order, nothing lost",
			obs:          []obs{{1, 0, 10, 0, InOrder}, {2, 0, 14, 0, InOrder}, {3, 0, 20, 0, InOrder}},
			produced:     []int64{3},
			wantDistinct: []int64{3},
			wantLost:     []int64{0},
		},
		{
			name:         "gap in the middle and the tail are lost",
			obs:          []obs{{1, 0, 10, 0, InOrder}, {3, 0, 20, 0, InOrder}},
			produced:     []int64{4},
			wantDistinct: []int64{2},
			wantLost:     []int64{2},
		},
		{
			name:         "duplicate by sequence and offset",
			obs:          []obs{{1, 0, 10, 0, InOrder}, {2, 0, 11, 0, InOrder}, {2, 0, 11, 0, Duplicate}},
			produced:     []int64{2},
			wantDistinct: []int64{2},
			wantDup:      1,
			wantLost:     []int64{0},
		},
		{
			name:         "late arrival fills its gap and counts as out of order",
			obs:          []obs{{1, 0, 10, 0, InOrder}, {3, 0, 12, 0, InOrder}, {2, 0, 11, 0, Late}},
			produced:     []int64{3},
			wantDistinct: []int64{3},
			wantOOO:      1,
			wantLost:     []int64{0},
		},
		{
			name:         "same offset under a new sequence number is a duplicate",
			obs:          []obs{{1, 1, 5, 0, InOrder}, {2, 1, 5, 0, Duplicate}},
			produced:     []int64{1},
			wantDistinct: []int64{1},
			wantDup:      1,
			wantLost:     []int64{0},
		},
		{
			name:         "partitions are ordered independently",
			obs:          []obs{{1, 0, 100, 0, InOrder}, {2, 1, 3, 0, InOrder}, {3, 0, 101, 0, InOrder}},
			produced:     []int64{3},
			wantDistinct: []int64{3},
			wantLost:     []int64{0},
		},
		{
			name:         "per-step counts",
			obs:          []obs{{1, 0, 1, 0, InOrder}, {2, 0, 2, 0, InOrder}, {3, 0, 3, 1, InOrder}, {5, 0, 5, 1, InOrder}},
			produced:     []int64{2, 3},
			wantDistinct: []int64{2, 2},
			wantLost:     []int64{0, 1},
		},
		{
			name:         "unknown offset relies on sequence numbers",
			obs:          []obs{{1, 0, -1, 0, InOrder}, {1, 0, -1, 0, Duplicate}},
			produced:     []int64{1},
			wantDistinct: []int64{1},
			wantDup:      1,
			wantLost:     []int64{0},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var tr Tracker
			for i, o := range tt.obs {
				if got := tr.Observe(o.seq, o.part, o.offset, o.step); got != o.want {
					t.Errorf("observation %d (seq %d offset %d): verdict %d, want %d", i, o.seq, o.offset, got, o.want)
				}
			}
			var c Counts
			c.Add(&tr)
			c.Settle(tt.produced)
			if !reflect.DeepEqual(c.Distinct, tt.wantDistinct) {
				t.Errorf("distinct %v, want %v", c.Distinct, tt.wantDistinct)
			}
			if c.Duplicates != tt.wantDup || c.OutOfOrder != tt.wantOOO {
				t.Errorf("duplicates %d out of order %d, want %d %d", c.Duplicates, c.OutOfOrder, tt.wantDup, tt.wantOOO)
			}
			if !reflect.DeepEqual(c.Lost, tt.wantLost) {
				t.Errorf("lost %v, want %v", c.Lost, tt.wantLost)
			}
		})
	}
}

func TestCountsMergeAcrossSubscribers(t *testing.T) {
	t.Parallel()
	var a, b Tracker
	for s := uint64(1); s <= 10; s++ {
		a.Observe(s, 0, int64(s), 0)
		if s != 4 && s != 10 {
			b.Observe(s, 0, int64(s), 0)
		}
	}
	var w1, w2 Counts
	w1.Add(&a)
	w2.Add(&b)
	w1.Merge(w2)
	w1.Settle([]int64{10})
	if w1.Subscribers != 2 || w1.Expected[0] != 20 || w1.TotalLost() != 2 {
		t.Errorf("subscribers %d expected %v lost %d, want 2 [20] 2", w1.Subscribers, w1.Expected, w1.TotalLost())
	}
}

func TestMissingSetIsBounded(t *testing.T) {
	t.Parallel()
	var tr Tracker
	tr.Observe(1, 0, -1, 0)
	tr.Observe(1_000_000, 0, -1, 0)
	if len(tr.missing) > maxMissing {
		t.Fatalf("missing set holds %d, bound %d", len(tr.missing), maxMissing)
	}
	var c Counts
	c.Add(&tr)
	c.Settle([]int64{1_000_000})
	if c.TotalLost() != 1_000_000-2 {
		t.Errorf("lost %d, want %d", c.TotalLost(), 1_000_000-2)
	}
}
