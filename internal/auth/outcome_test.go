package auth

import (
	"context"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/apikeyd/apikeyd/internal/apikey"
)

// TestTokenOutcome checks that a refused login token is told apart for
// metrics (malformed, expired, invalid) while the client error stays one.
func TestTokenOutcome(t *testing.T) {
	clock := newJWTFakeClock()
	v, err := NewJWTVerifier(JWTConfig{Secret: jwtTestSecret, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	now := clock.Now()
	expired := jwtTestClaims(now)
	expired["exp"] = now.Add(-time.Hour).Unix()
	expired["iat"] = now.Add(-2 * time.Hour).Unix()
	cases := []struct {
		name  string
		token string
		want  apikey.Outcome
	}{
		{"TwoSegments", "abc.def", apikey.OutcomeMalformed},
		{"BadBase64", "a!.b!.c!", apikey.OutcomeMalformed},
		{"Expired", jwtSign(t, jwt.SigningMethodHS256, jwtTestSecret, nil, expired), apikey.OutcomeExpired},
		{"OtherSecret", jwtSign(t, jwt.SigningMethodHS256, []byte("another-secret-0123456789-abcdefghij"), nil, jwtTestClaims(now)), apikey.OutcomeInvalid},
		{"NoSubject", jwtSign(t, jwt.SigningMethodHS256, jwtTestSecret, nil, jwt.MapClaims{"exp": now.Add(time.Hour).Unix()}), apikey.OutcomeInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := v.Verify(context.Background(), c.token)
			jwtAssertInvalid(t, c.token, p, err)
			if got := tokenOutcome(err); got != c.want {
				t.Errorf("outcome %q, want %q (err %v)", got, c.want, err)
			}
		})
	}
}
