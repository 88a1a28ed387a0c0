package auth

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/clocktest"
)

var (
	jwtTestSecret = []byte("test-secret-0123456789-abcdefghijklmn")
	jwtTestStart  = time.Unix(1_750_000_000, 0)
)

// newJWTFakeClock returns a clock stopped at jwtTestStart.
func newJWTFakeClock() *clocktest.Clock { return clocktest.Stopped(jwtTestStart) }

// jwtTestClaims returns valid claims for "user-1" at now.
func jwtTestClaims(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"sub": "user-1",
		"iat": now.Unix(),
		"exp": now.Add(24 * time.Hour).Unix(),
	}
}

// jwtSign signs claims with a real signer, adding extra header fields.
func jwtSign(t *testing.T, method jwt.SigningMethod, key any, header map[string]any, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(method, claims)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", method.Alg(), err)
	}
	return s
}

// jwtRaw assembles a token from a header, claims and a raw signature, for
// tokens no honest signer produces (alg none and friends).
func jwtRaw(t *testing.T, header map[string]any, claims jwt.MapClaims, sig string) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	return enc(header) + "." + enc(claims) + "." + sig
}

// jwtAssertInvalid checks the one error every verification failure returns.
func jwtAssertInvalid(t *testing.T, token string, p apikey.Principal, err error) {
	t.Helper()
	if err == nil {
		t.Fatalf("Verify accepted the token (sub %q), want INVALID_OR_EXPIRED_TOKEN", p.UserID)
	}
	if p.UserID != "" || p.Method != "" || p.Org != nil {
		t.Errorf("Verify returned %+v together with an error", p)
	}
	var ae *apperr.Error
	if !errors.As(err, &ae) {
		t.Fatalf("error %v (%T) is not an *apperr.Error", err, err)
	}
	if ae.Code != apperr.InvalidToken || ae.Message != "invalid or expired token" {
		t.Errorf("error = %q/%q, want %q/%q", ae.Code, ae.Message, apperr.InvalidToken, "invalid or expired token")
	}
	if len(token) > 8 && strings.Contains(err.Error(), token[len(token)-8:]) {
		t.Errorf("error message %q contains part of the token", err.Error())
	}
}

