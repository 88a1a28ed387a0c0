package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apikey/apikeytest"
	"github.com/apikeyd/apikeyd/internal/apitime"
	"github.com/apikeyd/apikeyd/internal/config"
	"github.com/apikeyd/apikeyd/internal/dbtest"
)

// End-to-end tests of the REST API as docs/contract.md ("Credentials",
// "REST") and the OpenAPI document describe it: every route, every error
// code, over a real listener on SQLite and PostgreSQL.

// noFailLimit switches the failed-authentication limit off, for tests that
// send many bad credentials from the one loopback address on purpose.
func noFailLimit(c *config.Config) { c.AuthFailBurst = 0 }

// wantNoStore checks that an answer may not be cached.
func wantNoStore(t testing.TB, res response) {
	t.Helper()
	if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("status %d: Cache-Control %q, want no-store", res.Status, cc)
	}
}

// createExpiring creates a key for tok that expires in a minute by the
// server's clock (a test advances the clock past it: see advancePast) and
// returns it with its expiry.
func (e *testEnv) createExpiring(tok string) (createdKey, time.Time) {
	e.t.Helper()
	exp := e.Clock.Now().Add(time.Minute).UTC().Truncate(time.Millisecond)
	k := e.create(tok, str(`{"name":"short-lived","expires_at":"`+apitime.Format(exp)+`"}`))
	if k.ExpiresAt == nil || *k.ExpiresAt != apitime.Format(exp) {
		e.t.Fatalf("expires_at %v, want %s", k.ExpiresAt, apitime.Format(exp))
	}
	return k, exp
}

// advancePast moves the server's clock past t, as sleeping until t would,
// without the wait.
func (e *testEnv) advancePast(t time.Time) {
	if d := t.Sub(e.Clock.Now()); d >= 0 {
		e.Clock.Advance(d + time.Millisecond) // the API's timestamps are to the millisecond
	}
}

// created decodes a 201 answer to a create.
func (e *testEnv) created(res response) createdKey {
	e.t.Helper()
	var k createdKey
	if err := json.Unmarshal(res.Body, &k); err != nil || k.Key == "" {
		e.t.Fatalf("create answer %q: %v", res.Body, err)
	}
	return k
}

// unknownKey returns a well-formed key that was never issued.
func (e *testEnv) unknownKey() string {
	k := apikey.NewFormat(apikey.DefaultPrefix).Generate()
	e.remember(k)
	return k
}

// secretPart is the random part of a key: what follows the prefix, before
// the checksum.
func secretPart(key string) string {
	return key[len(apikey.DefaultPrefix) : len(apikey.DefaultPrefix)+32]
}

// hidden wraps a reader so that net/http cannot learn its length and sends
// the body chunked, without Content-Length.
type hidden struct{ r io.Reader }

func (h hidden) Read(p []byte) (int, error) { return h.r.Read(p) }

// postKey sends POST /auth/api-keys with tok, body and contentType ("" sends
// no Content-Type), chunked when asked.
func (e *testEnv) postKey(tok, contentType, body string, chunked bool) response {
	e.t.Helper()
	var rd io.Reader = strings.NewReader(body)
	if chunked {
		rd = hidden{rd}
	}
	req, err := http.NewRequest("POST", e.URL+"/auth/api-keys", rd)
	if err != nil {
		e.t.Fatal(err)
	}
	if chunked {
		req.ContentLength = -1
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	res, err := e.roundTrip(req)
	if err != nil {
		e.t.Fatal(err)
	}
	return res
}

// paddedBody returns a valid create body of exactly n bytes.
func paddedBody(n int) string {
	const head, tail = `{"name":"padded","pad":"`, `"}`
	return head + strings.Repeat("a", n-len(head)-len(tail)) + tail
}

// inParallel runs fn(0) … fn(n-1) at once, released together, and waits.
func inParallel(n int, fn func(i int)) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			fn(i)
		})
	}
	close(start)
	wg.Wait()
}

