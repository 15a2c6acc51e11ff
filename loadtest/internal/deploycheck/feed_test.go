//go:build deploycheck

package deploycheck

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestComposeFeedScript runs deploy/compose/feed.sh for three batches with a producer that
// writes what it reads to a file per topic: every line is "<symbol>|<JSON object>".
func TestComposeFeedScript(t *testing.T) {
	dir := t.TempDir()
	capture := filepath.Join(dir, "capture")
	if err := os.WriteFile(capture, []byte("#!/bin/sh\ncat >> \"$(dirname \"$0\")/$1.out\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", deployPath(t, "compose", "feed.sh"))
	cmd.Env = append(os.Environ(), "FEED_TICKS=3", "FEED_RATE=100", "FEED_SYMBOLS=AAA-USD,BBB-USD", "FEED_PRODUCER="+capture)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("feed.sh: %v\n%s", err, out)
	}
	total := 0
	for _, topic := range []string{"trades", "tickers"} {
		f, err := os.Open(filepath.Join(dir, topic+".out"))
		if err != nil {
			t.Fatalf("no %s records: %v", topic, err)
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			total++
			key, value, ok := strings.Cut(sc.Text(), "|")
			var v map[string]any
			if !ok || (key != "AAA-USD" && key != "BBB-USD") || json.Unmarshal([]byte(value), &v) != nil || v["symbol"] != key {
				t.Errorf("%s: bad record %q", topic, sc.Text())
			}
		}
		f.Close()
	}
	// 100 records/s in 100ms batches: 10 per batch.
	if total != 30 {
		t.Errorf("%d records in 3 batches at 100/s, want 30", total)
	}
}
