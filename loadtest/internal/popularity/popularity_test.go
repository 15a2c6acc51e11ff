package popularity

import (
	"reflect"
	"testing"
)

func TestPickDistinctAndDeterministic(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
	}{
		{"uniform", Config{Channels: 100, PerConn: 5, Kind: Uniform, Seed: 7}},
		{"zipf", Config{Channels: 100, PerConn: 5, Kind: Zipf, S: 1.1, Seed: 7}},
		{"zipf all channels", Config{Channels: 8, PerConn: 8, Kind: Zipf, S: 3, Seed: 1}},
		{"one channel", Config{Channels: 1, PerConn: 1, Kind: Uniform}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			for conn := range 200 {
				p := tt.cfg.Pick(conn)
				if len(p) != tt.cfg.PerConn {
					t.Fatalf("conn %d: %d picks, want %d", conn, len(p), tt.cfg.PerConn)
				}
				seen := map[int]bool{}
				for _, c := range p {
					if c < 0 || c >= tt.cfg.Channels || seen[c] {
						t.Fatalf("conn %d: bad or repeated channel %d in %v", conn, c, p)
					}
					seen[c] = true
				}
				if again := tt.cfg.Pick(conn); !reflect.DeepEqual(p, again) {
					t.Fatalf("conn %d: picks %v then %v, want the same", conn, p, again)
				}
			}
		})
	}
}

func TestDistributionShape(t *testing.T) {
	t.Parallel()
	const conns = 20000
	count := func(cfg Config) []int {
		n := make([]int, cfg.Channels)
		for c := range conns {
			for _, ch := range cfg.Pick(c) {
				n[ch]++
			}
		}
		return n
	}
	uni := count(Config{Channels: 10, PerConn: 1, Kind: Uniform, Seed: 3})
	for ch, n := range uni {
		// Expect 2000 each; 10% is over 4 standard deviations.
		if n < 1800 || n > 2200 {
			t.Errorf("uniform channel %d: %d subscribers, want about 2000", ch, n)
		}
	}
	z := count(Config{Channels: 100, PerConn: 1, Kind: Zipf, S: 1.1, Seed: 3})
	if !(z[0] > z[1] && z[1] > z[10] && z[10] > z[99]) {
		t.Errorf("zipf counts not decreasing with rank: c0=%d c1=%d c10=%d c99=%d", z[0], z[1], z[10], z[99])
	}
	if z[0] < conns/10 {
		t.Errorf("zipf top channel has %d of %d subscribers, want a heavy head", z[0], conns)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no channels", Config{Channels: 0, PerConn: 1, Kind: Uniform}},
		{"too many per conn", Config{Channels: 3, PerConn: 4, Kind: Uniform}},
		{"unknown kind", Config{Channels: 3, PerConn: 1, Kind: "pareto"}},
		{"zipf exponent", Config{Channels: 3, PerConn: 1, Kind: Zipf, S: 0.5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if err := tt.cfg.Validate(); err == nil {
				t.Errorf("Validate(%+v) = nil, want an error", tt.cfg)
			}
		})
	}
}
