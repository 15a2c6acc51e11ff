// Package connect is `loadtest connect`: open N WebSocket connections at a ramp rate,
// subscribe them per a channel distribution, hold them, and report handshake latency,
// failures by cause and the server's own figures (connections, RSS per connection,
// rejections).
package connect

import (
	"context"
	"io"

	"github.com/adred-codev/ws_poc/loadtest/internal/load"
)

// Run parses the flags and runs the scenario.
func Run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return load.Command(ctx, load.ModeConnect, args, stdout, stderr)
}
