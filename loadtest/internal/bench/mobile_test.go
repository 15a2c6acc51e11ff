package bench

import (
	"strings"
	"testing"

	"github.com/adred-codev/ws_poc/loadtest/internal/latency"
	"github.com/adred-codev/ws_poc/loadtest/internal/load"
)

// mobileRecord is a clean mobile run of round repeat: 100 throttled clients with the given
// conflation, cuts (as the clients saw them, and the server's count) and unannounced
// records, and healthy clients with p99 ms.
func mobileRecord(variant, name, conflate string, repeat int, seen, server, unannounced int64, p99 float64) *record {
	r := marketRecord(variant, repeat, 10, p99, 20)
	r.Entry = Entry{Name: name, Kind: KindMobile, CompareTo: "market", MaxP99Ratio: 1.2}
	res := r.Result
	res.Server.Delta.Disconnects = map[string]float64{"write_timeout": float64(server)}
	cutBy := map[string]int64{}
	if seen > 0 {
		cutBy["eof"] = seen
	}
	res.Throttled = &load.ThrottledFigures{
		Clients: 100, Subscribed: 100, BytesPerSec: 20000, ReadPerSec: 19000, Conflate: conflate, Channels: 20,
		Cut: seen, CutBy: cutBy, Messages: 5000, ConflatedLines: 300, Skipped: 2700, Unannounced: unannounced,
		ValueAge: latency.Summary{Count: 1000, P50Ms: 2500, P99Ms: 3400, MaxMs: 3800},
		Behind:   latency.Summary{Count: 50, P50Ms: 2400, P99Ms: 3300, MaxMs: 3700},
	}
	return r
}

func TestMobileRow(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		conflate    string
		seen        int64
		server      int64
		unannounced int64
		noFigures   bool
		problem     string // "" passes
	}{
		{"conflating, none cut", load.ConflateBehind, 0, 0, 0, false, ""},
		{"conflating, cut as the clients saw it", load.ConflateBehind, 3, 0, 0, false, "3 seen by the clients (eof=3), 0 by the server"},
		{"conflating, cut by the server's count only", load.ConflateBehind, 0, 2, 0, false, "0 seen by the clients (none), 2 by the server"},
		{"not conflating: cuts are the contrast", "", 40, 55, 0, false, ""},
		{"records missing unannounced", "", 0, 0, 7, false, "7 records missing"},
		{"no throttled figures", load.ConflateBehind, 0, 0, 0, true, "no throttled clients' figures"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			r := mobileRecord("single", "mobile", tt.conflate, 1, tt.seen, tt.server, tt.unannounced, 100)
			if tt.noFigures {
				r.Result.Throttled = nil
			}
			w := row(r)
			if tt.problem == "" && w.Problem != "" || tt.problem != "" && !strings.Contains(w.Problem, tt.problem) {
				t.Errorf("problem %q, want %q", w.Problem, tt.problem)
			}
			if !tt.noFigures && (w.Mobile == nil || w.Mobile.ServerCut != tt.server || w.Mobile.AgeP99 != 3400) {
				t.Errorf("mobile row %+v, want the server's cut %d and the age p99 3400", w.Mobile, tt.server)
			}
		})
	}
}

func TestMobileVerdict(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		m        MobileRow
		ratio    float64
		maxRatio float64
		want     string
	}{
		{"met", MobileRow{Conflate: "behind"}, 1.1, 1.2, "yes: none cut, healthy p99 1.10x <= 1.2x"},
		{"at the bound", MobileRow{Conflate: "behind"}, 1.2, 1.2, "yes"},
		{"p99 over the bound", MobileRow{Conflate: "behind"}, 1.35, 1.2, "no: healthy p99 1.35x > 1.2x"},
		{"cut, by the server's count", MobileRow{Conflate: "behind", Cut: 1, ServerCut: 4}, 1.0, 1.2, "no: 4 cut"},
		{"no reference run", MobileRow{Conflate: "behind"}, 0, 1.2, "no: no reference p99"},
		{"no bound", MobileRow{Conflate: "behind"}, 3, 0, "yes: none cut"},
		{"contrast, cut", MobileRow{Clients: 1000, Cut: 400, ServerCut: 520, BehindMax: 8800}, 1.1, 0, "contrast: 520 of 1000 cut, behind up to 8.8s"},
		{"contrast, none cut", MobileRow{Clients: 1000, BehindMax: 12400}, 1.1, 0, "contrast: none cut, behind up to 12.4s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m := tt.m
			got := mobileVerdict(Row{Mobile: &m, P99VsReference: tt.ratio}, tt.maxRatio)
			if !strings.HasPrefix(got, tt.want) {
				t.Errorf("verdict %q, want it to start with %q", got, tt.want)
			}
		})
	}
	if got := mobileVerdict(Row{}, 1.2); got != "-" {
		t.Errorf("verdict without mobile figures %q, want -", got)
	}
}

