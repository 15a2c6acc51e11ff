package bench

import (
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/adred-codev/ws_poc/loadtest/internal/load"
)

const testSecret = "0123456789abcdef0123456789abcdef01234567" // 40 bytes

// authFile is a scenario file with a variant "single-auth" whose server_env and load_auth
// are the given JSON objects' fields, and scenarios storm and failover.
func authFile(t *testing.T, serverEnv, loadAuth, scenarios string) string {
	t.Helper()
	return writeTemp(t, "scenarios.json", `{"topic": "trades",
		"server_env": {"WS_LOG_LEVEL": "warn"},
		"variants": [{"name": "single", "binary": "ws-single", "cores": 1},
			{"name": "single-auth", "binary": "ws-single", "cores": 1, "against": "single", "scenarios": `+scenarios+`,
			 "server_env": {`+serverEnv+`}, "load_auth": {`+loadAuth+`}}],
		"scenarios": [{"name": "storm", "kind": "storm", "load": {}}, {"name": "failover-kill", "kind": "failover", "load": {}}]}`)
}

func TestReadFileLoadAuth(t *testing.T) {
	t.Parallel()
	const (
		env  = `"WS_AUTH": "required", "WS_JWT_HMAC_SECRET": "` + testSecret + `", "WS_JWT_ISSUER": "bench", "WS_JWT_AUDIENCE": "ws_poc"`
		auth = `"secret": "` + testSecret + `", "issuer": "bench", "audience": "ws_poc", "channels": ["trades:*"], "ttl": "1h"`
	)
	tests := []struct {
		name                      string
		env, auth, scenarios, err string
	}{
		{name: "valid", env: env, auth: auth, scenarios: `["storm"]`},
		{name: "valid without the secret in server_env (a secret file)", env: `"WS_AUTH": "optional"`, auth: auth, scenarios: `["storm"]`},
		{name: "short secret", env: `"WS_AUTH": "required"`, auth: `"secret": "short", "issuer": "bench", "audience": "ws_poc", "channels": ["trades:*"], "ttl": "1h"`, scenarios: `["storm"]`, err: "secret: 5 bytes"},
		{name: "secret differs from the server's", env: strings.Replace(env, testSecret, testSecret[1:]+"x", 1), auth: auth, scenarios: `["storm"]`, err: "secret differs from server_env WS_JWT_HMAC_SECRET"},
		{name: "audience differs from the server's", env: strings.Replace(env, `"ws_poc"`, `"other"`, 1), auth: auth, scenarios: `["storm"]`, err: "audience differs"},
		{name: "server without auth", env: `"WS_JWT_ISSUER": "bench"`, auth: auth, scenarios: `["storm"]`, err: `WS_AUTH ""`},
		{name: "no ttl", env: env, auth: strings.Replace(auth, `"1h"`, `"0s"`, 1), scenarios: `["storm"]`, err: "ttl 0s"},
		{name: "bad pattern", env: env, auth: strings.Replace(auth, `"trades:*"`, `"trades*"`, 1), scenarios: `["storm"]`, err: "ws.subscribe"},
		{name: "no issuer", env: `"WS_AUTH": "required"`, auth: strings.Replace(auth, `"bench"`, `""`, 1), scenarios: `["storm"]`, err: "iss: empty"},
		{name: "runs a failover scenario", env: env, auth: auth, scenarios: `[]`, err: "failover-kill"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f, err := readFile(authFile(t, tt.env, tt.auth, tt.scenarios))
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), "single-auth: load_auth") {
					t.Fatalf("readFile() = %v, want an error naming the variant's load_auth and %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			a := f.Variants[1].LoadAuth
			if a == nil || a.Secret != testSecret || a.Issuer != "bench" || a.Audience != "ws_poc" ||
				len(a.Channels) != 1 || a.Channels[0] != "trades:*" || a.TTL.D() != time.Hour {
				t.Errorf("load_auth %+v", a)
			}
			if f.Variants[0].LoadAuth != nil {
				t.Errorf("variant single has load_auth %+v, want none", f.Variants[0].LoadAuth)
			}
		})
	}
}

