package dev

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestGeneratorAlternatesTopicsAndWalksSymbols(t *testing.T) {
	syms := []string{"AAA-USD", "BBB-USD", "CCC-USD"}
	g := NewGenerator(1, "tr", "tk", syms)
	now := time.UnixMilli(1_700_000_000_123)
	wantTopics := []string{"tr", "tk", "tr", "tk", "tr", "tk", "tr", "tk"}
	wantKeys := []string{"AAA-USD", "AAA-USD", "BBB-USD", "BBB-USD", "CCC-USD", "CCC-USD", "AAA-USD", "AAA-USD"}
	for i := range wantTopics {
		r := g.Next(now)
		if r.Topic != wantTopics[i] || r.Key != wantKeys[i] {
			t.Fatalf("record %d: topic %q key %q, want %q %q", i, r.Topic, r.Key, wantTopics[i], wantKeys[i])
		}
	}
}

func TestGeneratorValues(t *testing.T) {
	g := NewGenerator(7, "trades", "tickers", nil)
	now := time.UnixMilli(1_700_000_000_123)
	sides := map[string]int{}
	for i := range 2000 {
		r := g.Next(now)
		var tick Tick
		if err := json.Unmarshal(r.Value, &tick); err != nil {
			t.Fatalf("record %d: value %s: %v", i, r.Value, err)
		}
		if tick.Symbol != r.Key {
			t.Fatalf("record %d: symbol %q, key %q", i, tick.Symbol, r.Key)
		}
		if tick.TS != now.UnixMilli() {
			t.Fatalf("record %d: ts %d, want %d", i, tick.TS, now.UnixMilli())
		}
		price := mustFloat(t, tick.Price)
		if price <= 0 || mustFloat(t, tick.Size) <= 0 {
			t.Fatalf("record %d: price %s size %s: want both above 0", i, tick.Price, tick.Size)
		}
		sides[tick.Side]++
		switch r.Topic {
		case "tickers":
			if bid, ask := mustFloat(t, tick.Bid), mustFloat(t, tick.Ask); !(bid <= price && price <= ask && bid < ask) {
				t.Fatalf("record %d: bid %s price %s ask %s out of order", i, tick.Bid, tick.Price, tick.Ask)
			}
		case "trades":
			if tick.Bid != "" || tick.Ask != "" {
				t.Fatalf("record %d: trade carries bid/ask: %s", i, r.Value)
			}
		default:
			t.Fatalf("record %d: topic %q", i, r.Topic)
		}
	}
	if len(sides) != 2 || sides["buy"] < 800 || sides["sell"] < 800 {
		t.Fatalf("sides %v: want buy and sell about evenly", sides)
	}
	if n := len(strings.Split(DefaultSymbols, ",")); n < 3 {
		t.Fatalf("DefaultSymbols has %d symbols", n)
	}
}

func TestGeneratorPriceWalksSlowly(t *testing.T) {
	g := NewGenerator(3, "trades", "tickers", []string{"BTC-USD"})
	prev := 64000.0
	moved := false
	for i := range 1000 {
		var tick Tick
		if err := json.Unmarshal(g.Next(time.Now()).Value, &tick); err != nil {
			t.Fatal(err)
		}
		p := mustFloat(t, tick.Price)
		// One step is a 0.05% standard deviation; 1% would be a 20-sigma jump.
		if d := p/prev - 1; d > 0.01 || d < -0.01 {
			t.Fatalf("step %d: price %v after %v jumps more than 1%%", i, p, prev)
		}
		if p != prev {
			moved = true
		}
		prev = p
	}
	if !moved {
		t.Fatal("price never moved")
	}
}

func TestGeneratorSameSeedSameFeed(t *testing.T) {
	a := NewGenerator(42, "trades", "tickers", nil)
	b := NewGenerator(42, "trades", "tickers", nil)
	c := NewGenerator(43, "trades", "tickers", nil)
	now := time.UnixMilli(1)
	differs := false
	for i := range 100 {
		ra, rb, rc := a.Next(now), b.Next(now), c.Next(now)
		if string(ra.Value) != string(rb.Value) {
			t.Fatalf("record %d differs with the same seed: %s vs %s", i, ra.Value, rb.Value)
		}
		if string(ra.Value) != string(rc.Value) {
			differs = true
		}
	}
	if !differs {
		t.Fatal("different seeds gave the same feed")
	}
}

func TestFormatPrice(t *testing.T) {
	tests := []struct {
		name string
		in   float64
		want string
	}{
		{name: "dear", in: 64123.456, want: "64123.46"},
		{name: "middle", in: 15.123456, want: "15.1235"},
		{name: "cheap", in: 0.1234567, want: "0.123457"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := formatPrice(tt.in); got != tt.want {
				t.Fatalf("formatPrice(%v) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func mustFloat(t *testing.T, s string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("parse %q: %v", s, err)
	}
	return f
}
