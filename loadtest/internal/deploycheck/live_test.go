//go:build deploycheck

package deploycheck

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/adred-codev/ws_poc/loadtest/internal/testbin"
)

// variants are the scrape jobs of the live check: job name = variant, as in prometheus.yml.
var variants = []struct{ job, binEnv string }{
	{job: "ws-single", binEnv: "WS_SINGLE_BIN"},
	{job: "ws-multi", binEnv: "WS_MULTI_BIN"},
}

// Grafana's template values for the live queries: both variants, and a rate window that
// covers the whole short load at a 1s scrape interval.
var grafanaVars = strings.NewReplacer(
	"$__rate_interval", "30s",
	"$__interval", "5s",
	"$variant", "ws-single|ws-multi",
)

// TestLiveDashboardAndAlerts runs both servers against an in-process Kafka broker under a
// short load, scrapes them with a real Prometheus that also loads the alert rules, then runs
// every dashboard query and every alert expression against it. A panel that returns nothing
// (a metric nobody exports, a label nobody sets) fails.
func TestLiveDashboardAndAlerts(t *testing.T) {
	promBin, err := exec.LookPath("prometheus")
	if err != nil {
		t.Fatalf("prometheus not found (apt-get install prometheus; .ci/run does): %v", err)
	}

	broker, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(2, "trades", "tickers"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(broker.Close)
	brokerAddr := broker.ListenAddrs()[0]

	servers := map[string]string{} // job -> host:port
	bins := map[string]string{}    // job -> binary
	for _, v := range variants {
		bin := serverBinary(t, v.binEnv, v.job)
		bins[v.job] = bin
		addr := testbin.FreeAddr(t)
		startProcess(t, v.job, bin, []string{
			"WS_ADDR=" + addr,
			"WS_KAFKA_BROKERS=" + brokerAddr,
			"WS_KAFKA_TOPICS=trades,tickers",
			"WS_LOG_LEVEL=warn",
			"WS_SHUTDOWN_TIMEOUT=2s",
			// Small limits so the short load reaches them: the 9th client is refused and a
			// client that does not read is cut as slow.
			"WS_MAX_CONNECTIONS=8",
			"WS_SEND_QUEUE_MESSAGES=32",
			"WS_SEND_QUEUE_BYTES=65536",
			// The test machine's CPU is shared with other builds: admission must not refuse
			// the load's own clients.
			"WS_CPU_REJECT_THRESHOLD=0",
		})
		waitHTTP200(t, "http://"+addr+"/readyz", 30*time.Second)
		servers[v.job] = addr
		checkHealthcheck(t, bin, addr)
	}

	prom := startPrometheus(t, promBin, servers)
	// Prometheus applies new targets after a few seconds; rates need scrapes from before the load.
	waitScraped(t, prom, 3, 30*time.Second)

	runLoad(t, brokerAddr, servers)

	// The last scrapes must include the end of the load.
	time.Sleep(2500 * time.Millisecond)

	checkPanels(t, prom)
	checkAlerts(t, prom)
	checkMoved(t, prom)
	checkBuildInfo(t, prom, bins)
}

// checkHealthcheck runs `<binary> healthcheck`, the image's HEALTHCHECK, with WS_ADDR as the
// images set it (":port", all interfaces) and as a full address: exit 0 while the server is
// up, non-zero for a port nobody listens on.
func checkHealthcheck(t *testing.T, bin, addr string) {
	t.Helper()
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		wsAddr string
		wantOK bool
	}{
		{name: "port only", wsAddr: ":" + port, wantOK: true},
		{name: "full address", wsAddr: addr, wantOK: true},
		{name: "nobody listening", wsAddr: testbin.FreeAddr(t), wantOK: false},
	}
	for _, tt := range tests {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		cmd := exec.CommandContext(ctx, bin, "healthcheck")
		cmd.Env = append(os.Environ(), "WS_ADDR="+tt.wsAddr)
		out, err := cmd.CombinedOutput()
		cancel()
		if (err == nil) != tt.wantOK {
			t.Errorf("%s healthcheck, %s (WS_ADDR=%s): err %v, want ok=%v\n%s", filepath.Base(bin), tt.name, tt.wsAddr, err, tt.wantOK, out)
		}
	}
}

