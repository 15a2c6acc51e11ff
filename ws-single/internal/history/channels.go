// This file is duplicated from ws-multi (internal/history/channels.go) on purpose: the
// variants share the history.

package history

import (
	"cmp"
	"slices"
	"sort"

	"github.com/adred-codev/ws_poc/ws-single/internal/protocol"
)

// channelIndex is a ring's records by channel, each list in offset order: a resume of a few
// channels costs what it replays, not a scan of the partition. Without it a resume of one
// quiet channel on a busy partition scans the whole ring on the hub's goroutine, and a
// client that repeats such resumes (they are cheap requests) buys that work every time. The
// writer keeps it (one map lookup and append per record, a front pop per dropped record);
// its lists hold the ring's own messages, 8 bytes a record.
type channelIndex map[string][]*protocol.Message

func (ci channelIndex) add(m *protocol.Message) {
	ci[m.Channel] = append(ci[m.Channel], m)
}

// drop removes m, the oldest record of its channel, as the ring drops it.
func (ci channelIndex) drop(m *protocol.Message) {
	l := ci[m.Channel]
	if len(l) <= 1 {
		delete(ci, m.Channel) // the map does not keep channels the ring no longer holds
		return
	}
	l[0] = nil
	ci[m.Channel] = l[1:]
}

// replay calls fn, in offset order, with every record of channels whose offset is in
// (after, before), and returns how many it visited.
func (ci channelIndex) replay(channels []string, after, before int64, fn func(*protocol.Message)) int {
	var out []*protocol.Message
	for _, ch := range channels {
		l := ci[ch]
		i := sort.Search(len(l), func(i int) bool { return l[i].Offset > after })
		for ; i < len(l) && l[i].Offset < before; i++ {
			out = append(out, l[i])
		}
	}
	if len(channels) > 1 {
		slices.SortFunc(out, func(a, b *protocol.Message) int { return cmp.Compare(a.Offset, b.Offset) })
	}
	for _, m := range out {
		fn(m)
	}
	return len(out)
}
