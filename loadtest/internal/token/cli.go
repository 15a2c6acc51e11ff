package token

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// ErrUsage marks a mistake in the command line or its environment (a missing or short
// secret, a bad pattern): errors.Is(err, ErrUsage) holds for every such error of Run, so
// the caller can exit 2 for it as for an unknown command.
var ErrUsage = errors.New("usage error")

// usageError is an ErrUsage with its own message.
type usageError struct{ msg string }

func (e usageError) Error() string        { return e.msg }
func (e usageError) Is(target error) bool { return target == ErrUsage }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// maxSecretFile bounds --secret-file as the servers bound WS_JWT_HMAC_SECRET_FILE.
const maxSecretFile = 4096

// Run is `loadtest token`: it prints one HS256 development token and a newline.
func Run(_ context.Context, args []string, stdout, stderr io.Writer) error {
	return run(args, os.Getenv, time.Now, stdout, stderr)
}

// run is Run with the environment and the clock injected.
func run(args []string, getenv func(string) string, now func() time.Time, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("token", flag.ContinueOnError)
	fs.SetOutput(stderr)
	// The servers trim spaces around every WS_* value; so do the defaults here.
	env := func(name string) string { return strings.TrimSpace(getenv(name)) }
	secret := fs.String("secret", env("WS_JWT_HMAC_SECRET"), "HMAC secret, at least 32 bytes (default $WS_JWT_HMAC_SECRET)")
	secretFile := fs.String("secret-file", "", "file holding the HMAC secret (its trailing newline is dropped, as the servers do with WS_JWT_HMAC_SECRET_FILE)")
	issuer := fs.String("issuer", env("WS_JWT_ISSUER"), "iss claim (default $WS_JWT_ISSUER)")
	audience := fs.String("audience", env("WS_JWT_AUDIENCE"), "aud claim (default $WS_JWT_AUDIENCE)")
	sub := fs.String("sub", "dev", "sub claim")
	channels := fs.String("channels", "", "comma-separated patterns for ws.subscribe: <topic>:<key>, <topic>:* or <topic>:<prefix>*")
	maxSubs := fs.Int("max-subscriptions", 0, "ws.max_subscriptions, below the server's WS_MAX_SUBSCRIPTIONS; 0 leaves it out")
	ttl := fs.Duration("ttl", time.Hour, "lifetime: exp = now + ttl, iat = now")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: loadtest token [flags]")
		fmt.Fprintln(stderr, "\nPrints an HS256 token for a server with WS_AUTH=optional or required (development only:")
		fmt.Fprintln(stderr, "whoever holds the secret can mint any grant). Flags default to the server's variables.")
		fmt.Fprintln(stderr)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	key := *secret
	if *secretFile != "" {
		if explicit["secret"] {
			return usagef("--secret and --secret-file: give only one")
		}
		var err error
		if key, err = readSecretFile(*secretFile); err != nil {
			return err
		}
	}
	c := Claims{Issuer: *issuer, Audience: *audience, Subject: *sub, MaxSubscriptions: *maxSubs}
	if *channels != "" {
		for _, p := range strings.Split(*channels, ",") {
			c.Channels = append(c.Channels, strings.TrimSpace(p))
		}
	}
	// Never print the secret, only its length.
	switch {
	case key == "":
		return usagef("--secret: empty (set it, --secret-file or WS_JWT_HMAC_SECRET)")
	case len(key) < MinSecretBytes:
		return usagef("--secret: %d bytes, the servers need at least %d", len(key), MinSecretBytes)
	case c.Issuer == "":
		return usagef("--issuer: empty (set it or WS_JWT_ISSUER)")
	case c.Audience == "":
		return usagef("--audience: empty (set it or WS_JWT_AUDIENCE)")
	case c.Subject == "":
		return usagef("--sub: empty")
	case *ttl <= 0:
		return usagef("--ttl %v: must be positive", *ttl)
	case c.MaxSubscriptions < 0:
		return usagef("--max-subscriptions %d: must be 0 (left out) or more", c.MaxSubscriptions)
	}
	for _, p := range c.Channels {
		if err := ValidatePattern(p); err != nil {
			return usagef("--channels: %v", err)
		}
	}
	t := now()
	c.IssuedAt, c.ExpiresAt = t, t.Add(*ttl)
	tok, err := Mint(c, Signer{Alg: "HS256", Key: []byte(key)})
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}

// readSecretFile reads a secret file as the servers read WS_JWT_HMAC_SECRET_FILE: at most
// 4096 bytes, without its trailing newline.
func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", usagef("--secret-file: %v", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	switch {
	case err != nil:
		return "", usagef("--secret-file %s: %v", path, err)
	case len(b) > maxSecretFile:
		return "", usagef("--secret-file %s: longer than %d bytes", path, maxSecretFile)
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}
