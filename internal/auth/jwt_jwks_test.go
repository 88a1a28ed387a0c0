package auth

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/clocktest"
)

type jwtKeySet struct {
	rsa     *rsa.PrivateKey // the identity provider's RSA key
	rsa2    *rsa.PrivateKey // a second RSA key (rotation, attacker)
	rsaWeak *rsa.PrivateKey // 1024 bits, below the accepted minimum
	ec      *ecdsa.PrivateKey
	ed      ed25519.PrivateKey
}

// jwtTestKeys generates the test keys once; RSA generation is slow.
var jwtTestKeys = sync.OnceValue(func() jwtKeySet {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	var ks jwtKeySet
	var err error
	ks.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	ks.rsa2, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	ks.rsaWeak, err = rsa.GenerateKey(rand.Reader, 1024)
	must(err)
	ks.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	_, ks.ed, err = ed25519.GenerateKey(rand.Reader)
	must(err)
	return ks
})

func jwtB64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwk helpers build public JWKs; an empty alg is omitted.
func jwkRSA(kid, alg string, pub *rsa.PublicKey) map[string]any {
	m := map[string]any{"kty": "RSA", "use": "sig", "n": jwtB64(pub.N.Bytes()), "e": jwtB64(big.NewInt(int64(pub.E)).Bytes())}
	return jwkCommon(m, kid, alg)
}

func jwkEC(kid, alg string, pub *ecdsa.PublicKey) map[string]any {
	b, err := pub.Bytes()
	if err != nil {
		panic(err)
	}
	m := map[string]any{"kty": "EC", "crv": "P-256", "x": jwtB64(b[1:33]), "y": jwtB64(b[33:])}
	return jwkCommon(m, kid, alg)
}

func jwkEd(kid, alg string, pub ed25519.PublicKey) map[string]any {
	m := map[string]any{"kty": "OKP", "crv": "Ed25519", "x": jwtB64(pub)}
	return jwkCommon(m, kid, alg)
}

func jwkCommon(m map[string]any, kid, alg string) map[string]any {
	if kid != "" {
		m["kid"] = kid
	}
	if alg != "" {
		m["alg"] = alg
	}
	return m
}

func jwksBody(keys ...any) []byte {
	if keys == nil {
		keys = []any{}
	}
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		panic(err)
	}
	return b
}

// jwksTestServer serves a JWK set and counts requests.
type jwksTestServer struct {
	*httptest.Server
	hits    atomic.Int64
	release chan struct{}

	mu     sync.Mutex
	status int
	body   []byte
	hang   bool
}

func newJWKSTestServer(t *testing.T, keys ...any) *jwksTestServer {
	t.Helper()
	s := &jwksTestServer{release: make(chan struct{}), status: http.StatusOK, body: jwksBody(keys...)}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hits.Add(1)
		s.mu.Lock()
		status, body, hang := s.status, s.body, s.hang
		s.mu.Unlock()
		if hang {
			select {
			case <-r.Context().Done():
			case <-s.release:
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(body)
	}))
	// Cleanups run last-in first-out: release hanging handlers, then close.
	t.Cleanup(s.Close)
	t.Cleanup(func() { close(s.release) })
	return s
}

func (s *jwksTestServer) setKeys(keys ...any) { s.setResponse(http.StatusOK, jwksBody(keys...)) }

func (s *jwksTestServer) setResponse(status int, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body, s.hang = status, body, false
}

func (s *jwksTestServer) setHang() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hang = true
}

func newTestJWKSVerifier(t *testing.T, url string, clock *clocktest.Clock, tune func(*jwksTuning)) *JWTVerifier {
	t.Helper()
	tuning := jwksDefaultTuning()
	tuning.fetchTimeout = 500 * time.Millisecond
	if tune != nil {
		tune(&tuning)
	}
	v, err := newJWTVerifier(JWTConfig{JWKSURL: url, Now: clock.Now}, tuning)
	if err != nil {
		t.Fatalf("newJWTVerifier: %v", err)
	}
	return v
}

func jwtMustVerify(t *testing.T, v *JWTVerifier, token string) {
	t.Helper()
	p, err := v.Verify(context.Background(), token)
	if err != nil || p.UserID != "user-1" {
		t.Fatalf("Verify = %q, %v; want user-1", p.UserID, err)
	}
}

func jwtMustRefuse(t *testing.T, v *JWTVerifier, token string) {
	t.Helper()
	p, err := v.Verify(context.Background(), token)
	jwtAssertInvalid(t, token, p, err)
}

// jwtMustBeUnavailable checks the answer to a token whose key set could not
// be had: SERVER_BUSY (503), never INVALID_OR_EXPIRED_TOKEN, which would be
// charged to the client's failure budget; error in the metrics.
func jwtMustBeUnavailable(t *testing.T, v *JWTVerifier, token string) {
	t.Helper()
	p, err := v.Verify(context.Background(), token)
	jwtAssertUnavailable(t, token, p, err)
}

