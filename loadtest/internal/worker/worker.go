// Package worker is the hidden `loadtest worker` subcommand: `connect` and `broadcast`
// re-execute this binary to hold more connections than one process may (open-file limit);
// the plan arrives on stdin, progress and results leave on stdout as JSON lines.
package worker

import (
	"context"
	"errors"
	"io"
	"os"

	"github.com/adred-codev/ws_poc/loadtest/internal/load"
)

// Run runs one worker. It reads the process's stdin, since the parent owns the pipes.
func Run(ctx context.Context, args []string, stdout, _ io.Writer) error {
	if len(args) > 0 {
		return errors.New("worker takes no arguments; it is started by connect and broadcast")
	}
	return load.RunWorker(ctx, os.Stdin, stdout)
}
