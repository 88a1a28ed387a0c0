package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/apikeyd/apikeyd/internal/config"
	"github.com/apikeyd/apikeyd/internal/dbtest"
)

const (
	idpIssuer   = "https://idp.example"
	idpAudience = "apikeyd"
	idpKid      = "k1"
)

// identityProvider is a stand-in for an external identity provider: it
// publishes one ES256 (P-256) public key as a JWK set and signs login
// tokens with the private half.
type identityProvider struct {
	URL     string
	key     *ecdsa.PrivateKey
	fetches atomic.Int32
}

func newIdentityProvider(t *testing.T) *identityProvider {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	idp := &identityProvider{key: key}
	// The JWK is written out by hand, as a provider publishes it: x and y
	// are the point's coordinates, 32 bytes each, left-padded, base64url.
	b64 := func(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
	point, err := key.PublicKey.Bytes() // 0x04 || x || y
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "EC", "crv": "P-256", "kid": idpKid, "alg": "ES256", "use": "sig",
		"x": b64(point[1:33]), "y": b64(point[33:65]),
	}}})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		idp.fetches.Add(1)
		w.Header().Set("Content-Type", "application/jwk-set+json")
		_, _ = w.Write(jwks)
	}))
	t.Cleanup(srv.Close)
	idp.URL = srv.URL
	return idp
}

// sign mints a login token for sub as the provider does: ES256 under its
// key, kid k1, right issuer and audience, issued now, expiring in an hour;
// opts change any of that.
func (idp *identityProvider) sign(e *testEnv, sub string, opts ...signOption) string {
	e.t.Helper()
	own := []signOption{signedWith(jwt.SigningMethodES256, idp.key), withKid(idpKid), withClaim("iss", idpIssuer, "aud", idpAudience)}
	return e.sign(sub, append(own, opts...)...)
}