func jwtAssertUnavailable(t *testing.T, token string, p apikey.Principal, err error) {
	t.Helper()
	if err == nil || p.UserID != "" || p.Method != "" {
		t.Fatalf("Verify = %+v, %v; want SERVER_BUSY", p, err)
	}
	var ae *apperr.Error
	if !errors.As(err, &ae) || ae.Code != apperr.ServerBusy {
		t.Fatalf("Verify error = %v; want code %s", err, apperr.ServerBusy)
	}
	if got := tokenOutcome(err); got != apikey.OutcomeError {
		t.Errorf("outcome %q, want %q", got, apikey.OutcomeError)
	}
	if len(token) > 8 && strings.Contains(err.Error(), token[len(token)-8:]) {
		t.Errorf("error message %q contains part of the token", err.Error())
	}
}

func jwtAssertHits(t *testing.T, s *jwksTestServer, want int64) {
	t.Helper()
	if got := s.hits.Load(); got != want {
		t.Fatalf("JWKS server got %d requests, want %d", got, want)
	}
}

func TestJWTJWKSVerifiesEachKeyType(t *testing.T) {
	ks := jwtTestKeys()
	srv := newJWKSTestServer(t,
		jwkRSA("rsa-1", "RS256", &ks.rsa.PublicKey),
		jwkEC("ec-1", "ES256", &ks.ec.PublicKey),
		jwkEd("ed-1", "EdDSA", ks.ed.Public().(ed25519.PublicKey)),
		jwkRSA("rsa-noalg", "", &ks.rsa.PublicKey),
		jwkEC("ec-noalg", "", &ks.ec.PublicKey),
		jwkEd("ed-noalg", "", ks.ed.Public().(ed25519.PublicKey)),
		jwkEd("", "", ks.ed.Public().(ed25519.PublicKey)),
	)
	clock := newJWTFakeClock()
	v := newTestJWKSVerifier(t, srv.URL, clock, nil)

	tests := []struct {
		name   string
		method jwt.SigningMethod
		key    any
		kid    any // nil: no kid header
	}{
		{name: "RS256 key", method: jwt.SigningMethodRS256, key: ks.rsa, kid: "rsa-1"},
		{name: "ES256 key", method: jwt.SigningMethodES256, key: ks.ec, kid: "ec-1"},
		{name: "Ed25519 key", method: jwt.SigningMethodEdDSA, key: ks.ed, kid: "ed-1"},
		{name: "RSA JWK without alg implies RS256", method: jwt.SigningMethodRS256, key: ks.rsa, kid: "rsa-noalg"},
		{name: "EC P-256 JWK without alg implies ES256", method: jwt.SigningMethodES256, key: ks.ec, kid: "ec-noalg"},
		{name: "OKP Ed25519 JWK without alg implies EdDSA", method: jwt.SigningMethodEdDSA, key: ks.ed, kid: "ed-noalg"},
		{name: "token without kid matches JWK without kid", method: jwt.SigningMethodEdDSA, key: ks.ed, kid: nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			header := map[string]any{}
			if tc.kid != nil {
				header["kid"] = tc.kid
			}
			jwtMustVerify(t, v, jwtSign(t, tc.method, tc.key, header, jwtTestClaims(clock.Now())))
		})
	}
	jwtAssertHits(t, srv, 1) // fetched once, then cached
}

