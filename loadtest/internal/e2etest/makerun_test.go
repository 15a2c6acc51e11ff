package e2etest

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/adred-codev/ws_poc/loadtest/internal/conform"
	"github.com/adred-codev/ws_poc/loadtest/internal/testbin"
)

// TestMakeRunPath follows `make run` and `VARIANT=multi make run`: the loadtest dev binary
// is the broker and feed, the variant consumes it, and an outside Kafka client (kcat)
// produces a record that a subscribed WebSocket client receives, next to the synthetic feed.
func TestMakeRunPath(t *testing.T) {
	kcat := requireTool(t, "kcat", "apt-get install kcat (.ci/run installs it)")
	lt := binary(t, "LOADTEST_BIN", "loadtest")
	for _, v := range []struct{ name, env string }{
		{"ws-single", "WS_SINGLE_BIN"},
		{"ws-multi", "WS_MULTI_BIN"},
	} {
		t.Run(v.name, func(t *testing.T) {
			makeRunPath(t, kcat, lt, v.name, binary(t, v.env, v.name))
		})
	}
}

func makeRunPath(t *testing.T, kcat, lt, name, bin string) {
	brokerAddr := testbin.FreeAddr(t)
	devProc := start(t, "loadtest-dev", lt, nil, "dev", "--broker", brokerAddr, "--rate", "40")
	devProc.waitOutput(t, "kafka broker on "+brokerAddr, 15*time.Second)
	srv := startServer(t, name, bin, brokerAddr)

	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	c := dialWS(ctx, t, srv.wsURL())
	key := uniqueKey("kcat")
	c.subscribe(ctx, t, "trades:"+key, "trades:BTC-USD")

	// The feed: a synthetic BTC-USD trade arrives.
	feed := c.readUntil(ctx, t, "a synthetic trades:BTC-USD message", func(e conform.Envelope) bool {
		return e.Op == "message" && e.Channel == "trades:BTC-USD"
	})
	if !strings.Contains(string(feed.Data), `"price"`) {
		t.Fatalf("feed message without a price: %s", feed.Raw)
	}

	// An outside client: kcat, exactly as the README shows.
	value := `{"price":"1.5"}`
	kctx, kcancel := context.WithTimeout(ctx, 20*time.Second)
	out, err := runTool(kctx, "", strings.NewReader(key+":"+value+"\n"), kcat, "-P", "-b", brokerAddr, "-t", "trades", "-K:")
	kcancel()
	if err != nil {
		t.Fatalf("kcat -P: %v\n%s", err, out)
	}
	got := c.readUntil(ctx, t, "the kcat record on trades:"+key, func(e conform.Envelope) bool {
		return e.Op == "message" && e.Channel == "trades:"+key
	})
	if string(got.Data) != value {
		t.Fatalf("kcat record arrived as %s, want data %s", got.Raw, value)
	}

	// Ctrl-C stops loadtest dev cleanly.
	if err := devProc.stop(t, syscall.SIGINT); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("exit status %d", ee.ExitCode())
		}
		t.Fatalf("loadtest dev after SIGINT: %v, want exit 0\n%s", err, devProc.output())
	}
}
