package auth

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestJWTVerifySubjectIsHeaderSafe: the subject becomes the X-Auth-User-Id
// header a reverse proxy trusts, so one that a proxy would read differently
// (control characters, white space it trims) is refused.
func TestJWTVerifySubjectIsHeaderSafe(t *testing.T) {
	now := jwtTestStart
	v, err := NewJWTVerifier(JWTConfig{Secret: jwtTestSecret, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	sign := func(sub string) string {
		c := jwtTestClaims(now)
		c["sub"] = sub
		return jwtSign(t, jwt.SigningMethodHS256, jwtTestSecret, nil, c)
	}
	for _, sub := range []string{
		"a\r\nX-Injected: 1", "a\n", "a\r", "a\x00b", "a\x1b[31m", "a\x7f", "a\u0085b",
		" a", "a ", "\ta", "a\t", "a\u00a0", "\u3000a", "\u2003a", " ",
	} {
		token := sign(sub)
		p, err := v.Verify(context.Background(), token)
		jwtAssertInvalid(t, token, p, err)
	}
	for _, sub := range []string{"a b", "ünï", "用户", "idp|a", "a\u2028b", `"q"`, "a,b;c=d"} {
		if p, err := v.Verify(context.Background(), sign(sub)); err != nil || p.UserID != sub {
			t.Errorf("sub %q: Verify = %q, %v", sub, p.UserID, err)
		}
	}
	// MintToken refuses the same subjects it would have verified.
	for _, sub := range []string{" a", "a\n", ""} {
		if _, err := MintToken(jwtTestSecret, sub, time.Minute, "", ""); err == nil {
			t.Errorf("MintToken accepted sub %q", sub)
		}
	}
}

// TestJWTVerifyHostileShapesInConstantMemory: a token of any size or shape
// (CVE-2025-30204: many dots made a parser allocate per dot) costs Verify the
// same few bytes, because it is refused before parsing.
func TestJWTVerifyHostileShapesInConstantMemory(t *testing.T) {
	v, err := NewJWTVerifier(JWTConfig{Secret: jwtTestSecret})
	if err != nil {
		t.Fatal(err)
	}
	const per = 2 << 10 // bytes a refusal may allocate, whatever the input
	for _, tc := range []struct {
		name  string
		token string
	}{
		{"Small", "a.b.c"},
		{"ManyDotsUnder8KiB", strings.Repeat(".", 8<<10-1)},
		{"MillionDots", strings.Repeat(".", 1<<20)},
		{"MillionDotSegments", strings.Repeat("a.", 1<<19)},
		{"OneMiBThreeSegments", "eyJ" + strings.Repeat("A", 1<<20) + ".e30.c2ln"},
		{"OneMiBHeader", strings.Repeat("A", 1<<20) + "." + strings.Repeat("B", 1<<10) + "."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := bytesPerCall(func() { _, _ = v.Verify(context.Background(), tc.token) }); got > per {
				t.Errorf("Verify of a %d-byte token allocated %d bytes, want at most %d", len(tc.token), got, per)
			}
		})
	}
}

// bytesPerCall returns the bytes f allocates per call, on average.
func bytesPerCall(f func()) uint64 {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	const runs = 20
	f() // warm up
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range runs {
		f()
	}
	runtime.ReadMemStats(&after)
	return (after.TotalAlloc - before.TotalAlloc) / runs
}