func TestJWTJWKSRefusesOtherAlgorithms(t *testing.T) {
	ks := jwtTestKeys()
	srv := newJWKSTestServer(t,
		jwkRSA("rsa-1", "RS256", &ks.rsa.PublicKey),
		jwkEC("ec-1", "ES256", &ks.ec.PublicKey),
		jwkEd("ed-1", "EdDSA", ks.ed.Public().(ed25519.PublicKey)),
		jwkRSA("rsa-384", "RS384", &ks.rsa2.PublicKey),
		jwkRSA("rsa-ps", "PS256", &ks.rsa2.PublicKey),
		jwkRSA("rsa-as-es", "ES256", &ks.rsa2.PublicKey),
		func() map[string]any {
			m := jwkRSA("rsa-enc", "RS256", &ks.rsa2.PublicKey)
			m["use"] = "enc"
			return m
		}(),
		func() map[string]any {
			m := jwkRSA("rsa-wrap", "", &ks.rsa2.PublicKey)
			m["key_ops"] = []string{"wrapKey"}
			return m
		}(),
		map[string]any{"kty": "oct", "kid": "oct-1", "alg": "HS256", "k": jwtB64(jwtTestSecret)},
	)
	clock := newJWTFakeClock()
	v := newTestJWKSVerifier(t, srv.URL, clock, nil)
	claims := jwtTestClaims(clock.Now())
	pemBytes := jwtRSAPublicPEM(t)

	tests := []struct {
		name  string
		token func(t *testing.T) string
	}{
		{name: "HS256 signed with the RSA public key PEM (algorithm confusion)", token: func(t *testing.T) string {
			return jwtSign(t, jwt.SigningMethodHS256, pemBytes, map[string]any{"kid": "rsa-1"}, claims)
		}},
		{name: "HS256 signed with the RSA public key PEM without kid", token: func(t *testing.T) string {
			return jwtSign(t, jwt.SigningMethodHS256, pemBytes, nil, claims)
		}},
		{name: "HS256 signed with the RSA modulus bytes", token: func(t *testing.T) string {
			return jwtSign(t, jwt.SigningMethodHS256, ks.rsa.N.Bytes(), map[string]any{"kid": "rsa-1"}, claims)
		}},
		{name: "HS256 signed with a symmetric oct JWK", token: func(t *testing.T) string {
			return jwtSign(t, jwt.SigningMethodHS256, jwtTestSecret, map[string]any{"kid": "oct-1"}, claims)
		}},
		{name: "alg none with kid of RSA key", token: func(t *testing.T) string {
			return jwtSign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, map[string]any{"kid": "rsa-1"}, claims)
		}},
		{name: "alg None", token: func(t *testing.T) string {
			return jwtRaw(t, map[string]any{"alg": "None", "kid": "rsa-1"}, claims, "")
		}},
		{name: "ES256 token naming the RSA key", token: func(t *testing.T) string {
			return jwtSign(t, jwt.SigningMethodES256, ks.ec, map[string]any{"kid": "rsa-1"}, claims)
		}},
		{name: "RS256 token naming the EC key", token: func(t *testing.T) string {
			return jwtSign(t, jwt.SigningMethodRS256, ks.rsa, map[string]any{"kid": "ec-1"}, claims)
		}},
		{name: "EdDSA token naming the RSA key", token: func(t *testing.T) string {
			return jwtSign(t, jwt.SigningMethodEdDSA, ks.ed, map[string]any{"kid": "rsa-1"}, claims)
		}},
		{name: "PS256 signed with the RSA key", token: func(t *testing.T) string {
			return jwtSign(t, jwt.SigningMethodPS256, ks.rsa, map[string]any{"kid": "rsa-1"}, claims)
		}},
		{name: "RS384 signed with the RSA key", token: func(t *testing.T) string {
			return jwtSign(t, jwt.SigningMethodRS384, ks.rsa, map[string]any{"kid": "rsa-1"}, claims)
		}},
		{name: "RS256 naming a JWK whose alg is RS384", token: func(t *testing.T) string {
			return jwtSign(t, jwt.SigningMethodRS256, ks.rsa2, map[string]any{"kid": "rsa-384"}, claims)
		}},
		{name: "RS256 naming a JWK whose alg is PS256", token: func(t *testing.T) string {
			return jwtSign(t, jwt.SigningMethodRS256, ks.rsa2, map[string]any{"kid": "rsa-ps"}, claims)
		}},
		{name: "RS256 naming an RSA JWK that claims ES256", token: func(t *testing.T) string {
			return jwtSign(t, jwt.SigningMethodRS256, ks.rsa2, map[string]any{"kid": "rsa-as-es"}, claims)
		}},
		{name: "RS256 naming an encryption JWK", token: func(t *testing.T) string {
			return jwtSign(t, jwt.SigningMethodRS256, ks.rsa2, map[string]any{"kid": "rsa-enc"}, claims)
		}},
		{name: "RS256 naming a JWK whose key_ops lack verify", token: func(t *testing.T) string {
			return jwtSign(t, jwt.SigningMethodRS256, ks.rsa2, map[string]any{"kid": "rsa-wrap"}, claims)
		}},
		{name: "RS256 signed by another key under a known kid", token: func(t *testing.T) string {
			return jwtSign(t, jwt.SigningMethodRS256, ks.rsa2, map[string]any{"kid": "rsa-1"}, claims)
		}},
		{name: "kid that is not a string", token: func(t *testing.T) string {
			return jwtSign(t, jwt.SigningMethodRS256, ks.rsa, map[string]any{"kid": 1}, claims)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			jwtMustRefuse(t, v, tc.token(t))
		})
	}
}

