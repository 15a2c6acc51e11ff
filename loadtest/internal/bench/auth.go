package bench

// Auth variants (issue 15): a variant whose load authenticates. The bench mints one HS256
// token per scenario run from the variant's load_auth, every connection sends it as its
// first message with its subscribe right behind it, and the report compares the variant
// with the same binary without auth (its Against): handshakes/s and CPU per message, auth
// on / off.

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/adred-codev/ws_poc/loadtest/internal/load"
	"github.com/adred-codev/ws_poc/loadtest/internal/token"
)

// LoadAuth is how a variant's load authenticates: the claims of the token the bench mints
// (HS256) for each scenario run.
type LoadAuth struct {
	// Secret is the HMAC key: the server's WS_JWT_HMAC_SECRET, at least token.MinSecretBytes.
	Secret string `json:"secret"`
	// Issuer (iss) and Audience (aud) are the server's WS_JWT_ISSUER and WS_JWT_AUDIENCE.
	Issuer   string `json:"issuer"`
	Audience string `json:"audience"`
	// Subject is sub; default defaultAuthSubject.
	Subject string `json:"subject,omitempty"`
	// Channels are the token's ws.subscribe patterns; they must allow every channel of
	// the load (e.g. "trades:*").
	Channels []string `json:"channels"`
	// TTL is exp minus the time of minting; it must outlast the scenario run (the server
	// closes a connection at exp plus its WS_AUTH_EXPIRY_GRACE).
	TTL load.Duration `json:"ttl"`
}

// defaultAuthSubject is the bench token's sub when load_auth names none.
const defaultAuthSubject = "loadtest-bench"

// Issue 15's bounds on what auth may cost, auth on against off within one bench run: the
// auth table says whether each scenario stayed within them.
const (
	authMaxHandshakeDrift = 0.20 // handshakes/s within 20%
	authMaxCPUDrift       = 0.03 // CPU per message within 3%
)

// claims are the claims of a token minted at now.
func (a *LoadAuth) claims(now time.Time) token.Claims {
	sub := a.Subject
	if sub == "" {
		sub = defaultAuthSubject
	}
	return token.Claims{
		Issuer: a.Issuer, Audience: a.Audience, Subject: sub,
		IssuedAt: now, ExpiresAt: now.Add(a.TTL.D()), Channels: a.Channels,
	}
}

// validate checks load_auth against the variant: a token the variant's server would
// accept, for a server with auth on, and no failover scenario (its resumes on B send no
// token).
func (a *LoadAuth) validate(f *File, v Variant) error {
	if len(a.Secret) < token.MinSecretBytes {
		return fmt.Errorf("secret: %d bytes, need at least %d", len(a.Secret), token.MinSecretBytes)
	}
	if a.TTL <= 0 {
		return fmt.Errorf("ttl %s: need > 0", a.TTL.D())
	}
	if len(a.Channels) == 0 {
		return errors.New("channels: empty (the token would allow no subscribe)")
	}
	if err := a.claims(time.Now()).Validate(); err != nil {
		return err
	}
	env := map[string]string{}
	for k, val := range f.ServerEnv {
		env[k] = val
	}
	for k, val := range v.ServerEnv {
		env[k] = val
	}
	if mode := env["WS_AUTH"]; mode != "optional" && mode != "required" {
		return fmt.Errorf("server_env WS_AUTH %q: a token needs optional or required", mode)
	}
	for _, c := range []struct{ field, env, want string }{
		{"secret", "WS_JWT_HMAC_SECRET", a.Secret}, {"issuer", "WS_JWT_ISSUER", a.Issuer}, {"audience", "WS_JWT_AUDIENCE", a.Audience},
	} {
		if got, ok := env[c.env]; ok && got != c.want {
			return fmt.Errorf("%s differs from server_env %s: the server would refuse the token", c.field, c.env)
		}
	}
	for _, e := range f.Scenarios {
		if e.Kind == KindFailover && v.runs(e) {
			return fmt.Errorf("scenario %s: a failover run cannot authenticate (list the variant's scenarios)", e.Name)
		}
	}
	return nil
}

