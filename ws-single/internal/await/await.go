// This package is duplicated in ws-multi (internal/await) on purpose; they may diverge.

// Package await holds the module's one way for a test to wait for a condition.
// It is imported by tests only.
package await

import (
	"testing"
	"time"
)

// every is how often True polls.
const every = 5 * time.Millisecond

// True polls cond every few ms until it holds or within passes, then fails t with what.
func True(t testing.TB, within time.Duration, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(every)
	}
}
