// Package e2etest holds the end-to-end tests that drive built binaries: the conformance
// suite against ws-single and ws-multi, the `make run` path (loadtest dev + ws-single +
// kcat), real third-party clients (Node's ws package, headless Chromium through
// playwright-core, both in loadtest/e2e), the demo page's market view on the JavaScript
// client (demo_test.go), and what an outside attacker tried (attack_test.go:
// descriptor exhaustion, oversized messages, ping floods, bursts of large records).
//
// The binaries come from WS_SINGLE_BIN, WS_MULTI_BIN and LOADTEST_BIN (set by `make test`);
// when a variable is unset the test builds that binary itself into a temporary directory.
// Missing tools (kcat, node, chromium, loadtest/e2e/node_modules) fail the tests with a
// message saying what to install; nothing is skipped.
package e2etest