// TestAuthorize: a variant with load_auth gives each scenario run an HS256 token with its
// claims, which allows the run's channels; a variant without gives none.
func TestAuthorize(t *testing.T) {
	t.Parallel()
	now := time.Unix(1767225600, 0)
	v := Variant{Name: "single-auth", LoadAuth: &LoadAuth{Secret: testSecret, Issuer: "bench", Audience: "ws_poc",
		Channels: []string{"trades:b-*"}, TTL: load.Duration(time.Hour)}}
	sc := load.Scenario{Topic: "trades", ChannelPrefix: "b-", Channels: 3}
	if err := v.authorize(&sc, now); err != nil {
		t.Fatal(err)
	}
	var claims jwt.MapClaims
	tok, err := jwt.ParseWithClaims(sc.Token, &claims, func(*jwt.Token) (any, error) { return []byte(testSecret), nil },
		jwt.WithValidMethods([]string{"HS256"}), jwt.WithTimeFunc(func() time.Time { return now }),
		jwt.WithIssuer("bench"), jwt.WithAudience("ws_poc"), jwt.WithExpirationRequired())
	if err != nil || !tok.Valid {
		t.Fatalf("token %q does not verify: %v", sc.Token, err)
	}
	ws, _ := claims["ws"].(map[string]any)
	if claims["sub"] != defaultAuthSubject || claims["exp"] != float64(now.Add(time.Hour).Unix()) || ws == nil || len(ws["subscribe"].([]any)) != 1 {
		t.Errorf("claims %v, want sub %s, exp now+1h, ws.subscribe [trades:b-*]", claims, defaultAuthSubject)
	}

	other := load.Scenario{Topic: "trades", ChannelPrefix: "lt-", Channels: 3}
	if err := v.authorize(&other, now); err == nil || !strings.Contains(err.Error(), "trades:lt-0") {
		t.Errorf("authorize() = %v, want it to name the channel the token does not allow", err)
	}
	plain := load.Scenario{Topic: "trades", ChannelPrefix: "b-", Channels: 3}
	if err := (Variant{Name: "single"}).authorize(&plain, now); err != nil || plain.Token != "" {
		t.Errorf("a variant without load_auth: err %v, token %q; want none", err, plain.Token)
	}
}

// stormRecord is a storm run with the given handshakes/s and CPU per message.
func stormRecord(variant string, repeat int, hs, cpu float64) *record {
	r := marketRecord(variant, repeat, cpu, 10, 20)
	r.Entry = Entry{Name: "storm", Kind: KindStorm}
	r.Result.Connections.HandshakesPerSec = hs
	r.Result.Connections.AllSubscribedSeconds = 10 / hs
	// The load steps cost what the whole run does: the verdict reads this figure.
	r.Result.Steps = []load.StepFigures{{ServerPerSec: 100, Seconds: 10, ServerCPUUs: cpu}}
	return r
}

// TestAuthReport: an auth variant's section gives handshakes/s and CPU per message auth on
// over off (medians, with the paired range), the figures themselves and whether they stayed
// within issue 15's bounds; its general ratio table is on / off too.
func TestAuthReport(t *testing.T) {
	t.Parallel()
	auth := &LoadAuth{Secret: testSecret, Issuer: "bench", Audience: "ws_poc", Channels: []string{"trades:*"}, TTL: load.Duration(time.Hour)}
	f := &File{Variants: []Variant{
		{Name: "single", Cores: 1}, {Name: "multi", Cores: 2},
		{Name: "single-auth", Cores: 1, Against: "single", LoadAuth: auth},
		{Name: "multi-auth", Cores: 2, Against: "multi", LoadAuth: auth},
	}}
	// single-auth: handshakes 900, 1000, 950 against 1000, 1000, 1000 (median 0.95x);
	// CPU 10.2, 10.1, 10.3 against 10 (1.02x, range 1.01-1.03): within the bounds.
	// multi-auth: handshakes 700 against 1000 (0.70x), CPU 10.5 against 10 (1.05x): not.
	var records []*record
	for k, on := range []struct{ hs, cpu float64 }{{900, 10.2}, {1000, 10.1}, {950, 10.3}} {
		records = append(records, stormRecord("single", k+1, 1000, 10), stormRecord("multi", k+1, 1000, 10),
			stormRecord("single-auth", k+1, on.hs, on.cpu), stormRecord("multi-auth", k+1, 700, 10.5))
	}
	rep := buildReport(f, records, false, "d")
	md := rep.markdown()
	for _, want := range []string{
		"## single-auth / single: auth on / off",
		"| scenario | handshakes/s auth on/off | all subscribed after on/off | CPU µs/msg on/off |",
		"| storm | 0.95x | 1.05x | 1.02x (1.01-1.03) | 1.02x | 950; 1000 | 10.20; 10.00 | yes |",
		"## multi-auth / multi: auth on / off",
		"| storm | 0.70x | 1.43x | 1.05x (1.05-1.05) | 1.05x | 700; 1000 | 10.50; 10.00 | no: handshakes/s -30%, CPU/msg +5.0% |",
		"Medians of 3 runs per variant",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q:\n%s", want, md)
		}
	}
	// The general ratio table below the auth section is on / off as well: CPU 1.02x.
	_, after, _ := strings.Cut(md, "## single-auth / single: auth on / off")
	if !strings.Contains(after, "| storm | - | 1.00x | - | 1.02x (1.01-1.03) / 1.02x |") {
		t.Errorf("single-auth's ratio table is not on / off:\n%s", after)
	}
	if strings.Contains(md, "## single / single-auth") || strings.Contains(md, "history held") {
		t.Errorf("an auth variant got the history-off tables (off / on, history held):\n%s", md)
	}
	if s := rep.authSections(); !strings.Contains(s, "## single-auth / single") || !strings.Contains(s, "## multi-auth / multi") {
		t.Errorf("auth sections for stdout: %q", s)
	}
}