func jwtRSAPublicPEM(t *testing.T) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(&jwtTestKeys().rsa.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func TestJWTVerifyHS256(t *testing.T) {
	now := jwtTestStart
	hs := func(c jwt.MapClaims) func(*testing.T) string {
		return func(t *testing.T) string { return jwtSign(t, jwt.SigningMethodHS256, jwtTestSecret, nil, c) }
	}
	claims := func(mod func(jwt.MapClaims)) jwt.MapClaims {
		c := jwtTestClaims(now)
		mod(c)
		return c
	}
	set := func(k string, v any) func(jwt.MapClaims) { return func(c jwt.MapClaims) { c[k] = v } }
	del := func(k string) func(jwt.MapClaims) { return func(c jwt.MapClaims) { delete(c, k) } }
	none := func(c jwt.MapClaims) {}

	tests := []struct {
		name     string
		issuer   string
		audience string
		token    func(*testing.T) string
		wantSub  string // "" means the token must be refused
	}{
		{name: "valid token accepted", token: hs(claims(none)), wantSub: "user-1"},
		{name: "expired beyond leeway refused", token: hs(claims(set("exp", now.Add(-31*time.Second).Unix())))},
		{name: "expired within leeway accepted", token: hs(claims(set("exp", now.Add(-20*time.Second).Unix()))), wantSub: "user-1"},
		{name: "exp missing refused", token: hs(claims(del("exp")))},
		{name: "exp not a number refused", token: hs(claims(set("exp", "tomorrow")))},
		{name: "exp null refused", token: hs(claims(set("exp", nil)))},
		{name: "nbf in the future beyond leeway refused", token: hs(claims(set("nbf", now.Add(31*time.Second).Unix())))},
		{name: "nbf in the future within leeway accepted", token: hs(claims(set("nbf", now.Add(25*time.Second).Unix()))), wantSub: "user-1"},
		{name: "iat in the future beyond leeway refused", token: hs(claims(set("iat", now.Add(31*time.Second).Unix())))},
		{name: "iat in the future within leeway accepted", token: hs(claims(set("iat", now.Add(25*time.Second).Unix()))), wantSub: "user-1"},
		{name: "iat missing accepted", token: hs(claims(del("iat"))), wantSub: "user-1"},
		{name: "wrong secret refused", token: func(t *testing.T) string {
			return jwtSign(t, jwt.SigningMethodHS256, []byte("another-secret-0123456789-abcdefgh"), nil, jwtTestClaims(now))
		}},
		{name: "tampered payload refused", token: func(t *testing.T) string {
			good := jwtSign(t, jwt.SigningMethodHS256, jwtTestSecret, nil, jwtTestClaims(now))
			parts := strings.Split(good, ".")
			forged := jwtRaw(t, map[string]any{"alg": "HS256", "typ": "JWT"}, claims(set("sub", "admin")), parts[2])
			return forged
		}},
		{name: "HS384 with the right secret refused", token: func(t *testing.T) string {
			return jwtSign(t, jwt.SigningMethodHS384, jwtTestSecret, nil, jwtTestClaims(now))
		}},
		{name: "RS256 token refused by an HS256 verifier", token: func(t *testing.T) string {
			return jwtSign(t, jwt.SigningMethodRS256, jwtTestKeys().rsa, nil, jwtTestClaims(now))
		}},
		{name: "alg none refused", token: func(t *testing.T) string {
			return jwtSign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, nil, jwtTestClaims(now))
		}},
		{name: "alg None refused", token: func(t *testing.T) string {
			return jwtRaw(t, map[string]any{"alg": "None", "typ": "JWT"}, jwtTestClaims(now), "")
		}},
		{name: "alg NONE with a signature refused", token: func(t *testing.T) string {
			return jwtRaw(t, map[string]any{"alg": "NONE"}, jwtTestClaims(now), "c2ln")
		}},
		{name: "alg missing refused", token: func(t *testing.T) string {
			return jwtRaw(t, map[string]any{"typ": "JWT"}, jwtTestClaims(now), "")
		}},
		{name: "alg lower-case hs256 refused", token: func(t *testing.T) string {
			good := jwtSign(t, jwt.SigningMethodHS256, jwtTestSecret, nil, jwtTestClaims(now))
			return jwtRaw(t, map[string]any{"alg": "hs256"}, jwtTestClaims(now), strings.Split(good, ".")[2])
		}},
		{name: "crit header refused", token: func(t *testing.T) string {
			return jwtSign(t, jwt.SigningMethodHS256, jwtTestSecret, map[string]any{"crit": []string{"exp"}}, jwtTestClaims(now))
		}},
		{name: "issuer matches accepted", issuer: "https://idp.example", token: hs(claims(set("iss", "https://idp.example"))), wantSub: "user-1"},
		{name: "wrong iss refused", issuer: "https://idp.example", token: hs(claims(set("iss", "https://evil.example")))},
		{name: "iss missing when configured refused", issuer: "https://idp.example", token: hs(claims(none))},
		{name: "aud string matches accepted", audience: "apikeyd", token: hs(claims(set("aud", "apikeyd"))), wantSub: "user-1"},
		{name: "wrong aud refused", audience: "apikeyd", token: hs(claims(set("aud", "other")))},
		{name: "aud array without ours refused", audience: "apikeyd", token: hs(claims(set("aud", []string{"other", "third"})))},
		{name: "aud array with ours accepted", audience: "apikeyd", token: hs(claims(set("aud", []string{"other", "apikeyd"}))), wantSub: "user-1"},
		{name: "aud missing when configured refused", audience: "apikeyd", token: hs(claims(none))},
		{name: "aud with a non-string member refused", audience: "apikeyd", token: hs(claims(set("aud", []any{"apikeyd", 7})))},
		{name: "aud ignored when not configured", token: hs(claims(set("aud", "anything"))), wantSub: "user-1"},
		{name: "empty sub refused", token: hs(claims(set("sub", "")))},
		{name: "sub missing refused", token: hs(claims(del("sub")))},
		{name: "numeric sub refused", token: hs(claims(set("sub", 42)))},
		{name: "255-byte sub accepted", token: hs(claims(set("sub", strings.Repeat("u", 255)))), wantSub: strings.Repeat("u", 255)},
		{name: "256-byte sub refused", token: hs(claims(set("sub", strings.Repeat("u", 256))))},
		{name: "sub with NUL refused", token: hs(claims(set("sub", "user\x00-1")))},
		{name: "differently-cased SUB claim is not the subject", token: hs(claims(func(c jwt.MapClaims) { delete(c, "sub"); c["SUB"] = "admin" }))},
		{name: "kid header is ignored in HS256 mode", token: func(t *testing.T) string {
			return jwtSign(t, jwt.SigningMethodHS256, jwtTestSecret, map[string]any{"kid": "whatever"}, jwtTestClaims(now))
		}, wantSub: "user-1"},
		{name: "empty token refused", token: func(*testing.T) string { return "" }},
		{name: "garbage refused", token: func(*testing.T) string { return "not a token" }},
		{name: "two segments refused", token: func(*testing.T) string { return "eyJhbGciOiJIUzI1NiJ9.e30" }},
		{name: "four segments refused", token: func(t *testing.T) string { return hs(claims(none))(t) + ".x" }},
		{name: "padded base64 refused", token: func(t *testing.T) string {
			parts := strings.Split(hs(claims(none))(t), ".")
			return parts[0] + "==." + parts[1] + "." + parts[2]
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := NewJWTVerifier(JWTConfig{
				Secret:   jwtTestSecret,
				Issuer:   tc.issuer,
				Audience: tc.audience,
				Now:      func() time.Time { return now },
			})
			if err != nil {
				t.Fatalf("NewJWTVerifier: %v", err)
			}
			token := tc.token(t)
			p, err := v.Verify(context.Background(), token)
			if tc.wantSub == "" {
				jwtAssertInvalid(t, token, p, err)
				return
			}
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if p.UserID != tc.wantSub {
				t.Fatalf("sub = %q, want %q", p.UserID, tc.wantSub)
			}
		})
	}
}

