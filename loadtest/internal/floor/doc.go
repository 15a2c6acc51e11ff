// Package floor measures the host's loopback write floor: the CPU time one write(2) of a
// small payload to a loopback TCP socket costs the writing process, when the writes go
// round-robin over thousands of connections at a fixed rate.
//
// Why: ws-single's latency target (bench scenario "latency") delivers every message in its
// own write(2), 100K of them per second. On loopback the sender's core also runs the
// receiver's TCP receive path, so that write costs several microseconds of the writer's CPU
// before the server has done any work of its own; at 100K writes/s that kernel time alone can
// fill the one core ws-single runs on. The bench measures this floor in the same run as the
// scenarios so the report can state it next to the latency result.
//
// How: Measure listens on 127.0.0.1, starts the reader side as a child process (this binary
// re-run as the hidden `loadtest floor-reader`, under `taskset -c` when Config.ReaderCPUs is
// set) that dials Conns connections and discards what it reads, then writes Payload-byte
// buffers round-robin over the accepted sockets, paced on 1 ms ticks, with raw syscall.Write
// on their non-blocking file descriptors so Go's netpoller adds nothing, and reads
// getrusage(RUSAGE_SELF) before and after each rate. The process's CPU over its writes is the
// floor; it includes the little the Go runtime and the pacing loop cost besides the syscalls.
//
// Lifecycle: the reader exits by itself when its stdin closes (Measure closes it on every
// path) or when its deadline passes; Measure always closes the sockets, reaps the child and
// leaves no goroutine behind.
package floor
