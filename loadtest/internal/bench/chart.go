package bench

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// Chart geometry (pixels).
const (
	chartW  = 900
	panelH  = 330
	marginL = 70
	marginR = 230
	marginT = 40
	marginB = 40
)

var (
	variantColor = map[string]string{"single": "#1f77b4", "multi": "#ff7f0e"}
	dashes       = []string{"", "6,3", "2,3", "10,3,2,3", "1,1", "12,4"}
)

func colorOf(variant string) string {
	if c, ok := variantColor[variant]; ok {
		return c
	}
	return "#2ca02c"
}

// chart draws two panels: latency percentiles per variant and scenario (log scale), and
// delivered messages per second per variant and scenario (bars).
func chart(rep *report) string {
	var b strings.Builder
	h := 2*panelH + 20
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" font-family="sans-serif" font-size="12">`+"\n", chartW, h)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", chartW, h)
	latencyPanel(&b, rep, 0)
	throughputPanel(&b, rep, panelH+20)
	b.WriteString("</svg>\n")
	return b.String()
}

func latencyPanel(b *strings.Builder, rep *report, y0 int) {
	labels := []string{"p50", "p90", "p99", "p99.9", "max"}
	type series struct {
		name, color, dash string
		v                 []float64
	}
	var ss []series
	scenarioDash := map[string]string{}
	for _, r := range rep.shown() {
		w := r.Row
		if w.P50 <= 0 {
			continue
		}
		d, ok := scenarioDash[w.Scenario]
		if !ok {
			d = dashes[len(scenarioDash)%len(dashes)]
			scenarioDash[w.Scenario] = d
		}
		ss = append(ss, series{w.Variant + " " + w.Scenario, colorOf(w.Variant), d, []float64{w.P50, w.P90, w.P99, w.P999, w.Max}})
	}
	lo, hi := 0.1, 1.0
	for _, s := range ss {
		for _, v := range s.v {
			hi = math.Max(hi, v)
			if v > 0 {
				lo = math.Min(lo, v)
			}
		}
	}
	lo = math.Pow(10, math.Floor(math.Log10(lo)))
	hi = math.Pow(10, math.Ceil(math.Log10(hi)))
	pw, ph := chartW-marginL-marginR, panelH-marginT-marginB
	x := func(i int) float64 { return float64(marginL) + float64(i)*float64(pw)/float64(len(labels)-1) }
	y := func(v float64) float64 {
		v = math.Max(v, lo)
		return float64(y0+marginT) + float64(ph)*(1-(math.Log10(v)-math.Log10(lo))/(math.Log10(hi)-math.Log10(lo)))
	}
	fmt.Fprintf(b, `<text x="%d" y="%d" font-size="15" font-weight="bold">Delivery latency, produce to receipt (ms, log scale)</text>`+"\n", marginL, y0+22)
	for d := lo; d <= hi*1.0001; d *= 10 {
		fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%.1f" y2="%.1f" stroke="#ddd"/>`+"\n", marginL, marginL+pw, y(d), y(d))
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end">%g</text>`+"\n", marginL-6, y(d)+4, d)
	}
	for i, l := range labels {
		fmt.Fprintf(b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", x(i), y0+panelH-marginB+18, l)
	}
	for k, s := range ss {
		var pts []string
		for i, v := range s.v {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(i), y(v)))
		}
		fmt.Fprintf(b, `<polyline fill="none" stroke="%s" stroke-width="2" stroke-dasharray="%s" points="%s"/>`+"\n", s.color, s.dash, strings.Join(pts, " "))
		for i, v := range s.v {
			fmt.Fprintf(b, `<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>`+"\n", x(i), y(v), s.color)
		}
		ly := y0 + marginT + 16*k
		lx := chartW - marginR + 15
		fmt.Fprintf(b, `<line x1="%d" x2="%d" y1="%d" y2="%d" stroke="%s" stroke-width="2" stroke-dasharray="%s"/>`+"\n", lx, lx+28, ly, ly, s.color, s.dash)
		fmt.Fprintf(b, `<text x="%d" y="%d">%s</text>`+"\n", lx+34, ly+4, html.EscapeString(s.name))
	}
	if len(ss) == 0 {
		fmt.Fprintf(b, `<text x="%d" y="%d">no latency figures</text>`+"\n", marginL+20, y0+marginT+30)
	}
}

func throughputPanel(b *strings.Builder, rep *report, y0 int) {
	type bar struct {
		scenario, variant string
		v                 float64
	}
	var bars []bar
	var scenarios []string
	seen := map[string]bool{}
	for _, r := range rep.shown() {
		v := r.Row.MsgsPerSec
		if r.Row.Kind == KindFanout {
			// Fan-out shows its peak (overload included); the table has the sustained rate.
			v = r.Row.PeakMsgsPerSec
		}
		if v <= 0 {
			continue
		}
		bars = append(bars, bar{r.Row.Scenario, r.Row.Variant, v})
		if !seen[r.Row.Scenario] {
			seen[r.Row.Scenario] = true
			scenarios = append(scenarios, r.Row.Scenario)
		}
	}
	fmt.Fprintf(b, `<text x="%d" y="%d" font-size="15" font-weight="bold">Messages delivered per second (fan-out: peak step, overload included)</text>`+"\n", marginL, y0+22)
	if len(bars) == 0 {
		fmt.Fprintf(b, `<text x="%d" y="%d">no throughput figures</text>`+"\n", marginL+20, y0+marginT+30)
		return
	}
	hi := 0.0
	for _, br := range bars {
		hi = math.Max(hi, br.v)
	}
	pw := chartW - marginL - marginR
	left := marginL + 90
	pw -= 90
	rowH := float64(panelH-marginT-marginB) / float64(len(scenarios))
	barH := math.Min(14, rowH/3)
	for i, sc := range scenarios {
		yy := float64(y0+marginT) + rowH*float64(i)
		fmt.Fprintf(b, `<text x="%d" y="%.1f" text-anchor="end">%s</text>`+"\n", left-6, yy+rowH/2+4, html.EscapeString(sc))
		k := 0
		for _, br := range bars {
			if br.scenario != sc {
				continue
			}
			w := float64(pw) * br.v / hi
			by := yy + rowH/2 - barH + float64(k)*barH
			fmt.Fprintf(b, `<rect x="%d" y="%.1f" width="%.1f" height="%.1f" fill="%s"/>`+"\n", left, by, w, barH-1, colorOf(br.variant))
			fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="11">%s %s</text>`+"\n", float64(left)+w+4, by+barH-3, br.variant, num(br.v))
			k++
		}
	}
	lx := chartW - marginR + 15
	k := 0
	for _, v := range []string{"single", "multi"} {
		fmt.Fprintf(b, `<rect x="%d" y="%d" width="20" height="10" fill="%s"/><text x="%d" y="%d">%s</text>`+"\n", lx, y0+marginT+16*k-8, colorOf(v), lx+26, y0+marginT+16*k+1, v)
		k++
	}
}