// checkBuildInfo: ws_build_info names the variant (= the scrape job the dashboard and alerts
// use) and carries the version and commit that --version prints, both stamped by the Makefile
// from the variant's tags.
func checkBuildInfo(t *testing.T, prom string, bins map[string]string) {
	t.Helper()
	for job, bin := range bins {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		out, err := exec.CommandContext(ctx, bin, "--version").Output()
		cancel()
		if err != nil {
			t.Fatalf("%s --version: %v", bin, err)
		}
		// "<variant> <version> (commit <commit>)"
		var variant, version, commit string
		if _, err := fmt.Sscanf(string(out), "%s %s (commit %s", &variant, &version, &commit); err != nil {
			t.Fatalf("%s --version printed %q: %v", job, out, err)
		}
		commit = strings.TrimSuffix(commit, ")")
		res, err := promQuery(t, prom, `ws_build_info{job="`+job+`"}`)
		if err != nil || len(res) != 1 {
			t.Fatalf("ws_build_info of %s: %v %v", job, res, err)
		}
		got := res[0].Metric
		if got["variant"] != job || variant != job || got["version"] != version || got["commit"] != commit || got["go_version"] == "" {
			t.Errorf("%s: ws_build_info %v, --version %q: want variant %s and the same version and commit", job, got, out, job)
		}
	}
}

