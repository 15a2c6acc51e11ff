package floor

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"time"
)

// ReaderConfig is the reader side of a probe.
type ReaderConfig struct {
	// Addr is the writer's loopback listener; required.
	Addr string
	// Conns is how many connections to dial; required.
	Conns int
	// Timeout is the reader's whole life: it exits when it passes even if stop never closes;
	// required.
	Timeout time.Duration
}

// RunReader dials cfg.Conns connections to cfg.Addr and discards what arrives on them until
// stop reaches its end (the parent closed the pipe), ctx ends or cfg.Timeout passes; then it
// closes them and returns.
//
// The goroutine that watches stop ends when stop does; when the deadline comes first it is
// left blocked on stop's read, which a blocking pipe does not let us interrupt: the reader
// process exits right after RunReader returns, and the parent closes the pipe in any case.
func RunReader(ctx context.Context, cfg ReaderConfig, stop io.Reader) error {
	if cfg.Addr == "" || cfg.Conns < 1 || cfg.Timeout <= 0 {
		return fmt.Errorf("floor reader: need an address, conns >= 1 and a timeout (got %q, %d, %s)", cfg.Addr, cfg.Conns, cfg.Timeout)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	go func() {
		_, _ = io.Copy(io.Discard, stop)
		cancel()
	}()

	var wg sync.WaitGroup
	conns := make([]net.Conn, 0, cfg.Conns)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
		wg.Wait()
	}()
	d := net.Dialer{Timeout: 10 * time.Second}
	for range cfg.Conns {
		c, err := d.DialContext(ctx, "tcp", cfg.Addr)
		if err != nil && ctx.Err() != nil {
			// Told to stop (or out of time) while dialing: the writer counts what it accepted.
			return nil
		}
		if err != nil {
			return fmt.Errorf("floor reader: dial %s after %d connections: %w", cfg.Addr, len(conns), err)
		}
		conns = append(conns, c)
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Ends on the writer's close or ours; what it read is of no interest.
			_, _ = io.Copy(io.Discard, c)
		}()
	}
	<-ctx.Done()
	return nil
}