func TestJWTJWKSKeyIsBoundToItsAlgorithm(t *testing.T) {
	// The per-key check, independent of the crypto library's key-type check.
	ks := jwtTestKeys()
	srv := newJWKSTestServer(t, jwkRSA("rsa-1", "", &ks.rsa.PublicKey), jwkEC("ec-1", "", &ks.ec.PublicKey))
	v := newTestJWKSVerifier(t, srv.URL, newJWTFakeClock(), nil)
	tests := []struct {
		name, kid, alg string
		wantErr        error
	}{
		{name: "RSA key for RS256", kid: "rsa-1", alg: "RS256"},
		{name: "RSA key for HS256", kid: "rsa-1", alg: "HS256", wantErr: errJWTAlgNotAllowed},
		{name: "RSA key for PS256", kid: "rsa-1", alg: "PS256", wantErr: errJWTAlgNotAllowed},
		{name: "RSA key for ES256", kid: "rsa-1", alg: "ES256", wantErr: errJWTAlgNotAllowed},
		{name: "EC key for ES256", kid: "ec-1", alg: "ES256"},
		{name: "EC key for RS256", kid: "ec-1", alg: "RS256", wantErr: errJWTAlgNotAllowed},
		{name: "unknown kid", kid: "nope", alg: "RS256", wantErr: errJWKSUnknownKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			key, err := v.jwks.lookup(context.Background(), tc.kid, tc.alg)
			if !errors.Is(err, tc.wantErr) || (err == nil) != (key != nil) {
				t.Fatalf("lookup = %T, %v; want error %v", key, err, tc.wantErr)
			}
		})
	}
}

func TestJWTJWKSUnknownKidRefetchIsRateLimited(t *testing.T) {
	ks := jwtTestKeys()
	srv := newJWKSTestServer(t, jwkRSA("rsa-1", "RS256", &ks.rsa.PublicKey))
	clock := newJWTFakeClock()
	v := newTestJWKSVerifier(t, srv.URL, clock, nil)

	good := jwtSign(t, jwt.SigningMethodRS256, ks.rsa, map[string]any{"kid": "rsa-1"}, jwtTestClaims(clock.Now()))
	badKid := func(i int) string {
		return jwtSign(t, jwt.SigningMethodRS256, ks.rsa2, map[string]any{"kid": "bogus-" + string(rune('a'+i%26))}, jwtTestClaims(clock.Now()))
	}
	bad := make([]string, 50)
	for i := range bad {
		bad[i] = badKid(i)
	}
	flood := func(t *testing.T) {
		t.Helper()
		var wg sync.WaitGroup
		for _, tok := range bad {
			wg.Go(func() {
				if p, err := v.Verify(context.Background(), tok); err == nil {
					t.Errorf("bad-kid token accepted as %q", p.UserID)
				}
			})
		}
		wg.Wait()
	}

	steps := []struct {
		name     string
		advance  time.Duration
		run      func(t *testing.T)
		wantHits int64
	}{
		{name: "first use fetches the key set", run: func(t *testing.T) { jwtMustVerify(t, v, good) }, wantHits: 1},
		{name: "50 concurrent bad kids right after the fetch cause no request", run: flood, wantHits: 1},
		{name: "50 concurrent bad kids after 61s cause exactly one request", advance: 61 * time.Second, run: flood, wantHits: 2},
		{name: "50 more at the same time cause none", run: flood, wantHits: 2},
		{name: "30s later still none", advance: 30 * time.Second, run: flood, wantHits: 2},
		{name: "good token needs no request", run: func(t *testing.T) { jwtMustVerify(t, v, good) }, wantHits: 2},
		{name: "a minute after the last attempt one more", advance: 31 * time.Second, run: flood, wantHits: 3},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			clock.Advance(st.advance)
			st.run(t)
			jwtAssertHits(t, srv, st.wantHits)
		})
	}
}

func TestJWTJWKSConcurrentFirstUseFetchesOnce(t *testing.T) {
	ks := jwtTestKeys()
	srv := newJWKSTestServer(t, jwkEC("ec-1", "ES256", &ks.ec.PublicKey))
	clock := newJWTFakeClock()
	v := newTestJWKSVerifier(t, srv.URL, clock, nil)
	token := jwtSign(t, jwt.SigningMethodES256, ks.ec, map[string]any{"kid": "ec-1"}, jwtTestClaims(clock.Now()))

	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			if p, err := v.Verify(context.Background(), token); err != nil || p.UserID != "user-1" {
				t.Errorf("Verify = %q, %v", p.UserID, err)
			}
		})
	}
	wg.Wait()
	jwtAssertHits(t, srv, 1)
}

