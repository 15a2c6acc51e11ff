package main

import (
	"github.com/adred-codev/ws_poc/loadtest/internal/dev"
)

// subcommands lists every subcommand in the order `loadtest --help` shows them.
// Each lives in its own package under internal/ and only its entry point is wired here.
func subcommands() []command {
	return []command{
		{name: "dev", summary: "local Kafka-protocol broker (trades, tickers) with a synthetic feed", run: dev.Run},
	}
}
