// This JWK set cache is our own rather than github.com/MicahParks/keyfunc/v3
// (v3.9.2, on github.com/MicahParks/jwkset v0.11.4), which was evaluated as
// its replacement and fails these rules (read in its source, and checked
// against a test server):
//
//   - An outage cannot be told from an unknown kid. jwkset's HTTP client
//     (http.go, KeyRead) hands a failed refetch to RefreshErrorHandler and
//     returns ErrKeyNotFound, exactly as for a kid missing from a good set;
//     SERVER_BUSY for an unreachable identity provider needs the difference.
//   - The refetch limit makes requests wait. The unknown-kid limiter is an
//     x/time/rate.Limiter used with Wait: a second unknown kid within the
//     minute blocked its request for the whole RateLimitWaitMax (a minute by
//     default), then answered ErrKeyNotFound. Ours answers at once and
//     concurrent callers share one fetch. It also runs on the wall clock.
//   - The response size is unbounded: the body goes straight to
//     json.NewDecoder(resp.Body).Decode (storage.go); a 5 MiB body was read.
//   - Key hygiene: a 1024-bit RSA key, a "use":"enc" key and a key whose
//     key_ops lack "verify" were all loaded and served (keyfunc checks use
//     only against an opt-in whitelist, never key_ops; jwkset has no RSA
//     size floor), while one malformed key made the whole set fail to load
//     instead of being skipped.
//   - The constructor fetches synchronously (up to HTTPTimeout) and starts a
//     refresh goroutine that lives until its context ends; ours makes no
//     request before the first token, so a provider that is down or hanging
//     does not delay start-up, and needs no goroutine to stop.
//
// Algorithm handling would have been acceptable: with jwt.WithValidMethods
// and our keyFor wrapper, none and HS256-with-a-public-key stay refused.

package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/apikeyd/apikeyd/internal/keyset"
)

// The algorithms a JWK set may provide, and the key type each is bound to.
const (
	jwksAlgRS256 = "RS256"
	jwksAlgES256 = "ES256"
	jwksAlgEdDSA = "EdDSA"
)

// jwksAlgorithms returns the algorithms accepted in JWKS mode. Each key is
// further restricted to its own algorithm.
func jwksAlgorithms() []string { return []string{jwksAlgRS256, jwksAlgES256, jwksAlgEdDSA} }

// RSA moduli outside this range are ignored: too small is weak, too large
// makes every verification needlessly expensive.
const (
	jwksMinRSABits = 2048
	jwksMaxRSABits = 8192
)

// jwksTuning holds the timing and size limits of the key-set cache. Only
// tests change them.
type jwksTuning struct {
	fetchTimeout time.Duration // whole HTTP exchange, including the body
	maxBody      int64         // bytes of response body accepted
	minRefetch   time.Duration // at most one fetch attempt per this interval
	maxAge       time.Duration // a key set older than this is refreshed on use
}

func jwksDefaultTuning() jwksTuning {
	return jwksTuning{
		fetchTimeout: 5 * time.Second,
		maxBody:      1 << 20,
		minRefetch:   time.Minute,
		maxAge:       time.Hour,
	}
}

// jwksKey is one usable verification key and the one algorithm it may be
// used with.
type jwksKey struct {
	alg string
	key any // *rsa.PublicKey, *ecdsa.PublicKey or ed25519.PublicKey
}

// jwksCache holds the keys of a JWK set by kid, fetched and refreshed by
// the rule of every key set (see package keyset): on first use, when a
// token names a kid that is not in it, or when it is older than maxAge; at
// most one attempt per minRefetch, so a flood of tokens with made-up kids
// costs the identity provider one request a minute; one fetch shared by
// concurrent callers; a failed fetch keeps the previous keys.
//
// A kid that is not in the set is errJWKSUnknownKey only when the set was
// fetched successfully: while the last attempt failed (and until the rate
// limit lets the next one run) it is errJWKSUnavailable, an outage of the
// identity provider, not a bad token.
type jwksCache struct {
	keys *keyset.Cache[map[string][]jwksKey] // by kid; replaced whole, never mutated
}

func newJWKSCache(url string, client *http.Client, now func() time.Time, logger *slog.Logger, tuning jwksTuning) *jwksCache {
	return &jwksCache{keys: keyset.New(keyset.Config{
		Name:         "JWKS",
		URL:          url,
		Accept:       "application/jwk-set+json, application/json",
		Client:       client,
		FetchTimeout: tuning.fetchTimeout,
		MaxBytes:     tuning.maxBody,
		MinRefetch:   tuning.minRefetch,
		MaxAge:       tuning.maxAge,
		Now:          now,
		Log:          logger,
	}, func(ctx context.Context, body []byte) (map[string][]jwksKey, error) {
		return jwksParse(ctx, body, logger)
	})}
}

// lookup returns the key with id kid usable with alg. The kid is only a map
// key: nothing in the token decides where keys are fetched from.
func (c *jwksCache) lookup(ctx context.Context, kid, alg string) (any, error) {
	keys, err := c.keys.Get(ctx, func(keys map[string][]jwksKey) bool {
		_, ok := keys[kid]
		return ok
	})
	if err != nil {
		return nil, errJWKSUnavailable
	}
	set, known := keys[kid]
	if !known {
		return nil, errJWKSUnknownKey
	}
	for _, k := range set {
		if k.alg == alg {
			return k.key, nil
		}
	}
	return nil, errJWTAlgNotAllowed
}