func TestJWTJWKSKeyRotation(t *testing.T) {
	ks := jwtTestKeys()
	oldJWK := jwkRSA("old", "RS256", &ks.rsa.PublicKey)
	newJWK := jwkEC("new", "ES256", &ks.ec.PublicKey)
	srv := newJWKSTestServer(t, oldJWK)
	clock := newJWTFakeClock()
	v := newTestJWKSVerifier(t, srv.URL, clock, nil)
	claims := jwtTestClaims(clock.Now())
	oldTok := jwtSign(t, jwt.SigningMethodRS256, ks.rsa, map[string]any{"kid": "old"}, claims)
	newTok := jwtSign(t, jwt.SigningMethodES256, ks.ec, map[string]any{"kid": "new"}, claims)

	steps := []struct {
		name     string
		advance  time.Duration
		serve    []any // nil: unchanged
		token    string
		wantOK   bool
		wantHits int64
	}{
		{name: "old key verifies", token: oldTok, wantOK: true, wantHits: 1},
		{name: "new key published but within the rate-limit window refused", advance: 10 * time.Second, serve: []any{oldJWK, newJWK}, token: newTok, wantHits: 1},
		{name: "new key verifies after the window", advance: 51 * time.Second, token: newTok, wantOK: true, wantHits: 2},
		{name: "old key still verifies from cache", token: oldTok, wantOK: true, wantHits: 2},
		{name: "old key withdrawn, still cached within max age", advance: 30 * time.Minute, serve: []any{newJWK}, token: oldTok, wantOK: true, wantHits: 2},
		{name: "withdrawn key refused once the cache is older than max age", advance: 31 * time.Minute, token: oldTok, wantHits: 3},
		{name: "new key still verifies", token: newTok, wantOK: true, wantHits: 3},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			clock.Advance(st.advance)
			if st.serve != nil {
				srv.setKeys(st.serve...)
			}
			if st.wantOK {
				jwtMustVerify(t, v, st.token)
			} else {
				jwtMustRefuse(t, v, st.token)
			}
			jwtAssertHits(t, srv, st.wantHits)
		})
	}
}

func TestJWTJWKSFailingServer(t *testing.T) {
	ks := jwtTestKeys()
	goodJWK := jwkRSA("rsa-1", "RS256", &ks.rsa.PublicKey)
	// padded returns a valid key set padded with whitespace to exactly size bytes.
	padded := func(size int) []byte {
		b := jwksBody(goodJWK)
		return append(b[:len(b)-1], append(bytes.Repeat([]byte(" "), size-len(b)), '}')...)
	}

	tests := []struct {
		name    string
		setup   func(s *jwksTestServer)
		closed  bool // server shut down before use
		wantOK  bool
		maxTime time.Duration
	}{
		{name: "HTTP 500 with a valid body refused", setup: func(s *jwksTestServer) { s.setResponse(http.StatusInternalServerError, jwksBody(goodJWK)) }},
		{name: "HTTP 404 refused", setup: func(s *jwksTestServer) { s.setResponse(http.StatusNotFound, nil) }},
		{name: "body of exactly 1 MiB accepted", setup: func(s *jwksTestServer) { s.setResponse(http.StatusOK, padded(1<<20)) }, wantOK: true},
		{name: "body over 1 MiB refused", setup: func(s *jwksTestServer) { s.setResponse(http.StatusOK, padded(1<<20+1)) }},
		{name: "hanging server times out", setup: func(s *jwksTestServer) { s.setHang() }, maxTime: 3 * time.Second},
		{name: "invalid JSON refused", setup: func(s *jwksTestServer) { s.setResponse(http.StatusOK, []byte(`{"keys":[`)) }},
		{name: "JSON that is not a key set refused", setup: func(s *jwksTestServer) { s.setResponse(http.StatusOK, []byte(`[1,2,3]`)) }},
		{name: "empty key set refused", setup: func(s *jwksTestServer) { s.setKeys() }},
		{name: "only a 1024-bit RSA key refused", setup: func(s *jwksTestServer) {
			s.setKeys(jwkRSA("rsa-1", "RS256", &ks.rsaWeak.PublicKey))
		}},
		{name: "connection refused", closed: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := newJWKSTestServer(t, goodJWK)
			if tc.setup != nil {
				tc.setup(srv)
			}
			if tc.closed {
				srv.Close()
			}
			clock := newJWTFakeClock()
			// Only the hanging server is about the fetch timeout: the
			// others get one that a busy machine reading 1 MiB under the
			// race detector cannot reach.
			timeout := 10 * time.Second
			if tc.maxTime > 0 {
				timeout = 200 * time.Millisecond
			}
			v := newTestJWKSVerifier(t, srv.URL, clock, func(tu *jwksTuning) { tu.fetchTimeout = timeout })
			key := ks.rsa
			if tc.name == "only a 1024-bit RSA key refused" {
				key = ks.rsaWeak
			}
			token := jwtSign(t, jwt.SigningMethodRS256, key, map[string]any{"kid": "rsa-1"}, jwtTestClaims(clock.Now()))

			start := time.Now()
			p, err := v.Verify(context.Background(), token)
			// Only the hanging server is about time: it must not hold the
			// verification much past the fetch timeout.
			if d := time.Since(start); tc.maxTime > 0 && d > tc.maxTime {
				t.Errorf("Verify took %v, want under %v", d, tc.maxTime)
			}
			if tc.wantOK {
				if err != nil || p.UserID != "user-1" {
					t.Fatalf("Verify = %q, %v; want user-1", p.UserID, err)
				}
				return
			}
			// The key set could not be had: an outage, not a bad token.
			jwtAssertUnavailable(t, token, p, err)
			if !tc.closed {
				jwtAssertHits(t, srv, 1)
			}
		})
	}
}