// startPrometheus runs a real Prometheus on loopback with a 1s scrape of both servers and the
// repository's alert rules, and returns its base URL.
func startPrometheus(t *testing.T, bin string, servers map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files:\n  - %q\nscrape_configs:\n",
		deployPath(t, "prometheus", "rules", "ws_poc.yml"))
	for _, v := range variants {
		fmt.Fprintf(&cfg, "  - job_name: %s\n    static_configs:\n      - targets: [%q]\n", v.job, servers[v.job])
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := testbin.FreeAddr(t)
	startProcess(t, "prometheus", bin, nil,
		"--config.file="+cfgPath,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	base := "http://" + addr
	waitHTTP200(t, base+"/-/ready", 30*time.Second)
	return base
}

// waitScraped waits until Prometheus holds at least n scrapes of every variant.
func waitScraped(t *testing.T, prom string, n int, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		res, err := promQuery(t, prom, `count_over_time(up[5m]) >= `+strconv.Itoa(n))
		if err != nil {
			t.Fatal(err)
		}
		if len(res) == len(variants) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("Prometheus has not scraped both servers %d times within %v: %v", n, within, res)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// runLoad drives each server: 7 reading clients (one also sends invalid requests), one client
// that never reads, one refused over WS_MAX_CONNECTIONS, while records are produced; it
// returns once the non-reading client was cut as slow on every server (bounded in data and
// time) and every client is closed.
func runLoad(t *testing.T, brokerAddr string, servers map[string]string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	var wg sync.WaitGroup
	var conns []*websocket.Conn
	defer func() {
		for _, c := range conns {
			c.CloseNow()
		}
		wg.Wait()
	}()
	dial := func(addr string, client *http.Client) (*websocket.Conn, error) {
		c, _, err := websocket.Dial(ctx, "ws://"+addr+"/ws", &websocket.DialOptions{HTTPClient: client})
		if err != nil {
			return nil, err
		}
		c.SetReadLimit(1 << 20)
		conns = append(conns, c)
		return c, nil
	}
	send := func(c *websocket.Conn, msg string) {
		if err := c.Write(ctx, websocket.MessageText, []byte(msg)); err != nil {
			t.Fatalf("write %s: %v", msg, err)
		}
	}
	read := func(c *websocket.Conn) {
		defer wg.Done()
		for {
			if _, _, err := c.Read(ctx); err != nil {
				return
			}
		}
	}

	for job, addr := range servers {
		for i := range 7 {
			c, err := dial(addr, httpClient())
			if err != nil {
				t.Fatalf("%s: dial reader %d: %v", job, i, err)
			}
			if i == 0 {
				send(c, `not json`)
				send(c, `{"op":"nope","id":"x"}`)
			}
			// trades:BULK, the bulk that cuts the slow client, goes to nobody else.
			send(c, `{"op":"subscribe","id":"s","channels":["trades:BTC-USD","tickers:*"]}`)
			wg.Add(1)
			go read(c)
		}
		slow, err := dial(addr, slowReaderClient())
		if err != nil {
			t.Fatalf("%s: dial slow client: %v", job, err)
		}
		send(slow, `{"op":"subscribe","id":"s","channels":["trades:*"]}`)

		// The 9th connection: refused (HTTP status, or upgraded then closed 1013).
		if extra, err := dial(addr, httpClient()); err == nil {
			wg.Add(1)
			go read(extra)
		}
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokerAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	produce := func(topic, key string, n, size int) {
		var recs []*kgo.Record
		for i := range n {
			pad := strings.Repeat("x", size)
			v := fmt.Sprintf(`{"price":"%d.5","seq":%d,"pad":"%s"}`, 60000+i, i, pad)
			recs = append(recs, &kgo.Record{Topic: topic, Key: []byte(key), Value: []byte(v), Timestamp: time.Now()})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("produce to %s: %v", topic, err)
		}
	}

	// Market data for the readers over ~2s, so rates have several scrapes to work with: the
	// compose feed service's own command.
	loadtestBin := serverBinary(t, "LOADTEST_BIN", "loadtest")
	feed(ctx, t, loadtestBin, brokerAddr, 2*time.Second)
	// Bulk for the slow client until every server cut it: at most 32 x 1 MiB, and 20s.
	cut := map[string]bool{}
	bulkEnd := time.Now().Add(20 * time.Second)
	for round := 0; round < 32 && len(cut) < len(servers) && time.Now().Before(bulkEnd); round++ {
		produce("trades", "BULK", 256, 4096)
		// Let the servers consume the round before deciding whether to send another.
		for wait := time.Now().Add(500 * time.Millisecond); time.Now().Before(wait) && len(cut) < len(servers); {
			for job, addr := range servers {
				if v := scrapeValue(t, addr, `ws_disconnects_total{reason="slow"}`); v != "" && v != "0" {
					cut[job] = true
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	for job := range servers {
		if !cut[job] {
			t.Errorf("%s never cut the client that does not read (ws_disconnects_total{reason=\"slow\"} stays 0 after 32 MiB)", job)
		}
	}
	// More market data after the bulk, so the last scrapes see the readers' traffic too.
	feed(ctx, t, loadtestBin, brokerAddr, time.Second)
	// Readers close normally: ws_disconnects_total{reason="client"}. In parallel: a close
	// handshake may wait for the server.
	var closing sync.WaitGroup
	for _, c := range conns {
		closing.Go(func() { c.Close(websocket.StatusNormalClosure, "done") })
	}
	closing.Wait()
}

// feed runs the compose feed service's command, `loadtest dev --external`, for d at 200
// records/s into the broker.
func feed(ctx context.Context, t *testing.T, bin, brokerAddr string, d time.Duration) {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, "dev", "--external", "--brokers", brokerAddr, "--rate", "200", "--duration", d.String())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("loadtest dev --external: %v\n%s", err, out)
	}
}

// slowReaderClient dials with a tiny socket receive buffer, so a client that does not read
// backs the server's socket up quickly and the server's send queue has to absorb the rest.
func slowReaderClient() *http.Client {
	d := &net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		}); err != nil {
			return err
		}
		return serr
	}}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
}

// scrapeValue reads one series straight from a server's /metrics.
func scrapeValue(t *testing.T, addr, series string) string {
	t.Helper()
	resp, err := httpClient().Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", addr, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("scrape %s: %v", addr, err)
	}
	return metricValue(string(b), series)
}

// promSample is one series of an instant query result.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (s promSample) float() float64 {
	str, _ := s.Value[1].(string)
	f, err := strconv.ParseFloat(str, 64)
	if err != nil {
		return math.NaN()
	}
	return f
}

