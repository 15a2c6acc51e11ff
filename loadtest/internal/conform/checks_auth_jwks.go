package conform

// Checks of tokens verified against the server's JWK Set (WS_JWT_JWKS_URL).

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"

	"github.com/adred-codev/ws_poc/loadtest/internal/token"
)

// jwksSigner is the signer of the key behind the server's JWK Set.
func (s *suite) jwksSigner() (jwksKey, token.Signer, error) {
	k, err := loadJWKSKey(s.cfg.Auth.JWKSKeyFile)
	if err != nil {
		return jwksKey{}, token.Signer{}, err
	}
	return k, token.Signer{Alg: k.alg, Key: k.key, KeyID: s.cfg.Auth.JWKSKeyID}, nil
}

func checkJWKSValid(ctx context.Context, s *suite) (string, error) {
	k, sg, err := s.jwksSigner()
	if err != nil {
		return "", err
	}
	key, err := s.privateKey("jwks")
	if err != nil {
		return "", err
	}
	cl := s.claims(s.channel(key))
	tok, err := token.Mint(cl, sg)
	if err != nil {
		return "", err
	}
	c, _, err := s.dial(ctx, dialOptions{})
	if err != nil {
		return "", err
	}
	defer c.close()
	if err := c.authWith(ctx, "j1", tok, cl.ExpiresAt.Unix()); err != nil {
		return "", fmt.Errorf("%s with kid %q: %w", k.alg, sg.KeyID, err)
	}
	if err := c.subscribe(ctx, "s1", s.channel(key)); err != nil {
		return "", err
	}
	return k.alg, nil
}

// checkJWKSConfusion signs HS256 tokens whose HMAC key is the served public key, PEM and
// DER (PKIX), under its kid: a server that let the token's alg pick how the key is used
// would accept them.
func checkJWKSConfusion(ctx context.Context, s *suite) (string, error) {
	k, _, err := s.jwksSigner()
	if err != nil {
		return "", err
	}
	der, err := x509.MarshalPKIXPublicKey(k.key.Public())
	if err != nil {
		return "", fmt.Errorf("encode the public key: %w", err)
	}
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	var cases []badToken
	for _, v := range []struct {
		name string
		key  []byte
	}{{"PEM", pemBytes}, {"DER", der}} {
		tok, err := token.Mint(s.claims(), token.Signer{Alg: "HS256", Key: v.key, KeyID: s.cfg.Auth.JWKSKeyID})
		if err != nil {
			return "", err
		}
		cases = append(cases, badToken{name: "HS256 keyed with the " + v.name + " public key", token: tok, code: "invalid_token"})
	}
	return s.refuseEach(ctx, cases)
}

// checkJWKSWrongKey: a token signed by another key of the same type under the served kid,
// one signed by the served key under an unknown kid, and (for an RSA key) PS256 when
// WS_JWT_ALGS does not allow it.
func checkJWKSWrongKey(ctx context.Context, s *suite) (string, error) {
	k, sg, err := s.jwksSigner()
	if err != nil {
		return "", err
	}
	other, err := sameKind(k.key)
	if err != nil {
		return "", err
	}
	var cases []badToken
	add := func(name string, signer token.Signer) error {
		tok, err := token.Mint(s.claims(), signer)
		if err != nil {
			return err
		}
		cases = append(cases, badToken{name: name, token: tok, code: "invalid_token"})
		return nil
	}
	if err := add("another "+k.kind+" key under kid "+sg.KeyID, token.Signer{Alg: k.alg, Key: other, KeyID: sg.KeyID}); err != nil {
		return "", err
	}
	if err := add("the served key under an unknown kid", token.Signer{Alg: k.alg, Key: k.key, KeyID: "unknown-" + s.run}); err != nil {
		return "", err
	}
	if _, isRSA := k.key.(*rsa.PrivateKey); isRSA && !slices.Contains(s.cfg.Auth.Algs, "PS256") {
		if err := add("PS256, not in WS_JWT_ALGS", token.Signer{Alg: "PS256", Key: k.key, KeyID: sg.KeyID}); err != nil {
			return "", err
		}
	}
	return s.refuseEach(ctx, cases)
}

// sameKind generates a key of the same type and size as k.
func sameKind(k crypto.Signer) (crypto.Signer, error) {
	switch k := k.(type) {
	case *rsa.PrivateKey:
		return rsa.GenerateKey(rand.Reader, k.N.BitLen())
	case *ecdsa.PrivateKey:
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case ed25519.PrivateKey:
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}
	return nil, fmt.Errorf("a %T key", k)
}
