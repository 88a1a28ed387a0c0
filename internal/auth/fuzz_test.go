package auth

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apperr"
)

// token68Syntax is RFC 9110's token68, written independently of token68.
var token68Syntax = regexp.MustCompile(`^[A-Za-z0-9._~+/-]+=*$`)

// FuzzParseCredential: any pair of Authorization and X-Api-Key headers is
// either refused with MISSING_AUTH or read as one credential that is a
// non-empty token68 taken from a Bearer value or from X-Api-Key.
// Seeds: f.Add below and testdata/fuzz/FuzzParseCredential.
func FuzzParseCredential(f *testing.F) {
	format := apikey.NewFormat(apikey.DefaultPrefix)
	key := format.Generate()
	for _, s := range []struct {
		authz, xkey string
		has         byte // bit 0: send Authorization; bit 1: send X-Api-Key
	}{
		{"Bearer " + key, "", 1},
		{"bearer eyJhbGciOiJIUzI1NiJ9.e30.sig", "", 1},
		{"", key, 2},
		{"Bearer x", key, 3},
		{"Basic YWxpY2U6c2VjcmV0", "", 1},
		{"Bearer ", " ", 3},
		{"Bearer  a\tb", "", 1},
		{"Bearer a==", "a=b", 3},
		{"Bearer \r\nX: y", "\x00", 3},
		{"", "", 0},
	} {
		f.Add(s.authz, s.xkey, s.has)
	}
	f.Fuzz(func(t *testing.T, authz, xkey string, has byte) {
		h := http.Header{}
		if has&1 != 0 {
			h.Set("Authorization", authz)
		}
		if has&2 != 0 {
			h.Set("X-Api-Key", xkey)
		}
		c, err := ParseCredential(h, format)
		if err != nil {
			if apperr.CodeOf(err) != apperr.MissingAuth || c != (Credential{}) {
				t.Fatalf("ParseCredential = %+v, %v; a refusal must be MISSING_AUTH and nothing else", c, err)
			}
			return
		}
		switch c.Kind {
		case None:
			if has&3 != 0 || c.Value != "" {
				t.Fatalf("no credential read from %q", h)
			}
			return
		case APIKey, JWT:
		default:
			t.Fatalf("kind %d", c.Kind)
		}
		if has&3 == 3 {
			t.Fatalf("both headers accepted: %+v", c)
		}
		if !token68Syntax.MatchString(c.Value) {
			t.Fatalf("value %q is not a token68", c.Value)
		}
		if has&2 != 0 {
			if c.Kind != APIKey || c.Value != strings.TrimSpace(xkey) {
				t.Fatalf("X-Api-Key %q read as %+v", xkey, c)
			}
			return
		}
		scheme, rest, ok := strings.Cut(strings.TrimSpace(authz), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(rest) != c.Value {
			t.Fatalf("Authorization %q read as %+v", authz, c)
		}
		if (c.Kind == APIKey) != format.LooksLikeKey(c.Value) {
			t.Fatalf("%q read as kind %d", c.Value, c.Kind)
		}
	})
}

// FuzzJWTVerify: any string handed to Verify as a token is refused with the
// one INVALID_OR_EXPIRED_TOKEN error, which never quotes it, or yields a
// usable subject; it never panics.
// Seeds: f.Add below and testdata/fuzz/FuzzJWTVerify.
func FuzzJWTVerify(f *testing.F) {
	now := jwtTestStart
	v, err := NewJWTVerifier(JWTConfig{Secret: jwtTestSecret, Issuer: "https://idp.example", Audience: "apikeyd", Now: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}
	claims := jwt.MapClaims{"sub": "user-1", "iss": "https://idp.example", "aud": []string{"apikeyd"}, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	for _, m := range []jwt.SigningMethod{jwt.SigningMethodHS256, jwt.SigningMethodHS384} {
		tok, err := jwt.NewWithClaims(m, claims).SignedString(jwtTestSecret)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(tok)
	}
	none, _ := jwt.NewWithClaims(jwt.SigningMethodNone, claims).SignedString(jwt.UnsafeAllowNoneSignatureType)
	for _, s := range []string{none, "", ".", "..", "a.b.c", "eyJhbGciOiJIUzI1NiJ9.e30.", strings.Repeat(".", 100)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		p, err := v.Verify(context.Background(), token)
		if err == nil {
			if !jwtValidID(p.UserID) || p.Method != apikey.MethodJWT || p.Org != nil {
				t.Fatalf("accepted %+v", p)
			}
			return
		}
		if p.UserID != "" || apperr.CodeOf(err) != apperr.InvalidToken || apperr.MessageOf(err) != jwtInvalidMessage {
			t.Fatalf("Verify = %q, %v; want only INVALID_OR_EXPIRED_TOKEN", p.UserID, err)
		}
		if len(token) >= 16 && strings.Contains(apperr.MessageOf(err), token) {
			t.Fatal("the error quotes the token")
		}
	})
}