// TestJWTJWKSOutageIsServerBusy: when a token needs the key set (an unknown
// kid) and the identity provider cannot be reached, the answer is
// SERVER_BUSY, also while the rate limit holds back the retry of a failed
// fetch; keys already fetched keep serving; and once a fetch succeeds, a kid
// that is not in the set is an invalid token again.
func TestJWTJWKSOutageIsServerBusy(t *testing.T) {
	ks := jwtTestKeys()
	goodJWK := jwkRSA("rsa-1", "RS256", &ks.rsa.PublicKey)
	outages := []struct {
		name  string
		start func(s *jwksTestServer)
	}{
		{name: "HTTP 500", start: func(s *jwksTestServer) { s.setResponse(http.StatusInternalServerError, nil) }},
		{name: "HTTP 502", start: func(s *jwksTestServer) { s.setResponse(http.StatusBadGateway, []byte("<html>bad gateway</html>")) }},
		{name: "garbage", start: func(s *jwksTestServer) { s.setResponse(http.StatusOK, []byte("<html>maintenance</html>")) }},
		{name: "timeout", start: func(s *jwksTestServer) { s.setHang() }},
		{name: "connection refused", start: func(s *jwksTestServer) { s.Close() }},
	}
	for _, o := range outages {
		t.Run(o.name, func(t *testing.T) {
			srv := newJWKSTestServer(t, goodJWK)
			clock := newJWTFakeClock()
			v := newTestJWKSVerifier(t, srv.URL, clock, func(tu *jwksTuning) { tu.fetchTimeout = 200 * time.Millisecond })
			sign := func(key *rsa.PrivateKey, kid string) string {
				return jwtSign(t, jwt.SigningMethodRS256, key, map[string]any{"kid": kid}, jwtTestClaims(clock.Now()))
			}
			known := sign(ks.rsa, "rsa-1")
			newKid := sign(ks.rsa2, "rsa-2") // a key the provider has not published (yet)

			jwtMustVerify(t, v, known)
			jwtAssertHits(t, srv, 1)
			o.start(srv)
			clock.Advance(61 * time.Second)

			t.Run("unknown kid whose fetch fails", func(t *testing.T) {
				jwtMustBeUnavailable(t, v, newKid)
			})
			t.Run("unknown kid while the failed fetch's retry is held back", func(t *testing.T) {
				clock.Advance(30 * time.Second)
				for range 5 {
					jwtMustBeUnavailable(t, v, newKid)
				}
			})
			t.Run("known kid keeps working", func(t *testing.T) {
				jwtMustVerify(t, v, known)
			})
			if o.name != "connection refused" {
				jwtAssertHits(t, srv, 2) // one attempt in the window, however many tokens
				t.Run("after recovery a kid not in the set is invalid", func(t *testing.T) {
					srv.setKeys(goodJWK)
					clock.Advance(31 * time.Second)
					jwtMustRefuse(t, v, newKid)
					jwtAssertHits(t, srv, 3)
					clock.Advance(30 * time.Second) // held back after a good fetch: still invalid
					jwtMustRefuse(t, v, newKid)
					jwtAssertHits(t, srv, 3)
				})
			}
		})
	}
}

func TestJWTJWKSRecoversAfterFailedInitialFetch(t *testing.T) {
	ks := jwtTestKeys()
	goodJWK := jwkEd("ed-1", "EdDSA", ks.ed.Public().(ed25519.PublicKey))
	srv := newJWKSTestServer(t, goodJWK)
	srv.setResponse(http.StatusServiceUnavailable, nil)
	clock := newJWTFakeClock()
	v := newTestJWKSVerifier(t, srv.URL, clock, nil)
	jwtAssertHits(t, srv, 0) // construction does not fetch
	token := jwtSign(t, jwt.SigningMethodEdDSA, ks.ed, map[string]any{"kid": "ed-1"}, jwtTestClaims(clock.Now()))

	t.Run("unavailable while the identity provider fails", func(t *testing.T) {
		jwtMustBeUnavailable(t, v, token)
		jwtAssertHits(t, srv, 1)
	})
	srv.setKeys(goodJWK)
	t.Run("no retry within the rate-limit window, still unavailable", func(t *testing.T) {
		clock.Advance(30 * time.Second)
		jwtMustBeUnavailable(t, v, token)
		jwtAssertHits(t, srv, 1)
	})
	t.Run("retried lazily after the window", func(t *testing.T) {
		clock.Advance(31 * time.Second)
		jwtMustVerify(t, v, token)
		jwtAssertHits(t, srv, 2)
	})
	t.Run("failed refresh keeps the previous keys", func(t *testing.T) {
		srv.setResponse(http.StatusInternalServerError, nil)
		clock.Advance(2 * time.Hour) // past max age: a refresh is attempted and fails
		jwtMustVerify(t, v, token)
		jwtAssertHits(t, srv, 3)
	})
}

