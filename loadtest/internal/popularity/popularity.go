// Package popularity picks the channels each simulated client subscribes to, uniformly or
// with Zipf popularity (a few channels have most subscribers, as in real market data).
// Picks are deterministic per (seed, connection index) so worker processes that each own a
// slice of the connections agree with one another and with a rerun.
package popularity

import (
	"fmt"
	"math/rand/v2"
)

// Distribution names.
const (
	Uniform = "uniform"
	Zipf    = "zipf"
)

// Config describes how subscriptions spread over channels.
type Config struct {
	// Channels is the number of channels, named by index 0..Channels-1. At least 1.
	Channels int
	// PerConn is how many distinct channels each connection subscribes to (1..Channels).
	PerConn int
	// Kind is Uniform or Zipf.
	Kind string
	// S is the Zipf exponent (> 1); 1.1 when zero. Channel 0 is the most popular.
	S float64
	// Seed makes picks reproducible.
	Seed uint64
}

// Validate names the first bad setting.
func (c Config) Validate() error {
	switch {
	case c.Channels < 1:
		return fmt.Errorf("popularity: channels %d: need at least 1", c.Channels)
	case c.PerConn < 1 || c.PerConn > c.Channels:
		return fmt.Errorf("popularity: subscriptions per connection %d: need 1..%d", c.PerConn, c.Channels)
	case c.Kind != Uniform && c.Kind != Zipf:
		return fmt.Errorf("popularity: distribution %q: want %s or %s", c.Kind, Uniform, Zipf)
	case c.Kind == Zipf && c.S != 0 && c.S <= 1:
		return fmt.Errorf("popularity: zipf exponent %g: need > 1", c.S)
	}
	return nil
}

// Pick returns the channel indexes connection conn subscribes to: PerConn distinct indexes,
// in the order drawn.
func (c Config) Pick(conn int) []int {
	r := rand.New(rand.NewPCG(c.Seed, uint64(conn)))
	draw := func() int { return r.IntN(c.Channels) }
	if c.Kind == Zipf {
		s := c.S
		if s == 0 {
			s = 1.1
		}
		z := rand.NewZipf(r, s, 1, uint64(c.Channels-1))
		draw = func() int { return int(z.Uint64()) }
	}
	picked := make([]int, 0, c.PerConn)
	seen := make(map[int]bool, c.PerConn)
	// With a steep Zipf and PerConn close to Channels, distinct draws get rare; after many
	// repeats fall back to the lowest unused index so Pick always ends.
	for tries := 0; len(picked) < c.PerConn; tries++ {
		i := draw()
		if tries > 64*c.PerConn {
			for i = 0; seen[i]; i++ {
			}
		}
		if !seen[i] {
			seen[i] = true
			picked = append(picked, i)
		}
	}
	return picked
}