// promQuery runs an instant query; a parse or evaluation error is returned as an error.
func promQuery(t *testing.T, base, expr string) ([]promSample, error) {
	t.Helper()
	resp, err := httpClient().Get(base + "/api/v1/query?" + url.Values{"query": {expr}}.Encode())
	if err != nil {
		t.Fatalf("query %s: %v", expr, err)
	}
	defer resp.Body.Close()
	var r struct {
		Status    string `json:"status"`
		ErrorType string `json:"errorType"`
		Error     string `json:"error"`
		Data      struct {
			ResultType string       `json:"resultType"`
			Result     []promSample `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("query %s: decode: %v", expr, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("%s: %s", r.ErrorType, r.Error)
	}
	if r.Data.ResultType != "vector" {
		return nil, fmt.Errorf("result type %s, want vector", r.Data.ResultType)
	}
	return r.Data.Result, nil
}

// checkPanels runs every query of every dashboard panel: each must parse and return data for
// both variants.
func checkPanels(t *testing.T, prom string) {
	t.Helper()
	n := 0
	for file, d := range dashboards(t) {
		for _, p := range queryPanels(d.Panels) {
			for _, tg := range p.Targets {
				n++
				expr := grafanaVars.Replace(tg.Expr)
				res, err := promQuery(t, prom, expr)
				if err != nil {
					t.Errorf("%s panel %q %s: %v\n  %s", file, p.Title, tg.RefID, err, expr)
					continue
				}
				jobs := map[string]bool{}
				for _, s := range res {
					jobs[s.Metric["job"]] = true
				}
				for _, v := range variants {
					// The shard panel is ws-multi's alone (ws_shard_* are ws-multi only).
					if v.job == "ws-single" && strings.Contains(expr, "ws_shard_") {
						continue
					}
					if !jobs[v.job] {
						t.Errorf("%s panel %q %s: no data for %s\n  %s", file, p.Title, tg.RefID, v.job, expr)
					}
				}
			}
		}
	}
	if n == 0 {
		t.Error("no panel query ran")
	}

	// The variant variable: label_values(ws_build_info, job) must list both.
	res, err := promQuery(t, prom, `count by (job) (ws_build_info)`)
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != len(variants) {
		t.Errorf("ws_build_info jobs %v, want both variants", res)
	}
}

// checkAlerts: every alert expression parses and evaluates, and Prometheus loaded and
// evaluated every rule of the file without error.
func checkAlerts(t *testing.T, prom string) {
	t.Helper()
	rules := alertRules(t)
	for _, r := range rules {
		if _, err := promQuery(t, prom, r.Expr); err != nil {
			t.Errorf("alert %s: %v\n  %s", r.Alert, err, r.Expr)
		}
	}
	resp, err := httpClient().Get(prom + "/api/v1/rules")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var rr struct {
		Data struct {
			Groups []struct {
				Rules []struct {
					Name      string `json:"name"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
				} `json:"rules"`
			} `json:"groups"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&rr); err != nil {
		t.Fatal(err)
	}
	loaded := 0
	for _, g := range rr.Data.Groups {
		for _, r := range g.Rules {
			loaded++
			if r.Health != "ok" {
				t.Errorf("rule %s: health %q %s", r.Name, r.Health, r.LastError)
			}
		}
	}
	if loaded != len(rules) {
		t.Errorf("Prometheus loaded %d rules, the file has %d", loaded, len(rules))
	}
}

// checkMoved: the load moved every counter and histogram it can move, on both variants.
func checkMoved(t *testing.T, prom string) {
	t.Helper()
	for _, expr := range []string{
		`ws_connections_accepted_total`,
		`ws_connections_rejected_total{reason="max_connections"}`,
		`ws_disconnects_total{reason="slow"}`,
		`ws_disconnects_total{reason="client"}`,
		`ws_send_queue_overflow_total`,
		`ws_protocol_errors_total{code="invalid_json"}`,
		`ws_protocol_errors_total{code="unknown_op"}`,
		`ws_messages_delivered_total`,
		`ws_frames_written_total`,
		`ws_bytes_written_total`,
		`ws_delivery_latency_seconds_count`,
		`ws_kafka_records_consumed_total{topic="trades"}`,
		`ws_kafka_records_consumed_total{topic="tickers"}`,
		`ws_kafka_attached`,
	} {
		res, err := promQuery(t, prom, `sum by (job) (`+expr+`)`)
		if err != nil {
			t.Fatalf("%s: %v", expr, err)
		}
		got := map[string]float64{}
		for _, s := range res {
			got[s.Metric["job"]] = s.float()
		}
		t.Logf("%s: %v", expr, got)
		for _, v := range variants {
			if !(got[v.job] > 0) {
				t.Errorf("%s: %s = %v after the load, want > 0", v.job, expr, got[v.job])
			}
		}
	}
}