func TestJWTJWKSCallerContextBoundsTheWait(t *testing.T) {
	ks := jwtTestKeys()
	srv := newJWKSTestServer(t)
	srv.setHang()
	clock := newJWTFakeClock()
	v := newTestJWKSVerifier(t, srv.URL, clock, func(tu *jwksTuning) { tu.fetchTimeout = 5 * time.Second })
	token := jwtSign(t, jwt.SigningMethodRS256, ks.rsa, map[string]any{"kid": "rsa-1"}, jwtTestClaims(clock.Now()))

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	p, err := v.Verify(ctx, token)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Verify took %v despite a 50ms context", d)
	}
	jwtAssertUnavailable(t, token, p, err)
}

// TestJWTJWKSStaleKeyServesWhileRefreshHangs: a key set past its max age is
// refreshed on use; when the provider hangs and the caller's context ends
// first, a key already fetched still verifies.
func TestJWTJWKSStaleKeyServesWhileRefreshHangs(t *testing.T) {
	ks := jwtTestKeys()
	srv := newJWKSTestServer(t, jwkRSA("rsa-1", "RS256", &ks.rsa.PublicKey))
	clock := newJWTFakeClock()
	v := newTestJWKSVerifier(t, srv.URL, clock, func(tu *jwksTuning) { tu.fetchTimeout = 5 * time.Second })
	jwtMustVerify(t, v, jwtSign(t, jwt.SigningMethodRS256, ks.rsa, map[string]any{"kid": "rsa-1"}, jwtTestClaims(clock.Now())))

	srv.setHang()
	clock.Advance(2 * time.Hour)
	token := jwtSign(t, jwt.SigningMethodRS256, ks.rsa, map[string]any{"kid": "rsa-1"}, jwtTestClaims(clock.Now()))
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if p, err := v.Verify(ctx, token); err != nil || p.UserID != "user-1" {
		t.Fatalf("Verify = %q, %v; want user-1 from the key already fetched", p.UserID, err)
	}
}

func TestJWTJWKSIgnoresKeyLocationHeaders(t *testing.T) {
	ks := jwtTestKeys()
	legit := newJWKSTestServer(t, jwkRSA("rsa-1", "RS256", &ks.rsa.PublicKey))
	evilJWK := jwkRSA("evil", "RS256", &ks.rsa2.PublicKey)
	attacker := newJWKSTestServer(t, evilJWK)
	clock := newJWTFakeClock()
	v := newTestJWKSVerifier(t, legit.URL, clock, nil)
	claims := jwtTestClaims(clock.Now())
	evilNoKid := jwkRSA("", "RS256", &ks.rsa2.PublicKey)

	tests := []struct {
		name   string
		method jwt.SigningMethod
		key    any
		header map[string]any
		wantOK bool
	}{
		{name: "jku to attacker with attacker kid", method: jwt.SigningMethodRS256, key: ks.rsa2,
			header: map[string]any{"kid": "evil", "jku": attacker.URL}},
		{name: "jku to attacker with known kid", method: jwt.SigningMethodRS256, key: ks.rsa2,
			header: map[string]any{"kid": "rsa-1", "jku": attacker.URL}},
		{name: "x5u to attacker", method: jwt.SigningMethodRS256, key: ks.rsa2,
			header: map[string]any{"kid": "evil", "x5u": attacker.URL + "/cert.pem"}},
		{name: "embedded jwk of attacker key", method: jwt.SigningMethodRS256, key: ks.rsa2,
			header: map[string]any{"jwk": evilNoKid}},
		{name: "embedded jwk with known kid", method: jwt.SigningMethodRS256, key: ks.rsa2,
			header: map[string]any{"kid": "rsa-1", "jwk": evilJWK}},
		{name: "genuine token with jku still verifies by kid only", method: jwt.SigningMethodRS256, key: ks.rsa,
			header: map[string]any{"kid": "rsa-1", "jku": attacker.URL}, wantOK: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			token := jwtSign(t, tc.method, tc.key, tc.header, claims)
			if tc.wantOK {
				jwtMustVerify(t, v, token)
			} else {
				jwtMustRefuse(t, v, token)
			}
			jwtAssertHits(t, attacker, 0)
		})
	}
}