// TestMobileReport: a mobile run's healthy p99 is compared with the market run of its own
// round, and the mobile table has one row per mobile run with its verdict.
func TestMobileReport(t *testing.T) {
	t.Parallel()
	market1, market2 := marketRecord("single", 1, 10, 100, 20), marketRecord("single", 2, 10, 200, 20)
	market1.Entry.Name, market2.Entry.Name = "market", "market"
	mobile1 := mobileRecord("single", "mobile", load.ConflateBehind, 1, 0, 0, 0, 110)
	mobile2 := mobileRecord("single", "mobile", load.ConflateBehind, 2, 0, 0, 0, 300)
	plain := mobileRecord("single", "mobile-plain", "", 1, 80, 95, 0, 120)
	rep := buildReport(&File{}, []*record{market1, mobile1, plain, market2, mobile2}, false, "d")
	if got := mobile1.Row.P99VsReference; got < 1.099 || got > 1.101 {
		t.Errorf("round 1: p99 vs market %v, want 110/100", got)
	}
	if got := mobile2.Row.P99VsReference; got < 1.499 || got > 1.501 {
		t.Errorf("round 2: p99 vs market %v, want 300/200 (its own round's market)", got)
	}
	md := rep.markdown()
	for _, want := range []string{
		"## Mobile clients",
		"| single #1 | mobile | 100 (20000, 19000, 20) | behind | 0 / 0 | 5000 / 300 / 2700 | 0 | 2500 / 3400 / 3800 | 2400 / 3300 / 3700 | 110.00 | 1.10x market | yes: none cut, healthy p99 1.10x <= 1.2x | ok |",
		"| single #2 | mobile |", "| no: healthy p99 1.50x > 1.2x | ok |",
		"| single #1 | mobile-plain | 100 (20000, 19000, 20) | - | 80 / 95 (eof=80) |", "contrast: 95 of 100 cut, behind up to 3.7s | ok |",
		"- latest value age (1000 samples): p50 2500ms p99 3400ms max 3800ms",
		"| single | mobile | 2 | 0 | 1.10x, 1.50x | 1.30x | no: median healthy p99 1.30x > 1.2x |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	if err := rep.check(); err != nil {
		t.Errorf("check() = %v: a p99 over its bound is a verdict, cuts without conflation the contrast", err)
	}
	cut := mobileRecord("multi", "mobile", load.ConflateBehind, 1, 0, 3, 0, 110)
	err := buildReport(&File{}, []*record{cut}, false, "d").check()
	if err == nil || !strings.Contains(err.Error(), "multi/mobile: throttled clients cut with conflation") {
		t.Errorf("check() = %v, want the conflating run with cut clients failed", err)
	}
}

// TestMobileRounds: over several rounds the healthy p99 is judged by its median, and a
// throttled client cut in any round fails the scenario's verdict.
func TestMobileRounds(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p99  [3]float64 // mobile's healthy p99 per round; market's is 100 in each
		cut  int64      // server-counted cuts in round 2
		want string
	}{
		{"median within", [3]float64{110, 150, 105}, 0, "| single | mobile | 3 | 0 | 1.10x, 1.50x, 1.05x | 1.10x | yes: none cut, median healthy p99 1.10x <= 1.2x |"},
		{"median over", [3]float64{130, 150, 105}, 0, "| single | mobile | 3 | 0 | 1.30x, 1.50x, 1.05x | 1.30x | no: median healthy p99 1.30x > 1.2x |"},
		{"cut in one round", [3]float64{100, 100, 100}, 2, "| single | mobile | 3 | 2 | 1.00x, 1.00x, 1.00x | 1.00x | no: 2 cut |"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var recs []*record
			for i, p := range tt.p99 {
				market := marketRecord("single", i+1, 10, 100, 20)
				market.Entry.Name = "market"
				var cut int64
				if i == 1 {
					cut = tt.cut
				}
				recs = append(recs, market, mobileRecord("single", "mobile", load.ConflateBehind, i+1, 0, cut, 0, p))
			}
			md := buildReport(&File{}, recs, false, "d").markdown()
			if !strings.Contains(md, tt.want) {
				t.Errorf("report lacks %q:\n%s", tt.want, md)
			}
		})
	}
}