// authorize gives sc, a scenario run of variant v, the variant's token (minted at now),
// when v has load_auth. sc's channels must be named (its topic set) already.
func (v Variant) authorize(sc *load.Scenario, now time.Time) error {
	a := v.LoadAuth
	if a == nil {
		return nil
	}
	for i := range sc.Channels {
		if ch := sc.ChannelName(i); !token.Allows(a.Channels, ch) {
			return fmt.Errorf("load_auth: channels %q do not allow %s: the server would answer forbidden", a.Channels, ch)
		}
	}
	tok, err := token.Mint(a.claims(now), token.Signer{Alg: "HS256", Key: []byte(a.Secret)})
	if err != nil {
		return fmt.Errorf("load_auth: %w", err)
	}
	sc.Token = tok
	return nil
}

// authTable compares variant on (its load authenticates) with off (the same server without
// auth), scenario by scenario: handshakes/s and CPU per message, on / off (medians).
func (rep *report) authTable(on, off string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Every connection of %s sends an HS256 token in its first message, its subscribe right behind it without waiting for the reply; %s's send the subscribe alone. Handshakes/s counts a connection once both replies came. Issue 15's bounds: handshakes/s at most %.0f%% lower, CPU per message over the load steps at most %.0f%% higher.", on, off, authMaxHandshakeDrift*100, authMaxCPUDrift*100)
	if n := rep.repeats(); n > 1 {
		fmt.Fprintf(&b, " Medians of %d runs per variant; CPU per message also gives the lowest and highest ratio of the runs paired by round.", n)
	}
	b.WriteString("\n\n| scenario | handshakes/s auth on/off | all subscribed after on/off | CPU µs/msg on/off | CPU µs/msg, load steps, on/off | handshakes/s on; off | CPU µs/msg on; off | within the bounds |\n|---|---:|---:|---:|---:|---:|---:|---|\n")
	hs := func(w Row) float64 { return w.HandshakesPerSec }
	cpu := func(w Row) float64 { return w.CPUPerMsgUs }
	loadCPU := func(w Row) float64 { return w.LoadCPUPerMsgUs }
	for _, name := range rep.scenarios() {
		n, d := rep.runs(on, name), rep.runs(off, name)
		if len(n) == 0 || len(d) == 0 {
			continue
		}
		med := func(f func(Row) float64) string { return ratio(median(n, f), median(d, f)) }
		cpuRatio := med(cpu)
		if lo, hi, ok := rep.pairRange(on, off, name, cpu); ok {
			cpuRatio += fmt.Sprintf(" (%.2f-%.2f)", lo, hi)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s; %s | %.2f; %.2f | %s |\n", name,
			med(hs), med(func(w Row) float64 { return w.AllSubscribedSeconds }), cpuRatio,
			med(loadCPU),
			num(median(n, hs)), num(median(d, hs)), median(n, cpu), median(d, cpu),
			authVerdict(median(n, hs), median(d, hs), median(n, loadCPU), median(d, loadCPU)))
	}
	return b.String()
}

// authVerdict says whether auth on stayed within issue 15's bounds of auth off: at most 20%
// fewer handshakes/s, at most 3% more CPU per message over the load steps (the delivery path;
// the whole run's figure, connect phase included, is in the table beside it). Bounds on a
// cost: auth faster than off is within them (run-to-run noise), and shows in the ratios.
func authVerdict(hsOn, hsOff, cpuOn, cpuOff float64) string {
	if hsOn == 0 || hsOff == 0 || cpuOn == 0 || cpuOff == 0 {
		return "-"
	}
	var out []string
	if d := hsOn/hsOff - 1; d < -authMaxHandshakeDrift {
		out = append(out, fmt.Sprintf("handshakes/s %+.0f%%", d*100))
	}
	if d := cpuOn/cpuOff - 1; d > authMaxCPUDrift {
		out = append(out, fmt.Sprintf("CPU/msg %+.1f%%", d*100))
	}
	if len(out) == 0 {
		return "yes"
	}
	return "no: " + strings.Join(out, ", ")
}

// authSection is the auth on / off section of variant v, which has load_auth and an Against.
func (rep *report) authSection(v Variant) string {
	return fmt.Sprintf("\n## %s / %s: auth on / off\n\n", v.Name, v.Against) + rep.authTable(v.Name, v.Against)
}

// authSections are the auth on / off sections of every variant whose load authenticates.
func (rep *report) authSections() string {
	var b strings.Builder
	for _, v := range rep.file.Variants {
		if v.LoadAuth != nil && v.Against != "" {
			b.WriteString(rep.authSection(v))
		}
	}
	return b.String()
}