func TestJWTJWKSOversizedTokensCauseNoFetch(t *testing.T) {
	srv := newJWKSTestServer(t, jwkRSA("rsa-1", "RS256", &jwtTestKeys().rsa.PublicKey))
	v := newTestJWKSVerifier(t, srv.URL, newJWTFakeClock(), nil)
	big := make([]byte, 8<<10+1)
	for i := range big {
		big[i] = 'a'
	}
	big[100], big[200] = '.', '.'
	for _, tc := range []struct{ name, token string }{
		{name: "token over 8 KiB", token: string(big)},
		{name: "token with thousands of dots", token: string(bytes.Repeat([]byte("a."), 4000))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			jwtMustRefuse(t, v, tc.token)
			jwtAssertHits(t, srv, 0)
		})
	}
}

func TestJWTJWKSMalformedKeysAreSkipped(t *testing.T) {
	ks := jwtTestKeys()
	good := jwkRSA("rsa-1", "RS256", &ks.rsa.PublicKey)
	mod := func(m map[string]any, kv ...any) map[string]any {
		c := map[string]any{}
		for k, v := range m {
			c[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			c[kv[i].(string)] = kv[i+1]
		}
		return c
	}
	ecGood := jwkEC("ec-x", "ES256", &ks.ec.PublicKey)
	srv := newJWKSTestServer(t,
		"not an object",
		42,
		nil,
		map[string]any{"kty": 7},
		mod(good, "kid", "bad-n", "n", "!!!"),
		mod(good, "kid", "big-e", "e", jwtB64([]byte{1, 0, 0, 0, 1})),
		mod(good, "kid", "even-e", "e", jwtB64([]byte{1, 0, 0})),
		mod(good, "kid", "e-one", "e", jwtB64([]byte{1})),
		mod(good, "kid", "huge-n", "n", jwtB64(bytes.Repeat([]byte{0xff}, 1100))),
		mod(ecGood, "kid", "ec-off-curve", "y", jwtB64(bytes.Repeat([]byte{7}, 32))),
		mod(ecGood, "kid", "ec-short-x", "x", jwtB64(bytes.Repeat([]byte{7}, 31))),
		mod(ecGood, "kid", "ec-p384", "crv", "P-384"),
		map[string]any{"kty": "OKP", "crv": "Ed25519", "kid": "ed-short", "x": jwtB64(make([]byte, 31))},
		map[string]any{"kty": "OKP", "crv": "X25519", "kid": "x25519", "x": jwtB64(make([]byte, 32))},
		good,
	)
	v := newTestJWKSVerifier(t, srv.URL, newJWTFakeClock(), nil)
	jwtMustVerify(t, v, jwtSign(t, jwt.SigningMethodRS256, ks.rsa, map[string]any{"kid": "rsa-1"}, jwtTestClaims(jwtTestStart)))

	for _, kid := range []string{"bad-n", "big-e", "even-e", "e-one", "huge-n", "ec-off-curve", "ec-short-x", "ec-p384", "ed-short", "x25519"} {
		t.Run("skipped "+kid, func(t *testing.T) {
			if key, err := v.jwks.lookup(context.Background(), kid, "RS256"); key != nil || !errors.Is(err, errJWKSUnknownKey) {
				t.Fatalf("lookup(%q) = %T, %v; want unknown key", kid, key, err)
			}
		})
	}
}

// TestJWTJWKSURLNeverLogged: JWT_JWKS_URL may carry credentials; a fetch
// that fails in transport logs neither them nor the URL's query.
func TestJWTJWKSURLNeverLogged(t *testing.T) {
	ks := jwtTestKeys()
	srv := newJWKSTestServer(t)
	u, _ := url.Parse(srv.URL + "?token=query-secret")
	u.User = url.UserPassword("user", "password-secret")
	srv.Close() // connection refused: an error that quotes the URL
	clock := newJWTFakeClock()
	var log bytes.Buffer
	v, err := newJWTVerifier(JWTConfig{JWKSURL: u.String(), Now: clock.Now, Logger: slog.New(slog.NewTextHandler(&log, &slog.HandlerOptions{Level: slog.LevelDebug}))}, jwksDefaultTuning())
	if err != nil {
		t.Fatal(err)
	}
	jwtMustBeUnavailable(t, v, jwtSign(t, jwt.SigningMethodRS256, ks.rsa, map[string]any{"kid": "rsa-1"}, jwtTestClaims(clock.Now())))
	if !strings.Contains(log.String(), "JWKS fetch failed") {
		t.Fatalf("nothing logged: %q", log.String())
	}
	for _, secret := range []string{"password-secret", "query-secret"} {
		if strings.Contains(log.String(), secret) {
			t.Errorf("the log holds %q: %s", secret, log.String())
		}
	}
}
