//go:build !unix

package server

import "net"

// nonBlockingWriter returns nil: without a non-blocking write every byte goes through the
// cork's background drain.
func nonBlockingWriter(net.Conn) func([]byte) (int, error) { return nil }
