package dev

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// DefaultSymbols are the instruments of the synthetic feed, comma-separated; they are the
// record keys.
const DefaultSymbols = "BTC-USD,ETH-USD,SOL-USD,XRP-USD,DOGE-USD,ADA-USD,AVAX-USD,LINK-USD"

// Record is one synthetic Kafka record.
type Record struct {
	Topic string
	Key   string
	Value []byte
}

// Tick is the JSON value of a synthetic record. Prices and sizes are decimal strings, as
// exchanges send them, so no client loses precision to float parsing.
type Tick struct {
	Symbol string `json:"symbol"`
	Price  string `json:"price"`
	Size   string `json:"size"`
	Side   string `json:"side"`
	// Bid and Ask are set on ticker records only.
	Bid string `json:"bid,omitempty"`
	Ask string `json:"ask,omitempty"`
	// TS is the producer's clock in milliseconds since the Unix epoch, so a client can
	// measure end-to-end latency.
	TS int64 `json:"ts"`
}

// startPrice seeds the walk near real prices for the well-known symbols; others start at 100.
func startPrice(symbol string) float64 {
	switch symbol {
	case "BTC-USD":
		return 64000
	case "ETH-USD":
		return 3200
	case "SOL-USD":
		return 150
	case "XRP-USD":
		return 0.6
	case "DOGE-USD":
		return 0.15
	case "ADA-USD":
		return 0.45
	case "AVAX-USD":
		return 35
	case "LINK-USD":
		return 15
	default:
		return 100
	}
}

// stepSigma is the standard deviation of one random-walk step, relative to the price.
const stepSigma = 0.0005

// Generator produces an endless feed of trades and tickers: it walks through the symbols
// and alternates the trades and tickers topics, so both topics and every symbol get traffic
// at any rate. It is not safe for concurrent use.
type Generator struct {
	rng         *rand.Rand
	trades      string
	tickers     string
	symbols     []string
	prices      []float64
	next        int
	tickersTurn bool
}

// NewGenerator returns a generator over symbols (DefaultSymbols when empty) writing to the
// given topics. The same seed gives the same sequence of prices, sizes and sides.
func NewGenerator(seed uint64, trades, tickers string, symbols []string) *Generator {
	if len(symbols) == 0 {
		symbols = strings.Split(DefaultSymbols, ",")
	}
	prices := make([]float64, len(symbols))
	for i, s := range symbols {
		prices[i] = startPrice(s)
	}
	return &Generator{
		rng:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		trades:  trades,
		tickers: tickers,
		symbols: append([]string(nil), symbols...),
		prices:  prices,
	}
}

// Next returns the next record, stamped with now.
func (g *Generator) Next(now time.Time) Record {
	i := g.next
	topic := g.trades
	if g.tickersTurn {
		topic = g.tickers
		// Advance the symbol after each trade/ticker pair.
		g.next = (g.next + 1) % len(g.symbols)
	}
	g.tickersTurn = !g.tickersTurn

	// Multiplicative walk: the price never crosses zero and moves by a similar fraction
	// at every scale.
	g.prices[i] *= math.Exp(g.rng.NormFloat64() * stepSigma)
	price := g.prices[i]
	side := "buy"
	if g.rng.IntN(2) == 1 {
		side = "sell"
	}
	t := Tick{
		Symbol: g.symbols[i],
		Price:  formatPrice(price),
		Size:   strconv.FormatFloat(0.001+g.rng.ExpFloat64()*0.5, 'f', 4, 64),
		Side:   side,
		TS:     now.UnixMilli(),
	}
	if topic == g.tickers {
		spread := price * 0.0001
		t.Bid = formatPrice(price - spread/2)
		t.Ask = formatPrice(price + spread/2)
	}
	value, err := json.Marshal(t)
	if err != nil {
		// Tick holds only strings and an int64; Marshal cannot fail on it.
		panic("dev: marshal tick: " + err.Error())
	}
	return Record{Topic: topic, Key: g.symbols[i], Value: value}
}

// formatPrice keeps about six significant digits, enough for cheap and dear symbols alike.
func formatPrice(p float64) string {
	decimals := 2
	if p < 1 {
		decimals = 6
	} else if p < 100 {
		decimals = 4
	}
	return strconv.FormatFloat(p, 'f', decimals, 64)
}