// sendAll sends n requests at once; req(i) describes the i-th. It fails the
// test on any transport error.
func (e *testEnv) sendAll(t *testing.T, n int, req func(i int) (method, path string, h http.Header, body *string)) []response {
	t.Helper()
	out := make([]response, n)
	errs := make([]error, n)
	inParallel(n, func(i int) {
		m, p, h, b := req(i)
		out[i], errs[i] = e.send(m, p, h, b)
	})
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// statuses counts answers by status.
func statuses(rs []response) map[int]int {
	m := map[int]int{}
	for _, r := range rs {
		m[r.Status]++
	}
	return m
}

func TestRESTCredentials(t *testing.T) {
	t.Parallel()
	eachDBWith(t, noFailLimit, func(t *testing.T, e *testEnv) {
		alice := e.token("alice")
		expiring, exp := e.createExpiring(alice)
		live := e.create(alice, str(`{"name":"live"}`))
		revoked := e.create(alice, nil)
		if res := e.do("DELETE", "/auth/api-keys/"+revoked.ID, bearer(alice), nil); res.Status != http.StatusNoContent {
			t.Fatalf("revoke: %d %s", res.Status, res.Body)
		}
		unknown := e.unknownKey()
		e.advancePast(exp)

		now := e.Clock.Now()
		// hs256 signs alice's token as of now, with the claims given changed.
		hs256 := func(kv ...any) string { return e.sign("alice", issuedAt(now), withClaim(kv...)) }
		otherSecret := []byte("another secret of at least 32 bytes, not the server's")
		// A token for bob carrying the signature of alice's.
		parts := strings.Split(alice, ".")
		bobPayload := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"sub":"bob","iat":%d,"exp":%d}`, now.Unix(), now.Add(time.Hour).Unix())))
		forged := parts[0] + "." + bobPayload + "." + parts[2]
		e.remember(forged)

		type credCase struct {
			name  string
			query string
			h     http.Header
			wire  string // header lines sent verbatim instead of h
			code  string // "" for success
			user  string // on success: the user_id expected
		}
		cases := []credCase{
			// Accepted credentials.
			{name: "BearerJWT", h: bearer(alice), user: "alice"},
			{name: "LowerCaseScheme", h: hdr("Authorization", "bearer "+alice), user: "alice"},
			{name: "UpperCaseScheme", h: hdr("Authorization", "BEARER "+alice), user: "alice"},
			{name: "MixedCaseSchemeAPIKey", h: hdr("Authorization", "bEaReR "+live.Key), user: "alice"},
			{name: "BearerAPIKey", h: bearer(live.Key), user: "alice"},
			{name: "XApiKey", h: hdr("X-Api-Key", live.Key), user: "alice"},
			{name: "JWTExpiredWithinLeeway", h: bearer(hs256("exp", now.Add(-10*time.Second).Unix())), user: "alice"},
			{name: "JWTNotBeforeWithinLeeway", h: bearer(hs256("nbf", now.Add(10*time.Second).Unix())), user: "alice"},

			// Malformed or missing credentials.
			{name: "NoCredential", h: hdr(), code: "MISSING_AUTH"},
			{name: "BothHeaders", h: hdr("Authorization", "Bearer "+alice, "X-Api-Key", live.Key), code: "MISSING_AUTH"},
			{name: "BothHeadersSameKey", h: hdr("Authorization", "Bearer "+live.Key, "X-Api-Key", live.Key), code: "MISSING_AUTH"},
			{name: "TwoAuthorizationHeaders", h: hdr("Authorization", "Bearer "+alice, "Authorization", "Bearer "+alice), code: "MISSING_AUTH"},
			{name: "TwoXApiKeyHeaders", h: hdr("X-Api-Key", live.Key, "X-Api-Key", live.Key), code: "MISSING_AUTH"},
			{name: "BasicScheme", h: hdr("Authorization", "Basic YWxpY2U6c2VjcmV0"), code: "MISSING_AUTH"},
			{name: "TokenScheme", h: hdr("Authorization", "Token "+alice), code: "MISSING_AUTH"},
			{name: "TokenSchemeAPIKey", h: hdr("Authorization", "Token "+live.Key), code: "MISSING_AUTH"},
			{name: "NoScheme", h: hdr("Authorization", alice), code: "MISSING_AUTH"},
			{name: "EmptyAuthorization", wire: "Authorization: \r\n", code: "MISSING_AUTH"},
			{name: "BearerAlone", h: hdr("Authorization", "Bearer"), code: "MISSING_AUTH"},
			{name: "BearerSpace", wire: "Authorization: Bearer \r\n", code: "MISSING_AUTH"},
			{name: "BearerSpaces", wire: "Authorization: Bearer   \r\n", code: "MISSING_AUTH"},
			{name: "EmptyAuthorizationWithXApiKey", wire: "Authorization: \r\nX-Api-Key: " + live.Key + "\r\n", code: "MISSING_AUTH"},
			{name: "BearerTwoValues", h: hdr("Authorization", "Bearer "+alice+" "+alice), code: "MISSING_AUTH"},
			{name: "EmptyXApiKey", wire: "X-Api-Key: \r\n", code: "MISSING_AUTH"},
			{name: "XApiKeyWithScheme", h: hdr("X-Api-Key", "Bearer "+live.Key), code: "MISSING_AUTH"},
			{name: "QueryAPIKey", query: "?api_key=" + live.Key, h: hdr(), code: "MISSING_AUTH"},
			{name: "QueryAccessToken", query: "?access_token=" + alice, h: hdr(), code: "MISSING_AUTH"},
			{name: "QueryToken", query: "?token=" + alice, h: hdr(), code: "MISSING_AUTH"},

			// Credentials that do not verify.
			{name: "JWTExpired", h: bearer(hs256("iat", now.Add(-2*time.Hour).Unix(), "exp", now.Add(-time.Minute).Unix())), code: "INVALID_OR_EXPIRED_TOKEN"},
			{name: "JWTWrongSignature", h: bearer(e.sign("alice", issuedAt(now), signedWith(jwt.SigningMethodHS256, otherSecret))), code: "INVALID_OR_EXPIRED_TOKEN"},
			{name: "JWTAlgNone", h: bearer(e.sign("alice", issuedAt(now), signedWith(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType))), code: "INVALID_OR_EXPIRED_TOKEN"},
			{name: "JWTAlgHS512", h: bearer(e.sign("alice", issuedAt(now), signedWith(jwt.SigningMethodHS512, e.Secret))), code: "INVALID_OR_EXPIRED_TOKEN"},
			{name: "JWTForgedPayload", h: bearer(forged), code: "INVALID_OR_EXPIRED_TOKEN"},
			{name: "JWTWithoutExp", h: bearer(hs256("exp", nil)), code: "INVALID_OR_EXPIRED_TOKEN"},
			{name: "JWTNotYetValid", h: bearer(hs256("nbf", now.Add(2*time.Minute).Unix())), code: "INVALID_OR_EXPIRED_TOKEN"},
			{name: "JWTIssuedInFuture", h: bearer(hs256("iat", now.Add(2*time.Minute).Unix())), code: "INVALID_OR_EXPIRED_TOKEN"},
			{name: "JWTWithoutSub", h: bearer(hs256("sub", nil)), code: "INVALID_OR_EXPIRED_TOKEN"},
			{name: "JWTEmptySub", h: bearer(hs256("sub", "")), code: "INVALID_OR_EXPIRED_TOKEN"},
			{name: "JWTSubOver255Bytes", h: bearer(hs256("sub", strings.Repeat("u", 256))), code: "INVALID_OR_EXPIRED_TOKEN"},
			{name: "JWTGarbage", h: bearer("garbage"), code: "INVALID_OR_EXPIRED_TOKEN"},
			{name: "JWTGarbageSegments", h: bearer("aaaa.bbbb.cccc"), code: "INVALID_OR_EXPIRED_TOKEN"},
			{name: "JWTInXApiKey", h: hdr("X-Api-Key", alice), code: "INVALID_OR_EXPIRED_TOKEN"},
			{name: "KeyBadChecksum", h: bearer(apikeytest.BadChecksum(live.Key)), code: "INVALID_OR_EXPIRED_TOKEN"},
			{name: "KeyBadChecksumXApiKey", h: hdr("X-Api-Key", apikeytest.BadChecksum(live.Key)), code: "INVALID_OR_EXPIRED_TOKEN"},
			{name: "KeyTruncated", h: bearer(live.Key[:20]), code: "INVALID_OR_EXPIRED_TOKEN"},
			{name: "KeyUnknown", h: bearer(unknown), code: "INVALID_OR_EXPIRED_TOKEN"},
			{name: "KeyUnknownXApiKey", h: hdr("X-Api-Key", unknown), code: "INVALID_OR_EXPIRED_TOKEN"},
			{name: "KeyRevoked", h: bearer(revoked.Key), code: "INVALID_OR_EXPIRED_TOKEN"},
			{name: "KeyRevokedXApiKey", h: hdr("X-Api-Key", revoked.Key), code: "INVALID_OR_EXPIRED_TOKEN"},
			{name: "KeyExpired", h: bearer(expiring.Key), code: "INVALID_OR_EXPIRED_TOKEN"},
			{name: "KeyExpiredXApiKey", h: hdr("X-Api-Key", expiring.Key), code: "INVALID_OR_EXPIRED_TOKEN"},
		}
		get := func(path string, c credCase) response {
			if c.wire != "" {
				// net/http's client would drop an empty Authorization
				// and trim trailing spaces.
				return e.sendRaw(rawRequest{Method: "GET", Path: path, Lines: c.wire})
			}
			return e.do("GET", path, c.h, nil)
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				res := get("/auth/verify"+c.query, c)
				wantNoStore(t, res)
				if c.code == "" {
					if res.Status != http.StatusOK || res.JSON(t)["user_id"] != c.user {
						t.Fatalf("verify: %d %s, want 200 for %s", res.Status, res.Body, c.user)
					}
					return
				}
				wantError(t, res, http.StatusUnauthorized, c.code)
				// A management route refuses the credential the same way.
				res = get("/auth/api-keys"+c.query, c)
				wantError(t, res, http.StatusUnauthorized, c.code)
				wantNoStore(t, res)
			})
		}
	})
}

func TestRESTNoStore(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		alice := e.token("alice")
		k := e.create(alice, nil)
		gone := e.create(alice, nil)
		cases := []struct {
			name         string
			method, path string
			h            http.Header
			body         *string
			status       int
		}{
			{"Create", "POST", "/auth/api-keys", bearer(alice), str(`{"name":"n"}`), 201},
			{"List", "GET", "/auth/api-keys", bearer(alice), nil, 200},
			{"Revoke", "DELETE", "/auth/api-keys/" + gone.ID, bearer(alice), nil, 204},
			{"RevokeNotFound", "DELETE", "/auth/api-keys/" + gone.ID, bearer(alice), nil, 404},
			{"VerifyJWT", "GET", "/auth/verify", bearer(alice), nil, 200},
			{"VerifyAPIKey", "GET", "/auth/verify", hdr("X-Api-Key", k.Key), nil, 200},
			{"HeadVerify", "HEAD", "/auth/verify", bearer(alice), nil, 200},
			{"MissingAuth", "GET", "/auth/verify", nil, nil, 401},
			{"InvalidToken", "GET", "/auth/verify", bearer("garbage"), nil, 401},
			{"JWTRequired", "GET", "/auth/api-keys", bearer(k.Key), nil, 403},
			{"InvalidRequest", "POST", "/auth/api-keys", bearer(alice), str(`{`), 400},
			{"UnsupportedMediaType", "POST", "/auth/api-keys", hdr("Authorization", "Bearer "+alice, "Content-Type", "text/plain"), str(`{}`), 415},
			{"PayloadTooLarge", "POST", "/auth/api-keys", bearer(alice), str(paddedBody(70 << 10)), 413},
			{"UnknownRoute", "GET", "/auth/nope", nil, nil, 404},
			{"MethodNotAllowed", "PUT", "/auth/api-keys", bearer(alice), nil, 405},
			{"MethodNotAllowedOnID", "GET", "/auth/api-keys/" + k.ID, bearer(alice), nil, 405},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				res := e.do(c.method, c.path, c.h, c.body)
				if res.Status != c.status {
					t.Fatalf("status %d, want %d: %s", res.Status, c.status, res.Body)
				}
				wantNoStore(t, res)
			})
		}
	})
}

func TestRESTCreate(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		alice := e.token("alice")
		const maxBody = 64 << 10

		t.Run("Accepted", func(t *testing.T) {
			for _, c := range []struct {
				name        string
				contentType string
				body        string
				chunked     bool
				wantName    *string
				wantExpires *string
			}{
				{name: "NoBody"},
				{name: "EmptyObject", body: `{}`},
				{name: "WhitespaceAroundObject", body: " \n{}\t\n "},
				{name: "Name", body: `{"name":"Production server"}`, wantName: str("Production server")},
				{name: "NameTrimmed", body: `{"name":"  Production server \t "}`, wantName: str("Production server")},
				{name: "NameWhitespaceOnlyIsNull", body: `{"name":" \t  "}`},
				{name: "NameEmptyIsNull", body: `{"name":""}`},
				{name: "NameNull", body: `{"name":null}`},
				{name: "NameEscapes", body: `{"name":"caf\u00e9 \"q\""}`, wantName: str(`café "q"`)},
				{name: "Name100TwoByteCodePoints", body: `{"name":"` + strings.Repeat("é", 100) + `"}`, wantName: str(strings.Repeat("é", 100))},
				{name: "Name100FourByteCodePoints", body: `{"name":"` + strings.Repeat("😀", 100) + `"}`, wantName: str(strings.Repeat("😀", 100))},
				{name: "Name100AfterTrim", body: `{"name":"  ` + strings.Repeat("a", 100) + `  "}`, wantName: str(strings.Repeat("a", 100))},
				{name: "ExpiresAt", body: `{"expires_at":"2099-01-15T12:00:00.000Z"}`, wantExpires: str("2099-01-15T12:00:00.000Z")},
				{name: "ExpiresAtWithoutFraction", body: `{"expires_at":"2099-01-15T12:00:00Z"}`, wantExpires: str("2099-01-15T12:00:00.000Z")},
				{name: "ExpiresAtOffsetToUTC", body: `{"expires_at":"2099-01-15T14:00:00.5+02:00"}`, wantExpires: str("2099-01-15T12:00:00.500Z")},
				{name: "ExpiresAtNanoseconds", body: `{"expires_at":"2099-01-15T12:00:00.123456789Z"}`, wantExpires: str("2099-01-15T12:00:00.123Z")},
				{name: "ExpiresAtNull", body: `{"expires_at":null}`},
				{name: "NameAndExpiresAt", body: `{"name":"ci","expires_at":"2099-01-01T00:00:00.000Z"}`, wantName: str("ci"), wantExpires: str("2099-01-01T00:00:00.000Z")},
				{name: "FieldNamesCaseSensitive", body: `{"NAME":"b","name":"a","Expires_At":"soon"}`, wantName: str("a")},
				{name: "UnknownFieldsIgnored", body: `{"color":"blue","name":"x","tags":["a",1,null],"meta":{"deep":[{"name":5}]}}`, wantName: str("x")},
				{name: "CharsetParameter", contentType: "application/json; charset=utf-8", body: `{"name":"x"}`, wantName: str("x")},
				{name: "Chunked", body: `{"name":"chunked"}`, chunked: true, wantName: str("chunked")},
				{name: "ExactlyMaxBody", body: paddedBody(maxBody), wantName: str("padded")},
				{name: "ExactlyMaxBodyChunked", body: paddedBody(maxBody), chunked: true, wantName: str("padded")},
			} {
				t.Run(c.name, func(t *testing.T) {
					ct := c.contentType
					if ct == "" && c.body != "" {
						ct = "application/json"
					}
					before := time.Now().UTC().Truncate(time.Millisecond)
					res := e.postKey(alice, ct, c.body, c.chunked)
					wantNoStore(t, res)
					if res.Status != http.StatusCreated {
						t.Fatalf("status %d: %s", res.Status, res.Body)
					}
					k := e.created(res)
					if !keyPattern.MatchString(k.Key) || !uuidPattern.MatchString(k.ID) || k.KeyPrefix != k.Key[:10] {
						t.Errorf("created %+v", k)
					}
					if loc := res.Header.Get("Location"); loc != "/auth/api-keys/"+k.ID {
						t.Errorf("Location %q", loc)
					}
					if !timestampPattern.MatchString(k.CreatedAt) {
						t.Errorf("created_at %q", k.CreatedAt)
					} else if at, _ := time.Parse(time.RFC3339, k.CreatedAt); at.Before(before) || at.After(time.Now()) {
						t.Errorf("created_at %s is not the time of creation", k.CreatedAt)
					}
					if !reflect.DeepEqual(k.Name, c.wantName) {
						t.Errorf("name %v, want %v", nullable(k.Name), nullable(c.wantName))
					}
					if !reflect.DeepEqual(k.ExpiresAt, c.wantExpires) {
						t.Errorf("expires_at %v, want %v", nullable(k.ExpiresAt), nullable(c.wantExpires))
					}
					// The key is listed as created and it works.
					l, ok := findListed(e.list(alice), k.ID)
					if !ok {
						t.Fatalf("key %s not listed", k.ID)
					}
					if !reflect.DeepEqual(l.Name, c.wantName) || !reflect.DeepEqual(l.ExpiresAt, c.wantExpires) || l.CreatedAt != k.CreatedAt || l.KeyPrefix != k.KeyPrefix {
						t.Errorf("listed %+v, created %+v", l, k)
					}
					if res := e.do("GET", "/auth/verify", hdr("X-Api-Key", k.Key), nil); res.Status != http.StatusOK {
						t.Errorf("new key does not verify: %d %s", res.Status, res.Body)
					}
				})
			}
		})

		t.Run("Refused", func(t *testing.T) {
			mallory := e.token("mallory")
			e.create(mallory, str(`{"name":"the one key"}`))
			tooLarge := paddedBody(maxBody + 1)
			for _, c := range []struct {
				name        string
				contentType string // "-" for none
				body        string
				chunked     bool
				status      int
				code        string
			}{
				{name: "Name101TwoByteCodePoints", body: `{"name":"` + strings.Repeat("é", 101) + `"}`, status: 400, code: "INVALID_REQUEST"},
				{name: "Name101ASCII", body: `{"name":"` + strings.Repeat("a", 101) + `"}`, status: 400, code: "INVALID_REQUEST"},
				{name: "Name101FourByteCodePoints", body: `{"name":"` + strings.Repeat("😀", 101) + `"}`, status: 400, code: "INVALID_REQUEST"},
				{name: "NameBell", body: `{"name":"ding\u0007dong"}`, status: 400, code: "INVALID_REQUEST"},
				{name: "NameNewline", body: `{"name":"two\nlines"}`, status: 400, code: "INVALID_REQUEST"},
				{name: "NameNUL", body: `{"name":"a\u0000b"}`, status: 400, code: "INVALID_REQUEST"},
				{name: "NameDEL", body: `{"name":"a\u007fb"}`, status: 400, code: "INVALID_REQUEST"},
				{name: "NameC1Control", body: `{"name":"a\u0085b"}`, status: 400, code: "INVALID_REQUEST"},
				{name: "NameRawControlByte", body: "{\"name\":\"a\x07b\"}", status: 400, code: "INVALID_REQUEST"},
				{name: "NameBidiOverride", body: `{"name":"invoice\u202egpj.exe"}`, status: 400, code: "INVALID_REQUEST"},
				{name: "NameBidiOverrideRaw", body: "{\"name\":\"invoice\u202egpj.exe\"}", status: 400, code: "INVALID_REQUEST"},
				{name: "NameBidiIsolate", body: `{"name":"a\u2066b"}`, status: 400, code: "INVALID_REQUEST"},
				{name: "NameNumber", body: `{"name":42}`, status: 400, code: "INVALID_REQUEST"},
				{name: "NameObject", body: `{"name":{"first":"a"}}`, status: 400, code: "INVALID_REQUEST"},
				{name: "NameArray", body: `{"name":["a"]}`, status: 400, code: "INVALID_REQUEST"},
				{name: "NameBool", body: `{"name":true}`, status: 400, code: "INVALID_REQUEST"},
				{name: "InvalidUTF8InName", body: "{\"name\":\"caf\xe9\"}", status: 400, code: "INVALID_REQUEST"},
				{name: "InvalidUTF8InUnknownField", body: "{\"note\":\"\xff\xfe\",\"name\":\"x\"}", status: 400, code: "INVALID_REQUEST"},
				{name: "ExpiresAtPast", body: `{"expires_at":"2020-01-01T00:00:00.000Z"}`, status: 400, code: "INVALID_REQUEST"},
				{name: "ExpiresAtJustPast", body: `{"expires_at":"` + apitime.Format(time.Now().Add(-time.Second)) + `"}`, status: 400, code: "INVALID_REQUEST"},
				{name: "ExpiresAtNotTimestamp", body: `{"expires_at":"tomorrow"}`, status: 400, code: "INVALID_REQUEST"},
				{name: "ExpiresAtDateOnly", body: `{"expires_at":"2099-01-01"}`, status: 400, code: "INVALID_REQUEST"},
				{name: "ExpiresAtWithoutZone", body: `{"expires_at":"2099-01-01T00:00:00"}`, status: 400, code: "INVALID_REQUEST"},
				{name: "ExpiresAtEmpty", body: `{"expires_at":""}`, status: 400, code: "INVALID_REQUEST"},
				{name: "ExpiresAtNumber", body: `{"expires_at":4102444800}`, status: 400, code: "INVALID_REQUEST"},
				{name: "ExpiresAtObject", body: `{"expires_at":{}}`, status: 400, code: "INVALID_REQUEST"},
				{name: "ExpiresAtBool", body: `{"expires_at":true}`, status: 400, code: "INVALID_REQUEST"},
				{name: "ValidNameBadExpiresAt", body: `{"name":"ok","expires_at":"soon"}`, status: 400, code: "INVALID_REQUEST"},
				{name: "MalformedJSON", body: `{"name":`, status: 400, code: "INVALID_REQUEST"},
				{name: "MalformedUnquotedKey", body: `{name:"x"}`, status: 400, code: "INVALID_REQUEST"},
				{name: "MalformedTrailingComma", body: `{"name":"x",}`, status: 400, code: "INVALID_REQUEST"},
				{name: "MalformedSingleQuotes", body: `{'name':'x'}`, status: 400, code: "INVALID_REQUEST"},
				{name: "TrailingObject", body: `{} {}`, status: 400, code: "INVALID_REQUEST"},
				{name: "TrailingGarbage", body: `{}x`, status: 400, code: "INVALID_REQUEST"},
				{name: "TrailingObjectAfterValid", body: `{"name":"a"}{"name":"b"}`, status: 400, code: "INVALID_REQUEST"},
				{name: "TopLevelArray", body: `[]`, status: 400, code: "INVALID_REQUEST"},
				{name: "TopLevelArrayOfObject", body: `[{"name":"x"}]`, status: 400, code: "INVALID_REQUEST"},
				{name: "TopLevelString", body: `"x"`, status: 400, code: "INVALID_REQUEST"},
				{name: "TopLevelNumber", body: `1`, status: 400, code: "INVALID_REQUEST"},
				{name: "TopLevelNull", body: `null`, status: 400, code: "INVALID_REQUEST"},
				{name: "DuplicateName", body: `{"name":"a","name":"b"}`, status: 400, code: "INVALID_REQUEST"},
				{name: "DuplicateNameEscaped", body: `{"name":"a","n\u0061me":"b"}`, status: 400, code: "INVALID_REQUEST"},
				{name: "DuplicateNameNull", body: `{"name":null,"name":"b"}`, status: 400, code: "INVALID_REQUEST"},
				{name: "DuplicateExpiresAt", body: `{"expires_at":"2099-01-01T00:00:00Z","expires_at":"2098-01-01T00:00:00Z"}`, status: 400, code: "INVALID_REQUEST"},
				{name: "TextPlain", contentType: "text/plain", body: `{"name":"x"}`, status: 415, code: "UNSUPPORTED_MEDIA_TYPE"},
				{name: "TextPlainJSONCharset", contentType: "text/plain; charset=utf-8", body: `{"name":"x"}`, status: 415, code: "UNSUPPORTED_MEDIA_TYPE"},
				{name: "FormURLEncoded", contentType: "application/x-www-form-urlencoded", body: `name=x`, status: 415, code: "UNSUPPORTED_MEDIA_TYPE"},
				{name: "MultipartForm", contentType: "multipart/form-data; boundary=b", body: "--b\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nx\r\n--b--\r\n", status: 415, code: "UNSUPPORTED_MEDIA_TYPE"},
				{name: "TextJSON", contentType: "text/json", body: `{"name":"x"}`, status: 415, code: "UNSUPPORTED_MEDIA_TYPE"},
				{name: "NoContentType", contentType: "-", body: `{"name":"x"}`, status: 415, code: "UNSUPPORTED_MEDIA_TYPE"},
				{name: "TooLarge", body: tooLarge, status: 413, code: "PAYLOAD_TOO_LARGE"},
				{name: "TooLargeChunked", body: tooLarge, chunked: true, status: 413, code: "PAYLOAD_TOO_LARGE"},
				{name: "FarTooLargeChunked", body: paddedBody(200 << 10), chunked: true, status: 413, code: "PAYLOAD_TOO_LARGE"},
				{name: "TooLargeTextPlain", contentType: "text/plain", body: tooLarge, status: 413, code: "PAYLOAD_TOO_LARGE"},
			} {
				t.Run(c.name, func(t *testing.T) {
					ct := c.contentType
					switch ct {
					case "":
						ct = "application/json"
					case "-":
						ct = ""
					}
					res := e.postKey(mallory, ct, c.body, c.chunked)
					wantError(t, res, c.status, c.code)
					wantNoStore(t, res)
					// Bad input changes nothing.
					if keys := e.list(mallory); len(keys) != 1 || *keys[0].Name != "the one key" {
						t.Fatalf("after a refused create mallory has %+v, want only the one key", keys)
					}
				})
			}
		})

		t.Run("ClientFieldsIgnored", func(t *testing.T) {
			bob := e.token("bob")
			bobs := e.create(bob, nil)
			supplied := e.unknownKey()
			body, _ := json.Marshal(map[string]any{
				"name": "mine", "id": bobs.ID, "key": supplied, "key_prefix": supplied[:10],
				"user_id": "bob", "created_at": "2000-01-01T00:00:00.000Z", "last_used_at": "2000-01-01T00:00:00.000Z",
				"revoked_at": "2000-01-01T00:00:00.000Z",
			})
			k := e.create(alice, str(string(body)))
			if k.ID == bobs.ID || k.Key == supplied || k.KeyPrefix == supplied[:10] || strings.HasPrefix(k.CreatedAt, "2000") {
				t.Fatalf("client-supplied fields were used: %+v", k)
			}
			if _, ok := findListed(e.list(alice), k.ID); !ok {
				t.Error("the key is not alice's")
			}
			if l := e.list(bob); len(l) != 1 || l[0].ID != bobs.ID || l[0].LastUsedAt != nil {
				t.Errorf("bob's keys changed: %+v", l)
			}
			if l, _ := findListed(e.list(alice), k.ID); l.LastUsedAt != nil {
				t.Errorf("last_used_at %q taken from the client", *l.LastUsedAt)
			}
			res := e.do("GET", "/auth/verify", bearer(k.Key), nil)
			if res.Status != http.StatusOK || res.JSON(t)["user_id"] != "alice" || res.Header.Get("X-Auth-Key-Id") != k.ID {
				t.Errorf("the new key verifies as %d %s", res.Status, res.Body)
			}
			wantError(t, e.do("GET", "/auth/verify", bearer(supplied), nil), 401, "INVALID_OR_EXPIRED_TOKEN")
		})

		t.Run("PermissionBeforeBody", func(t *testing.T) {
			k := e.create(alice, nil)
			n := len(e.list(alice))
			wantError(t, e.do("POST", "/auth/api-keys", nil, str(`{"name":`)), 401, "MISSING_AUTH")
			wantError(t, e.do("POST", "/auth/api-keys", bearer(k.Key), str(`{"name":`)), 403, "JWT_REQUIRED")
			wantError(t, e.do("POST", "/auth/api-keys", hdr("X-Api-Key", k.Key), str(paddedBody(70<<10))), 403, "JWT_REQUIRED")
			wantError(t, e.do("POST", "/auth/api-keys", hdr("X-Api-Key", k.Key, "Content-Type", "text/plain"), str(`{}`)), 403, "JWT_REQUIRED")
			if m := len(e.list(alice)); m != n {
				t.Fatalf("%d keys, want %d", m, n)
			}
		})
	})
}

func nullable(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

func findListed(keys []listedKey, id string) (listedKey, bool) {
	for _, k := range keys {
		if k.ID == id {
			return k, true
		}
	}
	return listedKey{}, false
}

func TestRESTKeyLimit(t *testing.T) {
	t.Parallel()
	eachDBWith(t, func(c *config.Config) { c.MaxKeysPerUser = 3 }, func(t *testing.T, e *testEnv) {
		alice, bob := e.token("alice"), e.token("bob")
		expiring, exp := e.createExpiring(alice)
		e.create(alice, nil)
		e.create(alice, str(`{"name":"third"}`))

		refused := func() {
			t.Helper()
			res := e.do("POST", "/auth/api-keys", bearer(alice), str(`{"name":"fourth"}`))
			wantError(t, res, http.StatusForbidden, "KEY_LIMIT_REACHED")
			wantNoStore(t, res)
			if n := len(e.list(alice)); n != 3 {
				t.Fatalf("%d keys after a refused create, want 3", n)
			}
		}
		refused()
		wantError(t, e.do("POST", "/auth/api-keys", bearer(alice), nil), 403, "KEY_LIMIT_REACHED")

		// The limit is per user.
		e.create(bob, nil)

		// An expired key still counts until it is revoked.
		e.advancePast(exp)
		wantError(t, e.do("GET", "/auth/verify", bearer(expiring.Key), nil), 401, "INVALID_OR_EXPIRED_TOKEN")
		refused()
		if l, ok := findListed(e.list(alice), expiring.ID); !ok || l.ExpiresAt == nil || *l.ExpiresAt != *expiring.ExpiresAt {
			t.Fatalf("expired key listed as %+v (found %v)", l, ok)
		}

		// Revoking one frees a slot, exactly one.
		if res := e.do("DELETE", "/auth/api-keys/"+expiring.ID, bearer(alice), nil); res.Status != http.StatusNoContent {
			t.Fatalf("revoke: %d %s", res.Status, res.Body)
		}
		e.create(alice, str(`{"name":"fourth"}`))
		refused()
	})
}

func TestRESTList(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		alice, bob, carol := e.token("alice"), e.token("bob"), e.token("carol")

		// Nobody's keys: an empty array, not null.
		res := e.do("GET", "/auth/api-keys", bearer(carol), nil)
		if res.Status != http.StatusOK || strings.TrimSpace(string(res.Body)) != `{"api_keys":[]}` {
			t.Fatalf("empty list: %d %s", res.Status, res.Body)
		}
		wantNoStore(t, res)

		first := e.create(alice, str(`{"name":"first"}`))
		expiring, exp := e.createExpiring(alice)
		bobs := e.create(bob, str(`{"name":"bob's"}`))
		revoked := e.create(alice, str(`{"name":"revoked"}`))
		last := e.create(alice, nil)
		if res := e.do("DELETE", "/auth/api-keys/"+revoked.ID, bearer(alice), nil); res.Status != http.StatusNoContent {
			t.Fatalf("revoke: %d %s", res.Status, res.Body)
		}
		all := []createdKey{first, expiring, bobs, revoked, last}

		check := func(t *testing.T, user string, keys []listedKey, want ...createdKey) {
			t.Helper()
			var got, wantIDs []string
			for _, k := range keys {
				got = append(got, k.ID)
			}
			for _, k := range want {
				wantIDs = append(wantIDs, k.ID)
			}
			if !slices.Equal(got, wantIDs) {
				t.Fatalf("%s lists %v, want %v (newest first)", user, got, wantIDs)
			}
			for i, k := range keys {
				w := want[i]
				if k.KeyPrefix != w.KeyPrefix || !reflect.DeepEqual(k.Name, w.Name) || k.CreatedAt != w.CreatedAt || !reflect.DeepEqual(k.ExpiresAt, w.ExpiresAt) {
					t.Errorf("listed %+v, created %+v", k, w)
				}
				if k.LastUsedAt != nil {
					t.Errorf("key %s: last_used_at %q before any use", k.ID, *k.LastUsedAt)
				}
			}
		}
		check(t, "alice", e.list(alice), last, expiring, first)
		check(t, "bob", e.list(bob), bobs)
		if keys := e.list(carol); len(keys) != 0 {
			t.Fatalf("carol lists %+v", keys)
		}

		// The list never shows a key, and has exactly the documented fields.
		res = e.do("GET", "/auth/api-keys", bearer(alice), nil)
		for _, k := range all {
			if strings.Contains(string(res.Body), secretPart(k.Key)) {
				t.Fatal("a key's secret appears in the list")
			}
		}
		var raw struct {
			APIKeys []map[string]any `json:"api_keys"`
		}
		if err := json.Unmarshal(res.Body, &raw); err != nil {
			t.Fatal(err)
		}
		for _, k := range raw.APIKeys {
			var fields []string
			for f := range k {
				fields = append(fields, f)
			}
			slices.Sort(fields)
			if want := []string{"allowed_ips", "created_at", "created_by", "credits", "enabled", "expires_at", "id", "key_prefix", "last_used_at", "last_used_ip", "last_used_user_agent", "meta", "name", "owner", "rate_limit", "replaced_by", "scopes"}; !slices.Equal(fields, want) {
				t.Errorf("listed fields %v, want %v", fields, want)
			}
			// A personal key: its owner made it.
			if owner := map[string]any{"type": "user", "id": "alice"}; !reflect.DeepEqual(k["owner"], owner) || k["created_by"] != "alice" {
				t.Errorf("key %v: owner %v, created_by %v; want %v and alice", k["id"], k["owner"], k["created_by"], owner)
			}
		}

		// An expired key stays listed, with its expires_at.
		e.advancePast(exp)
		check(t, "alice", e.list(alice), last, expiring, first)

		// A use shows in last_used_at; the other keys stay unused.
		if res := e.do("GET", "/auth/verify", hdr("X-Api-Key", first.Key), nil); res.Status != http.StatusOK {
			t.Fatalf("verify: %d %s", res.Status, res.Body)
		}
		deadline := time.Now().Add(5 * time.Second)
		for {
			keys := e.list(alice)
			if used, _ := findListed(keys, first.ID); used.LastUsedAt != nil {
				if !timestampPattern.MatchString(*used.LastUsedAt) || *used.LastUsedAt < first.CreatedAt {
					t.Errorf("last_used_at %q", *used.LastUsedAt)
				}
				for _, k := range keys {
					if k.ID != first.ID && k.LastUsedAt != nil {
						t.Errorf("unused key %s has last_used_at %q", k.ID, *k.LastUsedAt)
					}
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("last_used_at not set within 5 s of the first use")
			}
			time.Sleep(50 * time.Millisecond)
		}
		if keys := e.list(bob); keys[0].LastUsedAt != nil {
			t.Errorf("bob's key has last_used_at %q", *keys[0].LastUsedAt)
		}
	})
}

func TestRESTRevoke(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		alice, bob := e.token("alice"), e.token("bob")
		mine := e.create(alice, nil)
		kept := e.create(alice, nil)
		bobs := e.create(bob, str(`{"name":"bob's"}`))

		res := e.do("DELETE", "/auth/api-keys/"+mine.ID, bearer(alice), nil)
		if res.Status != http.StatusNoContent || len(res.Body) != 0 {
			t.Fatalf("revoke: %d %q", res.Status, res.Body)
		}
		wantNoStore(t, res)
		wantError(t, e.do("GET", "/auth/verify", bearer(mine.Key), nil), 401, "INVALID_OR_EXPIRED_TOKEN")

		var first []byte
		for _, c := range []struct{ name, id string }{
			{"OtherUsersKey", bobs.ID},
			{"UnknownID", "0190a8f2-7b3c-7def-8abc-0123456789ab"},
			{"MalformedID", "not-a-uuid"},
			{"NumericID", "123"},
			{"AlreadyRevoked", mine.ID},
		} {
			t.Run(c.name, func(t *testing.T) {
				res := e.do("DELETE", "/auth/api-keys/"+c.id, bearer(alice), nil)
				wantError(t, res, http.StatusNotFound, "NOT_FOUND")
				wantNoStore(t, res)
				// The answer never tells which case it is.
				if first == nil {
					first = res.Body
				} else if !bytes.Equal(res.Body, first) {
					t.Errorf("body %q differs from %q", res.Body, first)
				}
			})
		}

		// Nothing else changed: bob's key still works and is still his; alice
		// keeps her other key.
		res = e.do("GET", "/auth/verify", hdr("X-Api-Key", bobs.Key), nil)
		if res.Status != http.StatusOK || res.JSON(t)["user_id"] != "bob" {
			t.Fatalf("bob's key after alice's attempt: %d %s", res.Status, res.Body)
		}
		if l := e.list(bob); len(l) != 1 || l[0].ID != bobs.ID {
			t.Fatalf("bob's keys %+v", l)
		}
		if l := e.list(alice); len(l) != 1 || l[0].ID != kept.ID {
			t.Fatalf("alice's keys %+v", l)
		}
		// Bob can still revoke his own key.
		if res := e.do("DELETE", "/auth/api-keys/"+bobs.ID, bearer(bob), nil); res.Status != http.StatusNoContent {
			t.Fatalf("bob's revoke: %d %s", res.Status, res.Body)
		}
	})
}

func TestRESTVerify(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		alice := e.token("alice")
		k := e.create(alice, nil)
		for _, c := range []struct {
			name  string
			h     http.Header
			body  map[string]any
			keyID string
		}{
			{"JWT", bearer(alice), map[string]any{"user_id": "alice", "auth_method": "jwt", "key_id": nil, "scopes": nil}, ""},
			{"APIKeyBearer", bearer(k.Key), map[string]any{"user_id": "alice", "auth_method": "api_key", "key_id": k.ID, "scopes": nil}, k.ID},
			{"APIKeyXApiKey", hdr("X-Api-Key", k.Key), map[string]any{"user_id": "alice", "auth_method": "api_key", "key_id": k.ID, "scopes": nil}, k.ID},
		} {
			t.Run(c.name, func(t *testing.T) {
				res := e.do("GET", "/auth/verify", c.h, nil)
				if res.Status != http.StatusOK {
					t.Fatalf("status %d: %s", res.Status, res.Body)
				}
				if got := res.JSON(t); !reflect.DeepEqual(got, c.body) {
					t.Errorf("body %s, want %v", res.Body, c.body)
				}
				if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
					t.Errorf("Content-Type %q", ct)
				}
				if v := res.Header.Values("X-Auth-User-Id"); !slices.Equal(v, []string{"alice"}) {
					t.Errorf("X-Auth-User-Id %q", v)
				}
				if v := res.Header.Values("X-Auth-Org-Id"); len(v) != 0 {
					t.Errorf("X-Auth-Org-Id %q for a user", v)
				}
				v := res.Header.Values("X-Auth-Key-Id")
				if c.keyID == "" && len(v) != 0 || c.keyID != "" && !slices.Equal(v, []string{c.keyID}) {
					t.Errorf("X-Auth-Key-Id %q, want %q", v, c.keyID)
				}
				wantNoStore(t, res)
			})
		}
		t.Run("Errors", func(t *testing.T) {
			for _, c := range []struct {
				name string
				h    http.Header
				code string
			}{
				{"NoCredential", nil, "MISSING_AUTH"},
				{"BothHeaders", hdr("Authorization", "Bearer "+alice, "X-Api-Key", k.Key), "MISSING_AUTH"},
				{"BadChecksum", hdr("X-Api-Key", apikeytest.BadChecksum(k.Key)), "INVALID_OR_EXPIRED_TOKEN"},
				{"UnknownKey", bearer(e.unknownKey()), "INVALID_OR_EXPIRED_TOKEN"},
			} {
				t.Run(c.name, func(t *testing.T) {
					res := e.do("GET", "/auth/verify", c.h, nil)
					wantError(t, res, http.StatusUnauthorized, c.code)
					if res.Header.Get("X-Auth-User-Id") != "" || res.Header.Get("X-Auth-Key-Id") != "" {
						t.Errorf("a refused verification carries X-Auth headers: %v", res.Header)
					}
				})
			}
		})
	})
}

func TestRESTRoutes(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		alice := e.token("alice")
		k := e.create(alice, nil)

		for _, c := range []struct{ method, path string }{
			{"GET", "/healthz"}, {"GET", "/readyz"}, {"HEAD", "/healthz"}, {"HEAD", "/readyz"},
		} {
			t.Run(c.method+strings.ReplaceAll(c.path, "/", "_"), func(t *testing.T) {
				res := e.do(c.method, c.path, nil, nil)
				if res.Status != http.StatusOK {
					t.Fatalf("status %d: %s", res.Status, res.Body)
				}
				if c.method == "GET" {
					res.JSON(t)
				}
			})
		}

		t.Run("NotFound", func(t *testing.T) {
			for _, c := range []struct {
				name, method, path string
				h                  http.Header
			}{
				{"RootSubpath", "GET", "/nope/", nil},
				{"Nope", "GET", "/nope", nil},
				{"AuthNope", "GET", "/auth/nope", nil},
				{"AuthNopeWithJWT", "POST", "/auth/nope", bearer(alice)},
				{"KeysTrailingSlash", "GET", "/auth/api-keys/", bearer(alice)},
				{"KeyIDSubpath", "DELETE", "/auth/api-keys/" + k.ID + "/x", bearer(alice)},
				{"HealthzSubpath", "GET", "/healthz/x", nil},
			} {
				t.Run(c.name, func(t *testing.T) {
					res := e.do(c.method, c.path, c.h, nil)
					wantError(t, res, http.StatusNotFound, "NOT_FOUND")
					if strings.HasPrefix(c.path, "/auth/") {
						wantNoStore(t, res)
					}
				})
			}
		})

		t.Run("MethodNotAllowed", func(t *testing.T) {
			for _, c := range []struct {
				name, method, path string
				allow              []string
			}{
				{"PutKeys", "PUT", "/auth/api-keys", []string{"GET", "HEAD", "POST"}},
				{"DeleteKeys", "DELETE", "/auth/api-keys", []string{"GET", "HEAD", "POST"}},
				{"PatchKeys", "PATCH", "/auth/api-keys", []string{"GET", "HEAD", "POST"}},
				{"GetKeyID", "GET", "/auth/api-keys/" + k.ID, []string{"DELETE", "PATCH"}},
				{"PostKeyID", "POST", "/auth/api-keys/" + k.ID, []string{"DELETE", "PATCH"}},
				{"PutKeyID", "PUT", "/auth/api-keys/" + k.ID, []string{"DELETE", "PATCH"}},
				{"GetRoll", "GET", "/auth/api-keys/" + k.ID + "/roll", []string{"POST"}},
				{"PostVerify", "POST", "/auth/verify", []string{"GET", "HEAD"}},
				{"DeleteVerify", "DELETE", "/auth/verify", []string{"GET", "HEAD"}},
				{"PostHealthz", "POST", "/healthz", []string{"GET", "HEAD"}},
				{"PostReadyz", "POST", "/readyz", []string{"GET", "HEAD"}},
			} {
				t.Run(c.name, func(t *testing.T) {
					res := e.do(c.method, c.path, bearer(alice), nil)
					wantError(t, res, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
					var allow []string
					for m := range strings.SplitSeq(res.Header.Get("Allow"), ",") {
						allow = append(allow, strings.TrimSpace(m))
					}
					slices.Sort(allow)
					if !slices.Equal(allow, c.allow) {
						t.Errorf("Allow %q, want %v", res.Header.Get("Allow"), c.allow)
					}
					if strings.HasPrefix(c.path, "/auth/") {
						wantNoStore(t, res)
					}
				})
			}
			// A refused method changed nothing: the key still works.
			if res := e.do("GET", "/auth/verify", bearer(k.Key), nil); res.Status != http.StatusOK {
				t.Fatalf("key after 405s: %d %s", res.Status, res.Body)
			}
		})
	})
}

func TestRESTDatabaseUnreachable(t *testing.T) {
	t.Parallel()
	const password = "some-password"
	e := newEnvDSN(t, "postgres://postgres:"+password+"@127.0.0.1:1/x?sslmode=disable", func(c *config.Config) { c.Migrate = false })
	e.remember(password)
	alice := e.token("alice")
	key := e.unknownKey()

	for _, c := range []struct {
		name, method, path string
		h                  http.Header
		body               *string
	}{
		{"VerifyAPIKeyBearer", "GET", "/auth/verify", bearer(key), nil},
		{"VerifyXApiKey", "GET", "/auth/verify", hdr("X-Api-Key", key), nil},
		{"List", "GET", "/auth/api-keys", bearer(alice), nil},
		{"Create", "POST", "/auth/api-keys", bearer(alice), str(`{"name":"x"}`)},
		{"CreateNoBody", "POST", "/auth/api-keys", bearer(alice), nil},
		{"Revoke", "DELETE", "/auth/api-keys/0190a8f2-7b3c-7def-8abc-0123456789ab", bearer(alice), nil},
		{"Readyz", "GET", "/readyz", nil, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			res := e.do(c.method, c.path, c.h, c.body)
			wantError(t, res, http.StatusServiceUnavailable, "SERVER_BUSY")
			if strings.HasPrefix(c.path, "/auth/") {
				wantNoStore(t, res)
			}
			if strings.Contains(string(res.Body), password) || strings.Contains(string(res.Body), "127.0.0.1:1") {
				t.Errorf("the answer reveals the database: %s", res.Body)
			}
		})
	}

	// What needs no database still works.
	t.Run("Healthz", func(t *testing.T) {
		if res := e.do("GET", "/healthz", nil, nil); res.Status != http.StatusOK {
			t.Fatalf("healthz: %d %s", res.Status, res.Body)
		}
	})
	t.Run("VerifyJWT", func(t *testing.T) {
		if res := e.do("GET", "/auth/verify", bearer(alice), nil); res.Status != http.StatusOK {
			t.Fatalf("verify: %d %s", res.Status, res.Body)
		}
	})
	t.Run("BadChecksumNeedsNoDatabase", func(t *testing.T) {
		wantError(t, e.do("GET", "/auth/verify", bearer(apikeytest.BadChecksum(key)), nil), 401, "INVALID_OR_EXPIRED_TOKEN")
	})
	t.Run("MalformedIDNeedsNoDatabase", func(t *testing.T) {
		wantError(t, e.do("DELETE", "/auth/api-keys/not-a-uuid", bearer(alice), nil), 404, "NOT_FOUND")
	})
	// The outage is logged for operators, without the password (the
	// harness checks the whole log again at cleanup).
	if logs := e.Logs.String(); !strings.Contains(logs, "SERVER_BUSY") {
		t.Error("the outage is not logged")
	} else if strings.Contains(logs, password) {
		t.Error("the log reveals the database password")
	}
}

func TestRESTInternalError(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		alice := e.token("alice")
		k := e.create(alice, nil)
		if _, err := e.App.DB.ExecContext(context.Background(), "DROP TABLE api_keys"); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			name, method, path string
			h                  http.Header
			body               *string
		}{
			{"List", "GET", "/auth/api-keys", bearer(alice), nil},
			{"Create", "POST", "/auth/api-keys", bearer(alice), str(`{"name":"x"}`)},
			{"Revoke", "DELETE", "/auth/api-keys/" + k.ID, bearer(alice), nil},
			{"Verify", "GET", "/auth/verify", hdr("X-Api-Key", k.Key), nil},
		} {
			t.Run(c.name, func(t *testing.T) {
				res := e.do(c.method, c.path, c.h, c.body)
				wantError(t, res, http.StatusInternalServerError, "INTERNAL")
				wantNoStore(t, res)
				if msg := res.JSON(t)["error"]; msg != "internal error" {
					t.Errorf("message %q reveals more than \"internal error\"", msg)
				}
			})
		}
		if !strings.Contains(e.Logs.String(), "api_keys") {
			t.Error("the cause is not logged for operators")
		}
	})
}

func TestRESTRateLimit(t *testing.T) {
	t.Parallel()
	const burst = 5
	limited := func(c *config.Config) { c.AuthFailBurst = burst }
	for _, db := range dbtest.Names {
		t.Run(db, func(t *testing.T) {
			t.Run("Burst", func(t *testing.T) {
				e := newEnv(t, db, limited)
				alice := e.token("alice")
				k := e.create(alice, nil)
				bad := []struct {
					h    http.Header
					code string
				}{
					{bearer("garbage"), "INVALID_OR_EXPIRED_TOKEN"},
					{hdr("X-Api-Key", apikeytest.BadChecksum(k.Key)), "INVALID_OR_EXPIRED_TOKEN"},
					{hdr("Authorization", "Basic eA=="), "MISSING_AUTH"},
					{bearer(e.unknownKey()), "INVALID_OR_EXPIRED_TOKEN"},
					{hdr("X-Api-Key", ""), "MISSING_AUTH"},
				}
				for _, b := range bad[:burst] {
					wantError(t, e.do("GET", "/auth/verify", b.h, nil), 401, b.code)
				}
				// From now on every credential is refused, even a valid one.
				var retry int
				for _, h := range []http.Header{bearer("garbage"), bearer(alice), hdr("X-Api-Key", k.Key)} {
					res := e.do("GET", "/auth/verify", h, nil)
					wantError(t, res, http.StatusTooManyRequests, "RATE_LIMITED")
					wantNoStore(t, res)
					var err error
					if retry, err = strconv.Atoi(res.Header.Get("Retry-After")); err != nil || retry < 1 {
						t.Fatalf("Retry-After %q, want whole seconds ≥ 1", res.Header.Get("Retry-After"))
					}
				}
				wantError(t, e.do("GET", "/auth/api-keys", bearer(alice), nil), 429, "RATE_LIMITED")
				wantError(t, e.do("POST", "/auth/api-keys", bearer(alice), nil), 429, "RATE_LIMITED")

				// Requests without a credential are not limited.
				if res := e.do("GET", "/healthz", nil, nil); res.Status != http.StatusOK {
					t.Fatalf("healthz: %d %s", res.Status, res.Body)
				}
				wantError(t, e.do("GET", "/auth/verify", nil, nil), 401, "MISSING_AUTH")

				// After Retry-After, a valid credential passes again.
				time.Sleep(time.Duration(retry) * time.Second)
				if res := e.do("GET", "/auth/verify", bearer(alice), nil); res.Status != http.StatusOK {
					t.Fatalf("after Retry-After: %d %s", res.Status, res.Body)
				}
			})

			t.Run("TrustedProxy", func(t *testing.T) {
				e := newEnv(t, db, limited, func(c *config.Config) { c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")} })
				alice := e.token("alice")
				from := func(addr string, h http.Header) http.Header {
					h = h.Clone()
					h.Set("X-Forwarded-For", addr)
					return h
				}
				for range burst {
					wantError(t, e.do("GET", "/auth/verify", from("203.0.113.1", bearer("garbage")), nil), 401, "INVALID_OR_EXPIRED_TOKEN")
				}
				wantError(t, e.do("GET", "/auth/verify", from("203.0.113.1", bearer(alice)), nil), 429, "RATE_LIMITED")
				// The client cannot escape by prepending addresses of its own.
				wantError(t, e.do("GET", "/auth/verify", from("198.51.100.7, 203.0.113.1", bearer(alice)), nil), 429, "RATE_LIMITED")
				// Another client behind the proxy, and the proxy itself, are not limited.
				wantError(t, e.do("GET", "/auth/verify", from("203.0.113.2", bearer("garbage")), nil), 401, "INVALID_OR_EXPIRED_TOKEN")
				if res := e.do("GET", "/auth/verify", from("203.0.113.2", bearer(alice)), nil); res.Status != http.StatusOK {
					t.Fatalf("another client: %d %s", res.Status, res.Body)
				}
				if res := e.do("GET", "/auth/verify", bearer(alice), nil); res.Status != http.StatusOK {
					t.Fatalf("the proxy's own request: %d %s", res.Status, res.Body)
				}
			})

			t.Run("UntrustedForwardedForIgnored", func(t *testing.T) {
				e := newEnv(t, db, limited)
				alice := e.token("alice")
				for i := range burst {
					h := bearer("garbage")
					h.Set("X-Forwarded-For", fmt.Sprintf("203.0.113.%d", i+1))
					wantError(t, e.do("GET", "/auth/verify", h, nil), 401, "INVALID_OR_EXPIRED_TOKEN")
				}
				h := bearer(alice)
				h.Set("X-Forwarded-For", "198.51.100.99")
				wantError(t, e.do("GET", "/auth/verify", h, nil), 429, "RATE_LIMITED")
			})
		})
	}
}

func TestRESTConcurrency(t *testing.T) {
	t.Parallel()
	for _, db := range dbtest.Names {
		t.Run(db, func(t *testing.T) {
			t.Run("RevokeOneKey", func(t *testing.T) {
				e := newEnv(t, db)
				alice := e.token("alice")
				k := e.create(alice, nil)
				const n = 12
				rs := e.sendAll(t, n, func(int) (string, string, http.Header, *string) {
					return "DELETE", "/auth/api-keys/" + k.ID, bearer(alice), nil
				})
				if got := statuses(rs); got[204] != 1 || got[404] != n-1 {
					t.Fatalf("statuses %v, want one 204 and %d 404", got, n-1)
				}
				for _, r := range rs {
					if r.Status == http.StatusNotFound {
						wantError(t, r, 404, "NOT_FOUND")
					}
				}
				wantError(t, e.do("GET", "/auth/verify", bearer(k.Key), nil), 401, "INVALID_OR_EXPIRED_TOKEN")
			})

			t.Run("CreateAtLimit", func(t *testing.T) {
				const limit, n = 5, 20
				e := newEnv(t, db, func(c *config.Config) { c.MaxKeysPerUser = limit })
				alice := e.token("alice")
				rs := e.sendAll(t, n, func(i int) (string, string, http.Header, *string) {
					return "POST", "/auth/api-keys", bearer(alice), str(fmt.Sprintf(`{"name":"key %d"}`, i))
				})
				if got := statuses(rs); got[201] != limit || got[403] != n-limit {
					t.Fatalf("statuses %v, want %d 201 and %d 403", got, limit, n-limit)
				}
				var ids []string
				for _, r := range rs {
					if r.Status == http.StatusCreated {
						ids = append(ids, e.created(r).ID)
					} else {
						wantError(t, r, 403, "KEY_LIMIT_REACHED")
					}
				}
				keys := e.list(alice)
				var listed []string
				for _, k := range keys {
					listed = append(listed, k.ID)
				}
				slices.Sort(ids)
				slices.Sort(listed)
				if !slices.Equal(ids, listed) {
					t.Fatalf("listed %v, created %v", listed, ids)
				}
			})

			t.Run("CreateManyUsers", func(t *testing.T) {
				e := newEnv(t, db)
				const n = 30
				toks := make([]string, n)
				for i := range toks {
					toks[i] = e.token(fmt.Sprintf("user-%d", i))
				}
				rs := e.sendAll(t, n, func(i int) (string, string, http.Header, *string) {
					return "POST", "/auth/api-keys", bearer(toks[i]), str(`{"name":"parallel"}`)
				})
				for i, r := range rs {
					if r.Status != http.StatusCreated {
						t.Fatalf("user-%d: %d %s", i, r.Status, r.Body)
					}
					k := e.created(r)
					if l := e.list(toks[i]); len(l) != 1 || l[0].ID != k.ID {
						t.Errorf("user-%d lists %+v", i, l)
					}
				}
			})

			t.Run("VerifyWhileCreating", func(t *testing.T) {
				e := newEnv(t, db)
				alice := e.token("alice")
				k := e.create(alice, nil)
				const verifies, creates, lists = 24, 10, 6
				rs := e.sendAll(t, verifies+creates+lists, func(i int) (string, string, http.Header, *string) {
					switch {
					case i < verifies && i%2 == 0:
						return "GET", "/auth/verify", bearer(k.Key), nil
					case i < verifies:
						return "GET", "/auth/verify", hdr("X-Api-Key", k.Key), nil
					case i < verifies+creates:
						return "POST", "/auth/api-keys", bearer(alice), nil
					default:
						return "GET", "/auth/api-keys", bearer(alice), nil
					}
				})
				for i, r := range rs {
					switch {
					case i < verifies:
						if r.Status != http.StatusOK || r.Header.Get("X-Auth-Key-Id") != k.ID {
							t.Errorf("verify %d: %d %s", i, r.Status, r.Body)
						}
					case i < verifies+creates:
						if r.Status != http.StatusCreated {
							t.Fatalf("create: %d %s", r.Status, r.Body)
						}
						e.created(r)
					default:
						if r.Status != http.StatusOK {
							t.Errorf("list: %d %s", r.Status, r.Body)
						}
					}
				}
				if n := len(e.list(alice)); n != 1+creates {
					t.Fatalf("%d keys, want %d", n, 1+creates)
				}
			})
		})
	}
}

func TestRESTKeyNotStored(t *testing.T) {
	t.Parallel()
	eachDB(t, func(t *testing.T, e *testEnv) {
		alice, bob := e.token("alice"), e.token("bob")
		keys := []createdKey{
			e.create(alice, str(`{"name":"named"}`)),
			e.create(alice, str(`{"expires_at":"2099-01-01T00:00:00.000Z"}`)),
			e.create(alice, nil),
			e.create(bob, str(`{"name":"bob's"}`)),
		}
		if res := e.do("GET", "/auth/verify", hdr("X-Api-Key", keys[0].Key), nil); res.Status != http.StatusOK {
			t.Fatalf("verify: %d %s", res.Status, res.Body)
		}
		if res := e.do("DELETE", "/auth/api-keys/"+keys[2].ID, bearer(alice), nil); res.Status != http.StatusNoContent {
			t.Fatalf("revoke: %d %s", res.Status, res.Body)
		}
		if err := e.App.Keys.FlushUsage(context.Background()); err != nil {
			t.Fatal(err)
		}

		var rows []map[string]any
		if err := e.App.DB.NewSelect().Table("api_keys").Scan(context.Background(), &rows); err != nil {
			t.Fatal(err)
		}
		if len(rows) != len(keys) {
			t.Fatalf("%d rows, want %d", len(rows), len(keys))
		}
		text := func(v any) string {
			if b, ok := v.([]byte); ok {
				return string(b)
			}
			return fmt.Sprint(v)
		}
		byID := map[string]map[string]any{}
		for _, row := range rows {
			byID[text(row["id"])] = row
			for col, v := range row {
				for _, k := range keys {
					if s := text(v); strings.Contains(s, k.Key) || strings.Contains(s, secretPart(k.Key)) {
						t.Errorf("column %s holds a key's secret", col)
					}
				}
			}
		}
		for _, k := range keys {
			row, ok := byID[k.ID]
			if !ok {
				t.Fatalf("no row for key %s", k.ID)
			}
			sum := sha256.Sum256([]byte(k.Key))
			if got := strings.TrimSpace(text(row["key_hash"])); got != hex.EncodeToString(sum[:]) {
				t.Errorf("key_hash %q is not the SHA-256 hex of the key", got)
			}
		}

		// Not in the database files either, on any page, for SQLite.
		if path, ok := strings.CutPrefix(e.DSN, "file:"); ok {
			for _, f := range []string{path, path + "-wal"} {
				b, err := os.ReadFile(f)
				if err != nil {
					if os.IsNotExist(err) {
						continue
					}
					t.Fatal(err)
				}
				for _, k := range keys {
					if bytes.Contains(b, []byte(secretPart(k.Key))) {
						t.Errorf("a key's secret is in %s", filepath.Base(f))
					}
				}
			}
		}
	})
}
