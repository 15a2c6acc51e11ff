// This file is duplicated from ws-single (internal/history/errors.go) on purpose: the
// variants share the history.

package history

import (
	"context"
	"errors"
	"fmt"

	"github.com/adred-codev/ws_poc/ws-multi/internal/protocol"
)

// Errors of a Kafka catch-up (kafka.Reader), each mapped to a not-recovered reason by
// Reason.
var (
	// ErrBusy: no catch-up reader was free within WS_RESUME_WAIT.
	ErrBusy = errors.New("history: every catch-up reader is busy")
	// ErrTooFarBehind: the catch-up would scan more than WS_RESUME_MAX_SCAN_RECORDS or
	// WS_RESUME_MAX_SCAN_BYTES.
	ErrTooFarBehind = errors.New("history: too far behind")
)

// OutOfRetentionError is a position older than its partition's log start.
type OutOfRetentionError struct {
	Part
	Earliest int64 // the log's first offset
}

func (e *OutOfRetentionError) Error() string {
	return fmt.Sprintf("history: %s/%d: out of retention (log starts at %d)", e.Topic, e.Partition, e.Earliest)
}

// Reason maps a catch-up error to its not-recovered reason, and to the partition and
// earliest offset of an out_of_retention (-1 otherwise). A deadline is a timeout; anything
// else is Kafka being unavailable.
func Reason(err error) (reason string, part Part, earliest int64) {
	var oor *OutOfRetentionError
	switch {
	case errors.As(err, &oor):
		return protocol.NotRecoveredOutOfRetention, oor.Part, oor.Earliest
	case errors.Is(err, ErrBusy):
		return protocol.NotRecoveredBusy, Part{Partition: -1}, -1
	case errors.Is(err, ErrTooFarBehind):
		return protocol.NotRecoveredTooFarBehind, Part{Partition: -1}, -1
	case errors.Is(err, context.DeadlineExceeded):
		return protocol.NotRecoveredTimeout, Part{Partition: -1}, -1
	}
	return protocol.NotRecoveredUnavailable, Part{Partition: -1}, -1
}
