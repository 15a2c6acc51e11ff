// Package broadcast is `loadtest broadcast`: `loadtest connect` plus a Kafka producer that
// publishes timestamped, numbered records at fixed rates, measuring per-message latency
// from produce to receipt, messages/s, and lost, duplicated and out-of-order messages.
package broadcast

import (
	"context"
	"io"

	"github.com/adred-codev/ws_poc/loadtest/internal/load"
)

// Run parses the flags and runs the scenario.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return load.Command(ctx, load.ModeBroadcast, args, stdout, stderr)
}
