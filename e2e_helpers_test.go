package main

import (
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// jwtSpec is what sign puts into a token.
type jwtSpec struct {
	method jwt.SigningMethod
	key    any
	kid    string // the header's kid; "" for none
	claims jwt.MapClaims
}

// signOption changes one part of a token before sign signs it.
type signOption func(*jwtSpec)

// signedWith signs with method and key instead of HS256 and the server's
// secret.
func signedWith(method jwt.SigningMethod, key any) signOption {
	return func(s *jwtSpec) { s.method, s.key = method, key }
}

// withKid puts kid in the token's header.
func withKid(kid string) signOption {
	return func(s *jwtSpec) { s.kid = kid }
}

// issuedAt sets iat to at and exp an hour later.
func issuedAt(at time.Time) signOption {
	return withClaim("iat", at.Unix(), "exp", at.Add(time.Hour).Unix())
}

// withClaim sets the claims given as name, value pairs; a nil value removes
// the claim.
func withClaim(kv ...any) signOption {
	return func(s *jwtSpec) {
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(s.claims, kv[i].(string))
			} else {
				s.claims[kv[i].(string)] = kv[i+1]
			}
		}
	}
}

// sign is the one JWT signer of the end-to-end tests. It mints a login
// token for sub: HS256 under the server's secret, issued now, expiring in
// an hour, with the options applied in order. Every token it mints is
// remembered, so the log check fails should one ever be logged.
func (e *testEnv) sign(sub string, opts ...signOption) string {
	e.t.Helper()
	now := time.Now()
	s := jwtSpec{
		method: jwt.SigningMethodHS256,
		key:    e.Secret,
		claims: jwt.MapClaims{"sub": sub, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()},
	}
	for _, o := range opts {
		o(&s)
	}
	tok := jwt.NewWithClaims(s.method, s.claims)
	if s.kid != "" {
		tok.Header["kid"] = s.kid
	}
	signed, err := tok.SignedString(s.key)
	if err != nil {
		e.t.Fatal(err)
	}
	e.remember(signed)
	return signed
}

// parseCSP splits a Content-Security-Policy into its directives, each
// name (lower-cased) mapped to its sources.
func parseCSP(policy string) map[string][]string {
	out := map[string][]string{}
	for d := range strings.SplitSeq(policy, ";") {
		if f := strings.Fields(d); len(f) > 0 {
			out[strings.ToLower(f[0])] = f[1:]
		}
	}
	return out
}