func TestJWTVerifyRefusesOversizedAndDottyTokensQuickly(t *testing.T) {
	v, err := NewJWTVerifier(JWTConfig{Secret: jwtTestSecret})
	if err != nil {
		t.Fatal(err)
	}
	bigClaims := jwtTestClaims(time.Now())
	bigClaims["pad"] = strings.Repeat("x", 8<<10)
	tests := []struct {
		name  string
		token string
	}{
		{name: "validly signed token over 8 KiB", token: jwtSign(t, jwt.SigningMethodHS256, jwtTestSecret, nil, bigClaims)},
		{name: "1 MiB of base64", token: strings.Repeat("A", 1<<20)},
		{name: "thousands of dots under 8 KiB", token: strings.Repeat("a.", 4000)},
		{name: "only dots", token: strings.Repeat(".", 8000)},
		{name: "a million dots", token: strings.Repeat(".", 1<<20)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			p, err := v.Verify(context.Background(), tc.token)
			if d := time.Since(start); d > time.Second {
				t.Errorf("Verify took %v", d)
			}
			jwtAssertInvalid(t, tc.token, p, err)
		})
	}
}

func TestJWTVerifyAcceptsTokenJustUnder8KiB(t *testing.T) {
	v, err := NewJWTVerifier(JWTConfig{Secret: jwtTestSecret})
	if err != nil {
		t.Fatal(err)
	}
	var token string
	for pad := 5000; ; pad++ {
		c := jwtTestClaims(time.Now())
		c["pad"] = strings.Repeat("x", pad)
		next := jwtSign(t, jwt.SigningMethodHS256, jwtTestSecret, nil, c)
		if len(next) > 8<<10 {
			break
		}
		token = next
	}
	if len(token) < 8<<10-4 {
		t.Fatalf("test token is %d bytes, want close to 8 KiB", len(token))
	}
	if p, err := v.Verify(context.Background(), token); err != nil || p.UserID != "user-1" {
		t.Fatalf("Verify(%d-byte token) = %q, %v; want user-1", len(token), p.UserID, err)
	}
}

