// This file is duplicated from ws-multi (internal/auth/bench_test.go) on purpose: the
// variants share token verification and channel permissions.

package auth

import (
	"context"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// BenchmarkVerifyHS256 is what one token costs the goroutine that verifies it (a reader, or
// the HTTP handler for a handshake token): parse, HMAC, claims, patterns.
func BenchmarkVerifyHS256(b *testing.B) {
	v := newHMACVerifier(b)
	tok := mint(b, jwt.SigningMethodHS256, testSecret, validClaims(time.Now()), nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAllows is a subscribe's check of one channel against a token's patterns.
func BenchmarkAllows(b *testing.B) {
	p, err := ParsePatterns([]string{"trades:BTC*", "book:*", "orders:user-42", "tickers:ETH-USD"})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if !p.Allows("trades:BTC-USD") || p.Allows("trades:ETH-USD") {
			b.Fatal("wrong answer")
		}
	}
}
