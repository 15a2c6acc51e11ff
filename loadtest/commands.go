package main

import (
	"github.com/adred-codev/ws_poc/loadtest/internal/bench"
	"github.com/adred-codev/ws_poc/loadtest/internal/broadcast"
	"github.com/adred-codev/ws_poc/loadtest/internal/conform"
	"github.com/adred-codev/ws_poc/loadtest/internal/connect"
	"github.com/adred-codev/ws_poc/loadtest/internal/dev"
	"github.com/adred-codev/ws_poc/loadtest/internal/floor"
	"github.com/adred-codev/ws_poc/loadtest/internal/token"
	"github.com/adred-codev/ws_poc/loadtest/internal/worker"
)

// subcommands lists every subcommand in the order `loadtest --help` shows them (hidden ones
// run but are not listed).
// Each lives in its own package under internal/ and only its entry point is wired here.
func subcommands() []command {
	return []command{
		{name: "dev", summary: "local Kafka-protocol broker (trades, tickers) with a synthetic feed", run: dev.Run},
		{name: "conform", summary: "black-box conformance suite of docs/PROTOCOL.md against a running server", run: conform.Run},
		{name: "connect", summary: "open N connections at a ramp rate, subscribe, hold; handshake and server figures", run: connect.Run},
		{name: "broadcast", summary: "connect plus a Kafka producer: latency, msgs/s, loss, duplicates, order", run: broadcast.Run},
		{name: "token", summary: "mint an HS256 development token for a server with WS_AUTH on", run: token.Run},
		{name: "bench", summary: "run bench/scenarios.json against ws-single and ws-multi; report, JSON, SVG", run: bench.Run},
		{name: "worker", summary: "one worker process of connect/broadcast, started by them", run: worker.Run, hidden: true},
		{name: "floor", summary: "CPU per write(2) to loopback TCP sockets: the host's write floor, run by bench", run: floor.Run, hidden: true},
		{name: "floor-reader", summary: "the reading process of floor, started by it", run: floor.ReaderMain, hidden: true},
	}
}
