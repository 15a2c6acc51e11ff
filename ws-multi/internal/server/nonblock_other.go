// This file is duplicated in ws-single (internal/server/nonblock_other.go) on purpose: the server layer is
// the same for one hub loop and for N shards; they may diverge.

//go:build !unix

package server

import "net"

// nonBlockingWriter returns nil: without a non-blocking write every byte goes through the
// cork's background drain.
func nonBlockingWriter(net.Conn) func([]byte) (int, error) { return nil }
