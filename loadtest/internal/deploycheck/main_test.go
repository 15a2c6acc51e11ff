//go:build deploycheck

package deploycheck

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package when a test leaves a goroutine behind (WebSocket clients, the
// Kafka producer, the in-process broker, process waiters).
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