func TestJWTVerifyLogsReasonButNotToken(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	now := jwtTestStart
	v, err := NewJWTVerifier(JWTConfig{Secret: jwtTestSecret, Logger: logger, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	c := jwtTestClaims(now)
	c["exp"] = now.Add(-time.Hour).Unix()
	c["sub"] = "secret-user-id-xyz"
	token := jwtSign(t, jwt.SigningMethodHS256, jwtTestSecret, nil, c)

	p, err := v.Verify(context.Background(), token)
	jwtAssertInvalid(t, token, p, err)
	out := buf.String()
	if !strings.Contains(out, "reason=expired") {
		t.Errorf("log %q lacks the failure reason", out)
	}
	for i, part := range strings.Split(token, ".") {
		if i > 0 && strings.Contains(out, part) {
			t.Errorf("log contains token segment %d", i)
		}
	}
	if strings.Contains(out, "secret-user-id-xyz") {
		t.Errorf("log contains a claim of the token")
	}
}

func TestJWTVerifyAlgorithmConfusionInHS256Mode(t *testing.T) {
	// An HS256 verifier whose secret happens to be a PEM public key still
	// refuses an RS256 token, and a token signed with that "secret" verifies
	// only as HS256.
	secret := jwtRSAPublicPEM(t)
	v, err := NewJWTVerifier(JWTConfig{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	rs := jwtSign(t, jwt.SigningMethodRS256, jwtTestKeys().rsa, nil, jwtTestClaims(time.Now()))
	p, err := v.Verify(context.Background(), rs)
	jwtAssertInvalid(t, rs, p, err)
}

func TestNewJWTVerifierConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     JWTConfig
		wantErr bool
	}{
		{name: "neither secret nor URL", cfg: JWTConfig{}, wantErr: true},
		{name: "empty secret and no URL", cfg: JWTConfig{Secret: []byte{}}, wantErr: true},
		{name: "both secret and URL", cfg: JWTConfig{Secret: jwtTestSecret, JWKSURL: "https://idp.example/jwks.json"}, wantErr: true},
		{name: "31-byte secret", cfg: JWTConfig{Secret: bytes.Repeat([]byte("s"), 31)}, wantErr: true},
		{name: "32-byte secret", cfg: JWTConfig{Secret: bytes.Repeat([]byte("s"), 32)}},
		{name: "https JWKS URL", cfg: JWTConfig{JWKSURL: "https://idp.example/.well-known/jwks.json"}},
		{name: "http JWKS URL", cfg: JWTConfig{JWKSURL: "http://127.0.0.1:1/jwks"}},
		{name: "relative JWKS URL", cfg: JWTConfig{JWKSURL: "/jwks.json"}, wantErr: true},
		{name: "ftp JWKS URL", cfg: JWTConfig{JWKSURL: "ftp://idp.example/jwks"}, wantErr: true},
		{name: "JWKS URL without host", cfg: JWTConfig{JWKSURL: "https:///jwks"}, wantErr: true},
		{name: "unparsable JWKS URL", cfg: JWTConfig{JWKSURL: "http://[::1"}, wantErr: true},
		{name: "JWKS URL that is not a URL", cfg: JWTConfig{JWKSURL: "idp.example"}, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, err := NewJWTVerifier(tc.cfg)
			if tc.wantErr {
				if err == nil || v != nil {
					t.Fatalf("NewJWTVerifier = %v, %v; want an error", v, err)
				}
				return
			}
			if err != nil || v == nil {
				t.Fatalf("NewJWTVerifier: %v", err)
			}
		})
	}
}

func TestJWTVerifierCopiesSecret(t *testing.T) {
	secret := append([]byte(nil), jwtTestSecret...)
	v, err := NewJWTVerifier(JWTConfig{Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	for i := range secret {
		secret[i] = 0
	}
	token, err := MintToken(jwtTestSecret, "user-1", time.Minute, "", "")
	if err != nil {
		t.Fatal(err)
	}
	if p, err := v.Verify(context.Background(), token); err != nil || p.UserID != "user-1" {
		t.Fatalf("Verify = %q, %v", p.UserID, err)
	}
}

func TestMintToken(t *testing.T) {
	t.Run("round trip with issuer and audience", func(t *testing.T) {
		token, err := MintToken(jwtTestSecret, "user-42", time.Hour, "https://idp.example", "apikeyd")
		if err != nil {
			t.Fatal(err)
		}
		v, err := NewJWTVerifier(JWTConfig{Secret: jwtTestSecret, Issuer: "https://idp.example", Audience: "apikeyd"})
		if err != nil {
			t.Fatal(err)
		}
		if p, err := v.Verify(context.Background(), token); err != nil || p.UserID != "user-42" {
			t.Fatalf("Verify = %q, %v", p.UserID, err)
		}
		claims := jwt.MapClaims{}
		if _, _, err := jwt.NewParser().ParseUnverified(token, claims); err != nil {
			t.Fatal(err)
		}
		iat, _ := claims.GetIssuedAt()
		exp, _ := claims.GetExpirationTime()
		if iat == nil || exp == nil || exp.Sub(iat.Time) != time.Hour {
			t.Fatalf("iat %v, exp %v; want exp = iat + 1h", iat, exp)
		}
		if d := time.Since(iat.Time); d < -time.Second || d > time.Minute {
			t.Fatalf("iat %v is not now", iat)
		}
	})
	t.Run("issued at a given time", func(t *testing.T) {
		iat := time.Now().Add(-time.Minute).Truncate(time.Second)
		token, err := MintTokenAt(jwtTestSecret, "user-7", iat, 90*time.Second, "", "")
		if err != nil {
			t.Fatal(err)
		}
		claims := jwt.MapClaims{}
		if _, _, err := jwt.NewParser().ParseUnverified(token, claims); err != nil {
			t.Fatal(err)
		}
		gotIat, _ := claims.GetIssuedAt()
		exp, _ := claims.GetExpirationTime()
		if gotIat == nil || exp == nil || !gotIat.Equal(iat) || !exp.Equal(iat.Add(90*time.Second)) {
			t.Fatalf("iat %v, exp %v; want %v and 90 s later", gotIat, exp, iat)
		}
	})
	t.Run("no issuer or audience claims when empty", func(t *testing.T) {
		token, err := MintToken(jwtTestSecret, "user-1", time.Hour, "", "")
		if err != nil {
			t.Fatal(err)
		}
		claims := jwt.MapClaims{}
		if _, _, err := jwt.NewParser().ParseUnverified(token, claims); err != nil {
			t.Fatal(err)
		}
		if _, ok := claims["iss"]; ok {
			t.Error("iss present")
		}
		if _, ok := claims["aud"]; ok {
			t.Error("aud present")
		}
	})
	t.Run("expired after ttl", func(t *testing.T) {
		token, err := MintToken(jwtTestSecret, "user-1", time.Minute, "", "")
		if err != nil {
			t.Fatal(err)
		}
		later := time.Now().Add(time.Minute + jwtLeeway + 2*time.Second)
		v, err := NewJWTVerifier(JWTConfig{Secret: jwtTestSecret, Now: func() time.Time { return later }})
		if err != nil {
			t.Fatal(err)
		}
		p, err := v.Verify(context.Background(), token)
		jwtAssertInvalid(t, token, p, err)
	})
	t.Run("wrong audience refused by verifier", func(t *testing.T) {
		token, err := MintToken(jwtTestSecret, "user-1", time.Hour, "", "other")
		if err != nil {
			t.Fatal(err)
		}
		v, err := NewJWTVerifier(JWTConfig{Secret: jwtTestSecret, Audience: "apikeyd"})
		if err != nil {
			t.Fatal(err)
		}
		p, err := v.Verify(context.Background(), token)
		jwtAssertInvalid(t, token, p, err)
	})

	bad := []struct {
		name   string
		secret []byte
		sub    string
		ttl    time.Duration
	}{
		{name: "short secret", secret: []byte("short"), sub: "u", ttl: time.Hour},
		{name: "empty sub", secret: jwtTestSecret, sub: "", ttl: time.Hour},
		{name: "256-byte sub", secret: jwtTestSecret, sub: strings.Repeat("u", 256), ttl: time.Hour},
		{name: "zero ttl", secret: jwtTestSecret, sub: "u", ttl: 0},
		{name: "negative ttl", secret: jwtTestSecret, sub: "u", ttl: -time.Hour},
	}
	for _, tc := range bad {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			if token, err := MintToken(tc.secret, tc.sub, tc.ttl, "", ""); err == nil {
				t.Fatalf("MintToken = %q, want an error", token)
			}
		})
	}
}
