// Command loadtest drives a ws_poc server (or another WebSocket server) with connections,
// subscriptions and Kafka traffic, runs the protocol conformance suite, and hosts the local
// development broker that `make run` uses.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/adred-codev/ws_poc/loadtest/internal/token"
)

// version and commit are stamped by the Makefile's -ldflags.
var (
	version = "v0.0.0-dev"
	commit  = "unknown"
)

// command is one subcommand: its name, a one-line summary and its entry point. A hidden
// command is an implementation detail (a worker process the tool starts itself): it runs
// but --help does not list it.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
	hidden  bool
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	commands := subcommands()
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stderr, commands)
		if len(args) == 0 {
			return 2
		}
		return 0
	}
	if args[0] == "--version" || args[0] == "version" {
		fmt.Fprintf(stdout, "loadtest %s (commit %s)\n", version, commit)
		return 0
	}
	for _, c := range commands {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], stdout, stderr)
		switch {
		case err == nil:
			return 0
		case errors.Is(err, flag.ErrHelp):
			return 0
		case errors.Is(err, token.ErrUsage):
			fmt.Fprintf(stderr, "loadtest %s: %v\n", c.name, err)
			return 2
		default:
			fmt.Fprintf(stderr, "loadtest %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "loadtest: unknown command %q\n\n", args[0])
	usage(stderr, commands)
	return 2
}

func usage(w io.Writer, commands []command) {
	fmt.Fprintln(w, "usage: loadtest <command> [flags]   (loadtest <command> --help for its flags)")
	fmt.Fprintln(w)
	for _, c := range commands {
		if !c.hidden {
			fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
		}
	}
}