// jwksJSON is one JWK as published. Only public members are read.
type jwksJSON struct {
	Kty    string   `json:"kty"`
	Kid    string   `json:"kid"`
	Alg    string   `json:"alg"`
	Use    string   `json:"use"`
	KeyOps []string `json:"key_ops"`
	Crv    string   `json:"crv"`
	N      string   `json:"n"`
	E      string   `json:"e"`
	X      string   `json:"x"`
	Y      string   `json:"y"`
}

// jwksParse parses a JWK set. Keys that are unusable (other use, unsupported
// type or algorithm, alg inconsistent with the key type, bad material) are
// skipped; a set with no usable key is an error.
func jwksParse(ctx context.Context, body []byte, logger *slog.Logger) (map[string][]jwksKey, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, errors.New("jwks: response is not a JSON JWK set")
	}
	keys := make(map[string][]jwksKey)
	n := 0
	for i, raw := range doc.Keys {
		var j jwksJSON
		k, err := func() (jwksKey, error) {
			if err := json.Unmarshal(raw, &j); err != nil {
				return jwksKey{}, errors.New("not a JWK object")
			}
			return jwksParseKey(j)
		}()
		if err != nil {
			logger.LogAttrs(ctx, slog.LevelDebug, "JWKS key skipped",
				slog.Int("index", i), slog.String("kid", j.Kid), slog.String("reason", err.Error()))
			continue
		}
		keys[j.Kid] = append(keys[j.Kid], k)
		n++
	}
	if n == 0 {
		return nil, errors.New("jwks: key set has no usable key")
	}
	return keys, nil
}

// jwksParseKey turns one JWK into a verification key bound to one algorithm:
// the JWK's alg if present (which must match its key type), else the one
// implied by kty/crv.
func jwksParseKey(j jwksJSON) (jwksKey, error) {
	if j.Use != "" && j.Use != "sig" {
		return jwksKey{}, fmt.Errorf("use %q is not sig", j.Use)
	}
	if j.KeyOps != nil && !slices.Contains(j.KeyOps, "verify") {
		return jwksKey{}, errors.New("key_ops lacks verify")
	}

	var implied string
	switch {
	case j.Kty == "RSA":
		implied = jwksAlgRS256
	case j.Kty == "EC" && j.Crv == "P-256":
		implied = jwksAlgES256
	case j.Kty == "OKP" && j.Crv == "Ed25519":
		implied = jwksAlgEdDSA
	default:
		return jwksKey{}, fmt.Errorf("unsupported key type %q/%q", j.Kty, j.Crv)
	}
	if j.Alg != "" && j.Alg != implied {
		return jwksKey{}, fmt.Errorf("alg %q not supported for key type %q/%q", j.Alg, j.Kty, j.Crv)
	}

	var (
		key any
		err error
	)
	switch implied {
	case jwksAlgRS256:
		key, err = jwksRSAKey(j.N, j.E)
	case jwksAlgES256:
		key, err = jwksP256Key(j.X, j.Y)
	case jwksAlgEdDSA:
		key, err = jwksEd25519Key(j.X)
	}
	if err != nil {
		return jwksKey{}, err
	}
	return jwksKey{alg: implied, key: key}, nil
}

func jwksRSAKey(nb64, eb64 string) (*rsa.PublicKey, error) {
	nb, err := jwksDecode(nb64)
	if err != nil {
		return nil, errors.New("bad RSA modulus encoding")
	}
	eb, err := jwksDecode(eb64)
	if err != nil || len(eb) == 0 || len(eb) > 4 {
		return nil, errors.New("bad RSA exponent")
	}
	n := new(big.Int).SetBytes(nb)
	if bits := n.BitLen(); bits < jwksMinRSABits || bits > jwksMaxRSABits {
		return nil, fmt.Errorf("RSA modulus of %d bits not accepted", bits)
	}
	var e int64
	for _, b := range eb {
		e = e<<8 | int64(b)
	}
	if e < 3 || e%2 == 0 || e > 1<<31-1 {
		return nil, errors.New("bad RSA exponent")
	}
	return &rsa.PublicKey{N: n, E: int(e)}, nil
}

func jwksP256Key(xb64, yb64 string) (*ecdsa.PublicKey, error) {
	x, errX := jwksDecode(xb64)
	y, errY := jwksDecode(yb64)
	if errX != nil || errY != nil || len(x) != 32 || len(y) != 32 {
		return nil, errors.New("bad P-256 coordinates")
	}
	point := make([]byte, 0, 65)
	point = append(point, 4) // uncompressed
	point = append(point, x...)
	point = append(point, y...)
	key, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), point)
	if err != nil {
		return nil, errors.New("P-256 point invalid")
	}
	return key, nil
}

func jwksEd25519Key(xb64 string) (ed25519.PublicKey, error) {
	x, err := jwksDecode(xb64)
	if err != nil || len(x) != ed25519.PublicKeySize {
		return nil, errors.New("bad Ed25519 key")
	}
	return ed25519.PublicKey(x), nil
}

// jwksDecode decodes base64url, tolerating the padding some providers add.
func jwksDecode(s string) ([]byte, error) {
	return base64.RawURLEncoding.Strict().DecodeString(strings.TrimRight(s, "="))
}