// TestJWKS: with JWT_JWKS_URL (and no secret) apikeyd accepts the identity
// provider's ES256 login tokens, and only those.
func TestJWKS(t *testing.T) {
	for _, db := range dbtest.Names {
		t.Run(db, func(t *testing.T) {
			idp := newIdentityProvider(t)
			e := newEnv(t, db, func(c *config.Config) {
				c.JWTSecret = ""
				c.JWKSURL = mustURL(idp.URL)
				c.JWTIssuer = idpIssuer
				c.JWTAudience = idpAudience
				c.AuthFailBurst = 0 // many bad tokens from one address, on purpose
			})

			t.Run("ManagesKeys", func(t *testing.T) {
				e := e.subEnv(t)
				tok := idp.sign(e, "idp|alice")

				res := e.do("GET", "/auth/verify", bearer(tok), nil)
				if res.Status != http.StatusOK || res.Header.Get("X-Auth-User-Id") != "idp|alice" {
					t.Fatalf("verify: %d %s", res.Status, res.Body)
				}
				if m := res.JSON(t); m["auth_method"] != "jwt" || m["user_id"] != "idp|alice" {
					t.Errorf("verify body %s", res.Body)
				}

				k := e.create(tok, str(`{"name":"from the IdP"}`))
				if keys := e.list(tok); len(keys) != 1 || keys[0].ID != k.ID {
					t.Fatalf("list %+v", keys)
				}
				if !e.keyVerifies(k.Key) {
					t.Fatal("the new key does not verify")
				}
				gk, gkey := e.gqlCreate(tok, map[string]any{"name": "over GraphQL"})
				if status, out := e.gql(bearer(tok), gqlViewerQuery, nil); status != 200 || len(out.Errors) > 0 {
					t.Fatalf("viewer: %d %+v", status, out)
				} else if v, _ := out.Data["viewer"].(map[string]any); v["userId"] != "idp|alice" || v["authMethod"] != "JWT" {
					t.Errorf("viewer %v", v)
				}
				if res := e.do("DELETE", "/auth/api-keys/"+k.ID, bearer(tok), nil); res.Status != http.StatusNoContent {
					t.Fatalf("revoke: %d %s", res.Status, res.Body)
				}
				if status, out := e.gql(bearer(tok), gqlRevokeMutation, map[string]any{"id": gk.ID}); status != 200 || len(out.Errors) > 0 {
					t.Fatalf("revokeApiKey: %d %+v", status, out)
				}
				if e.keyVerifies(k.Key) || e.keyVerifies(gkey) {
					t.Error("a revoked key still verifies")
				}
				e.wantKeysHeld(tok, 0)
			})

			t.Run("WithinLeeway", func(t *testing.T) {
				e := e.subEnv(t)
				// exp 10 s ago is inside the 30 s leeway.
				tok := idp.sign(e, "idp|late", withClaim("exp", time.Now().Add(-10*time.Second).Unix()))
				if res := e.do("GET", "/auth/verify", bearer(tok), nil); res.Status != http.StatusOK {
					t.Fatalf("verify: %d %s", res.Status, res.Body)
				}
			})

			other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			pub, _ := idp.key.PublicKey.Bytes()
			now := time.Now()
			for _, tc := range []struct {
				name string
				sign func(e *testEnv) string
			}{
				{"WrongIssuer", func(e *testEnv) string {
					return idp.sign(e, "mallory", withClaim("iss", "https://evil.example"))
				}},
				{"NoIssuer", func(e *testEnv) string { return idp.sign(e, "mallory", withClaim("iss", nil)) }},
				{"WrongAudience", func(e *testEnv) string {
					return idp.sign(e, "mallory", withClaim("aud", "another-service"))
				}},
				{"Expired", func(e *testEnv) string {
					return idp.sign(e, "mallory", withClaim("iat", now.Add(-2*time.Hour).Unix(), "exp", now.Add(-time.Hour).Unix()))
				}},
				{"NoExpiry", func(e *testEnv) string { return idp.sign(e, "mallory", withClaim("exp", nil)) }},
				{"NotYetValid", func(e *testEnv) string {
					return idp.sign(e, "mallory", withClaim("nbf", now.Add(time.Hour).Unix()))
				}},
				{"UnknownKid", func(e *testEnv) string { return idp.sign(e, "mallory", withKid("k2")) }},
				{"OtherKeySameKid", func(e *testEnv) string {
					return idp.sign(e, "mallory", signedWith(jwt.SigningMethodES256, other))
				}},
				{"HS256WithSomeSecret", func(e *testEnv) string {
					return idp.sign(e, "mallory", signedWith(jwt.SigningMethodHS256, []byte(strings.Repeat("some secret ", 4))))
				}},
				{"HS256WithThePublicKey", func(e *testEnv) string { // algorithm confusion
					return idp.sign(e, "mallory", signedWith(jwt.SigningMethodHS256, pub))
				}},
				{"AlgNone", func(e *testEnv) string {
					return idp.sign(e, "mallory", signedWith(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType))
				}},
				{"ES256WithoutSignature", func(e *testEnv) string {
					tok := idp.sign(e, "mallory")
					return tok[:strings.LastIndexByte(tok, '.')+1]
				}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					e := e.subEnv(t)
					tok := tc.sign(e)
					wantError(t, e.do("GET", "/auth/verify", bearer(tok), nil), 401, "INVALID_OR_EXPIRED_TOKEN")
					wantError(t, e.do("POST", "/auth/api-keys", bearer(tok), str(`{"name":"forged"}`)), 401, "INVALID_OR_EXPIRED_TOKEN")
					status, out := e.gql(bearer(tok), gqlListQuery, nil)
					wantGQLError(t, status, out, "INVALID_OR_EXPIRED_TOKEN")
				})
			}
			e.wantKeysHeld(idp.sign(e, "mallory"), 0)

			// Unknown kids do not make apikeyd hammer the provider.
			if n := idp.fetches.Load(); n < 1 || n > 2 {
				t.Errorf("the key set was fetched %d times, want 1 or 2", n)
			}
		})
	}
}
