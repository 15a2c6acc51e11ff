package load

import (
	"context"
	"net/http"
	"sync"

	"github.com/coder/websocket"
)

// acceptWS is the WebSocket handler of a fake server: it accepts the connection, counts it
// in wg (which the test's cleanup waits for) while serve runs, and closes it without a
// close frame when serve returns.
func acceptWS(wg *sync.WaitGroup, serve func(ctx context.Context, c *websocket.Conn)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := websocket.Accept(w, r, nil)
		if err != nil {
			return
		}
		wg.Add(1)
		defer wg.Done()
		defer c.CloseNow()
		serve(r.Context(), c)
	}
}

// readToEnd reads and drops c's frames until the connection ends, so that pings are
// answered and the peer's close is seen.
func readToEnd(ctx context.Context, c *websocket.Conn) {
	for {
		if _, _, err := c.Read(ctx); err != nil {
			return
		}
	}
}
