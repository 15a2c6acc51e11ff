package worker

import (
	"context"
	"io"
	"testing"
)

// The protocol itself (plan on stdin, JSON lines out) is tested in package load, whose tests
// re-run their binary as workers; here only the command line.
func TestRunRejectsArguments(t *testing.T) {
	t.Parallel()
	if err := Run(context.Background(), []string{"--conns", "5"}, io.Discard, io.Discard); err == nil {
		t.Error("Run with arguments = nil, want an error: workers take their plan on stdin")
	}
}
