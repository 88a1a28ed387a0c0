package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/apikeyd/apikeyd/internal/config"
)

// credentials is the body of a register or login.
func credentials(email, password string) *string {
	b, _ := json.Marshal(map[string]string{"email": email, "password": password})
	return str(string(b))
}

// register sends POST /auth/register. The password is remembered: it must
// never be logged.
func (e *testEnv) register(email, password string) response {
	e.t.Helper()
	e.remember(password)
	return e.do("POST", "/auth/register", nil, credentials(email, password))
}

// login sends POST /auth/login with extra headers h (may be nil). The
// password is remembered, as the token of the answer is.
func (e *testEnv) login(h http.Header, email, password string) response {
	e.t.Helper()
	e.remember(password)
	return e.do("POST", "/auth/login", h, credentials(email, password))
}

// mustRegister registers an account and returns its id.
func (e *testEnv) mustRegister(email, password string) string {
	e.t.Helper()
	res := e.register(email, password)
	if res.Status != http.StatusCreated {
		e.t.Fatalf("register %s: %d %s", email, res.Status, res.Body)
	}
	var out struct {
		User struct {
			ID string `json:"id"`
		} `json:"user"`
	}
	if err := json.Unmarshal(res.Body, &out); err != nil {
		e.t.Fatal(err)
	}
	return out.User.ID
}

// mustLogin logs in and returns the access token.
func (e *testEnv) mustLogin(email, password string) string {
	e.t.Helper()
	res := e.login(nil, email, password)
	if res.Status != http.StatusOK {
		e.t.Fatalf("login %s: %d %s", email, res.Status, res.Body)
	}
	var out struct {
		Session struct {
			AccessToken string `json:"access_token"`
		} `json:"session"`
	}
	if err := json.Unmarshal(res.Body, &out); err != nil {
		e.t.Fatal(err)
	}
	return out.Session.AccessToken
}

// passwordHash reads the stored hash of a user straight from the database,
// and remembers it: it must never be logged.
func (e *testEnv) passwordHash(userID string) string {
	e.t.Helper()
	var hash string
	err := e.App.DB.NewSelect().Table("users").Column("password_hash").Where("id = ?", userID).Scan(context.Background(), &hash)
	if err != nil {
		e.t.Fatal(err)
	}
	e.remember(hash)
	return hash
}

// keysOf returns the sorted member names of a JSON object.
func keysOf(m map[string]any) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// TestAccounts walks through the built-in accounts: register, login, and
// the login token managing keys over REST and GraphQL.
func TestAccounts(t *testing.T) {
	const ttl = 45 * time.Minute
	eachDBWith(t, func(c *config.Config) { c.SessionTTL = ttl }, func(t *testing.T, e *testEnv) {
		const password = "correct horse battery staple"
		var answers []response // every answer, to check none carries a secret
		record := func(res response) response { answers = append(answers, res); return res }

		// Register: 201 {"message", "user": {"id", "email"}}, the email as
		// entered but trimmed.
		res := record(e.register("  Alice.Smith@Example.com ", password))
		if res.Status != http.StatusCreated {
			t.Fatalf("register: %d %s", res.Status, res.Body)
		}
		body := res.JSON(t)
		if got := keysOf(body); !slices.Equal(got, []string{"message", "user"}) {
			t.Fatalf("register answer has fields %v: %s", got, res.Body)
		}
		if msg, _ := body["message"].(string); msg == "" {
			t.Errorf("empty message: %s", res.Body)
		}
		user, _ := body["user"].(map[string]any)
		if got := keysOf(user); !slices.Equal(got, []string{"email", "id"}) {
			t.Fatalf("user has fields %v: %s", got, res.Body)
		}
		id, _ := user["id"].(string)
		if !uuidPattern.MatchString(id) || user["email"] != "Alice.Smith@Example.com" {
			t.Errorf("user %v", user)
		}
		if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control %q", cc)
		}

		// The password is stored as an argon2id hash at OWASP's cost.
		hash := e.passwordHash(id)
		if !strings.HasPrefix(hash, "$argon2id$v=19$m=19456,t=2,p=1$") {
			t.Errorf("stored hash %.40q… is not argon2id with the OWASP parameters", hash)
		}

		// One address in another case is the same account.
		wantError(t, record(e.register("alice.smith@EXAMPLE.COM", "another password")), http.StatusConflict, "EMAIL_TAKEN")

		// Log in, the email in any case: 200 with the user and a session.
		before := time.Now()
		res = record(e.login(nil, "ALICE.SMITH@example.com", password))
		after := time.Now()
		if res.Status != http.StatusOK {
			t.Fatalf("login: %d %s", res.Status, res.Body)
		}
		var login struct {
			User    map[string]any `json:"user"`
			Session map[string]any `json:"session"`
		}
		if err := json.Unmarshal(res.Body, &login); err != nil {
			t.Fatal(err)
		}
		if got := keysOf(res.JSON(t)); !slices.Equal(got, []string{"session", "user"}) {
			t.Fatalf("login answer has fields %v", got)
		}
		if got := keysOf(login.User); !slices.Equal(got, []string{"created_at", "email", "id"}) {
			t.Fatalf("login user has fields %v", got)
		}
		if got := keysOf(login.Session); !slices.Equal(got, []string{"access_token", "expires_at", "expires_in", "token_type"}) {
			t.Fatalf("session has fields %v", got)
		}
		if login.User["id"] != id || login.User["email"] != "Alice.Smith@Example.com" || !timestampPattern.MatchString(login.User["created_at"].(string)) {
			t.Errorf("login user %v", login.User)
		}
		if login.Session["token_type"] != "bearer" || login.Session["expires_in"] != ttl.Seconds() {
			t.Errorf("session %v, want token_type bearer and expires_in %v", login.Session, ttl.Seconds())
		}
		expiresAt, err := time.Parse(time.RFC3339Nano, login.Session["expires_at"].(string))
		if err != nil || !timestampPattern.MatchString(login.Session["expires_at"].(string)) {
			t.Fatalf("expires_at %v: %v", login.Session["expires_at"], err)
		}
		if expiresAt.Before(before.Add(ttl).Add(-time.Second)) || expiresAt.After(after.Add(ttl)) {
			t.Errorf("expires_at %v, want SESSION_TTL (%v) after the login", expiresAt, ttl)
		}
		if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control %q", cc)
		}

		// The access token is an HS256 JWT of the configured secret, sub =
		// the user id, exp = expires_at.
		tok, _ := login.Session["access_token"].(string)
		claims := jwt.MapClaims{}
		_, err = jwt.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return e.Secret, nil },
			jwt.WithValidMethods([]string{"HS256"}), jwt.WithExpirationRequired())
		if err != nil {
			t.Fatalf("access token: %v", err)
		}
		sub, _ := claims.GetSubject()
		exp, _ := claims.GetExpirationTime()
		if sub != id || exp == nil || !exp.Equal(expiresAt) {
			t.Errorf("claims sub %q, exp %v; want %s and %v", sub, exp, id, expiresAt)
		}

		// It is the same kind of token every other route accepts: verify,
		// and key management over REST and GraphQL.
		res = e.do("GET", "/auth/verify", bearer(tok), nil)
		if m := res.JSON(t); res.Status != http.StatusOK || m["user_id"] != id || m["auth_method"] != "jwt" {
			t.Fatalf("verify: %d %s", res.Status, res.Body)
		}
		k := e.create(tok, str(`{"name":"from a login"}`))
		if keys := e.list(tok); len(keys) != 1 || keys[0].ID != k.ID {
			t.Fatalf("list: %+v", keys)
		}
		if res := e.do("GET", "/auth/verify", hdr("X-Api-Key", k.Key), nil); res.Header.Get("X-Auth-User-Id") != id {
			t.Errorf("the key does not belong to the account: %d %s", res.Status, res.Body)
		}
		if res := e.do("DELETE", "/auth/api-keys/"+k.ID, bearer(tok), nil); res.Status != http.StatusNoContent {
			t.Fatalf("revoke: %d %s", res.Status, res.Body)
		}

		_, g := e.gql(bearer(tok), `mutation { createApiKey(input: {name: "gql"}) { key apiKey { id name } } }`, nil)
		if len(g.Errors) > 0 {
			t.Fatalf("createApiKey: %v", g.codes())
		}
		created := g.Data["createApiKey"].(map[string]any)
		gid := created["apiKey"].(map[string]any)["id"].(string)
		_, g = e.gql(bearer(tok), `{ apiKeys { id name } viewer { userId authMethod } }`, nil)
		if len(g.Errors) > 0 {
			t.Fatalf("apiKeys: %v", g.codes())
		}
		if ks := g.Data["apiKeys"].([]any); len(ks) != 1 || ks[0].(map[string]any)["id"] != gid {
			t.Errorf("apiKeys %v", ks)
		}
		if v := g.Data["viewer"].(map[string]any); v["userId"] != id || v["authMethod"] != "JWT" {
			t.Errorf("viewer %v", v)
		}
		_, g = e.gql(bearer(tok), `mutation($id: ID!) { revokeApiKey(id: $id) { id } }`, map[string]any{"id": gid})
		if len(g.Errors) > 0 || len(e.list(tok)) != 0 {
			t.Fatalf("revokeApiKey: %v", g.codes())
		}

		// A wrong password and an unknown email: the same answer, byte for
		// byte.
		wrong := record(e.login(nil, "alice.smith@example.com", "wrong horse battery staple"))
		unknown := record(e.login(nil, "nobody@example.com", password))
		wantError(t, wrong, http.StatusUnauthorized, "INVALID_CREDENTIALS")
		if string(wrong.Body) != string(unknown.Body) || unknown.Status != wrong.Status ||
			unknown.Header.Get("WWW-Authenticate") != wrong.Header.Get("WWW-Authenticate") {
			t.Errorf("wrong password: %d %s; unknown email: %d %s", wrong.Status, wrong.Body, unknown.Status, unknown.Body)
		}

		// Neither the password nor its hash is ever in an answer.
		for _, a := range answers {
			if strings.Contains(string(a.Body), password) || strings.Contains(string(a.Body), hash) || strings.Contains(string(a.Body), "argon2") {
				t.Errorf("an answer carries the password or its hash: %s", a.Body)
			}
		}
	})
}

// TestAccountsInvalidRequests: what cannot be an account is 400, and the
// routes take POST only.
func TestAccountsInvalidRequests(t *testing.T) {
	eachDB(t, func(t *testing.T, e *testEnv) {
		emails := []string{
			"", "   ", "alice", "alice@", "@example.com", "alice@localhost", "alice@@example.com",
			"alice smith@example.com", "alice@example..com", "alice\u202e@example.com",
			strings.Repeat("a", 64) + "@" + strings.Repeat("b", 190) + ".com",
		}
		for _, email := range emails {
			wantError(t, e.register(email, "long enough password"), http.StatusBadRequest, "INVALID_REQUEST")
		}
		for _, pw := range []string{"", "1234567", "пароль1", strings.Repeat("x", 1025)} {
			wantError(t, e.register("bob@example.com", pw), http.StatusBadRequest, "INVALID_REQUEST")
		}
		for _, body := range []string{
			`{}`, `{"email":"bob@example.com"}`, `{"password":"long enough password"}`,
			`{"email":null,"password":"long enough password"}`, `{"email":"bob@example.com","password":12345678}`,
			`{"email":"bob@example.com","password":"long enough password"} {}`,
			`{"email":"bob@example.com","email":"eve@example.com","password":"long enough password"}`,
			`["bob@example.com","long enough password"]`, `not json`,
		} {
			for _, path := range []string{"/auth/register", "/auth/login"} {
				wantError(t, e.do("POST", path, nil, str(body)), http.StatusBadRequest, "INVALID_REQUEST")
			}
		}
		for _, path := range []string{"/auth/register", "/auth/login"} {
			wantError(t, e.do("POST", path, nil, nil), http.StatusBadRequest, "INVALID_REQUEST")
			wantError(t, e.do("POST", path, hdr("Content-Type", "text/plain"), credentials("bob@example.com", "long enough password")),
				http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE")
			for _, method := range []string{"GET", "PUT", "DELETE"} {
				res := e.do(method, path, nil, nil)
				wantError(t, res, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
				if allow := res.Header.Get("Allow"); allow != "POST" {
					t.Errorf("%s %s: Allow %q", method, path, allow)
				}
			}
		}
		// Nothing above created an account; a valid one still can be.
		e.mustRegister("bob@example.com", "long enough password")
		// At login a malformed email is no account: the usual 401.
		wantError(t, e.login(nil, "bob", "long enough password"), http.StatusUnauthorized, "INVALID_CREDENTIALS")
	})
}

// TestAccountsConcurrentRegistration: of many registrations of one address
// at once, in different cases, exactly one succeeds.
func TestAccountsConcurrentRegistration(t *testing.T) {
	eachDB(t, func(t *testing.T, e *testEnv) {
		const tries = 6
		statuses := make([]int, tries)
		var wg sync.WaitGroup
		for i := range tries {
			wg.Go(func() {
				email := fmt.Sprintf("%s@example.com", []string{"carol", "Carol", "CAROL"}[i%3])
				e.remember("password number " + strconv.Itoa(i))
				res := e.do("POST", "/auth/register", nil, credentials(email, "password number "+strconv.Itoa(i)))
				statuses[i] = res.Status
			})
		}
		wg.Wait()
		slices.Sort(statuses)
		want := []int{201, 409, 409, 409, 409, 409}
		if !slices.Equal(statuses, want) {
			t.Errorf("statuses %v, want %v", statuses, want)
		}
	})
}

var retryAfterPattern = regexp.MustCompile(`^[1-9][0-9]*$`)

// wantRateLimited checks a 429 RATE_LIMITED answer with Retry-After.
func wantRateLimited(t testing.TB, res response) {
	t.Helper()
	wantError(t, res, http.StatusTooManyRequests, "RATE_LIMITED")
	if ra := res.Header.Get("Retry-After"); !retryAfterPattern.MatchString(ra) {
		t.Errorf("Retry-After %q", ra)
	}
}

// TestAccountsRateLimitPerAddress: failed logins draw on the address's
// budget of failed authentications, which other failures share.
func TestAccountsRateLimitPerAddress(t *testing.T) {
	eachDBWith(t, func(c *config.Config) { c.AuthFailBurst = 3 }, func(t *testing.T, e *testEnv) {
		e.mustRegister("dave@example.com", "correct horse battery staple")
		tok := e.mustLogin("dave@example.com", "correct horse battery staple")
		// Failed logins and a bad token share the address's burst of 3.
		start := time.Now()
		wantError(t, e.login(nil, "dave@example.com", "wrong password"), http.StatusUnauthorized, "INVALID_CREDENTIALS")
		wantError(t, e.login(nil, "someone-else@example.com", "wrong password"), http.StatusUnauthorized, "INVALID_CREDENTIALS")
		wantError(t, e.do("GET", "/auth/verify", bearer("not.a.token"), nil), http.StatusUnauthorized, "INVALID_OR_EXPIRED_TOKEN")
		// The budget refills at one a second, and a loaded machine may take
		// longer than that to hash two passwords: what refilled meanwhile
		// goes to more bad tokens, which cost no hash, until the refusal.
		for extra := 0; ; extra++ {
			res := e.do("GET", "/auth/verify", bearer("not.a.token"), nil)
			if res.Status == http.StatusTooManyRequests {
				break
			}
			wantError(t, res, http.StatusUnauthorized, "INVALID_OR_EXPIRED_TOKEN")
			if refilled := int(time.Since(start)/time.Second) + 1; extra >= refilled {
				t.Fatalf("%d failures past the burst of 3 in %v: the burst does not hold", extra+1, time.Since(start))
			}
		}
		// Even the right password is refused now, and so is any credential.
		wantRateLimited(t, e.login(nil, "dave@example.com", "correct horse battery staple"))
		wantRateLimited(t, e.do("GET", "/auth/verify", bearer(tok), nil))
	})
}

// TestAccountsRateLimitPerAccount: failed logins count against the account
// whatever address they come from, whether or not the account exists.
func TestAccountsRateLimitPerAccount(t *testing.T) {
	configure := func(c *config.Config) {
		c.LoginFailBurst = 3
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
	}
	eachDBWith(t, configure, func(t *testing.T, e *testEnv) {
		e.mustRegister("erin@example.com", "correct horse battery staple")
		e.mustRegister("frank@example.com", "correct horse battery staple")
		from := func(n int) http.Header { return hdr("X-Forwarded-For", fmt.Sprintf("203.0.113.%d", n)) }

		var limited []response
		for _, email := range []string{"erin@example.com", "ghost@example.com"} {
			for i := range 3 {
				// The case of the email does not make another account.
				e2 := email
				if i == 1 {
					e2 = strings.ToUpper(email)
				}
				wantError(t, e.login(from(10*len(limited)+i), e2, "wrong password"), http.StatusUnauthorized, "INVALID_CREDENTIALS")
			}
			// A fourth try from a fresh address, with the right password: 429.
			res := e.login(from(10*len(limited)+5), email, "correct horse battery staple")
			wantRateLimited(t, res)
			limited = append(limited, res)
		}
		// An account that does not exist is limited the same way, so a 429
		// does not tell whether it exists.
		if string(limited[0].Body) != string(limited[1].Body) {
			t.Errorf("a real and a made-up account are limited differently: %s / %s", limited[0].Body, limited[1].Body)
		}
		// Other accounts, from the same addresses, are not affected.
		if res := e.login(from(5), "frank@example.com", "correct horse battery staple"); res.Status != http.StatusOK {
			t.Errorf("another account: %d %s", res.Status, res.Body)
		}
	})
}

// TestAccountsOff: with ACCOUNTS=false, or with an identity provider issuing
// the tokens, the account routes do not exist.
func TestAccountsOff(t *testing.T) {
	cases := map[string]func(*config.Config){
		"AccountsFalse": func(c *config.Config) { c.Accounts = false },
		"JWKS": func(c *config.Config) {
			c.JWTSecret = ""
			c.JWKSURL = mustURL("http://127.0.0.1:1/.well-known/jwks.json")
		},
	}
	for name, configure := range cases {
		t.Run(name, func(t *testing.T) {
			eachDBWith(t, configure, func(t *testing.T, e *testEnv) {
				for _, path := range []string{"/auth/register", "/auth/login"} {
					wantError(t, e.do("POST", path, nil, credentials("gina@example.com", "correct horse battery staple")), http.StatusNotFound, "NOT_FOUND")
					wantError(t, e.do("GET", path, nil, nil), http.StatusNotFound, "NOT_FOUND")
				}
				if !strings.Contains(e.Logs.String(), "built-in accounts are off") {
					t.Error("the log does not say the accounts are off")
				}
			})
		})
	}
}

// TestAccountsTokenIssuerAndAudience: with JWT_ISSUER and JWT_AUDIENCE set,
// login tokens carry them, so they verify.
func TestAccountsTokenIssuerAndAudience(t *testing.T) {
	configure := func(c *config.Config) { c.JWTIssuer = "https://apikeyd.example"; c.JWTAudience = "apikeyd" }
	eachDBWith(t, configure, func(t *testing.T, e *testEnv) {
		id := e.mustRegister("heidi@example.com", "correct horse battery staple")
		tok := e.mustLogin("heidi@example.com", "correct horse battery staple")
		res := e.do("GET", "/auth/verify", bearer(tok), nil)
		if res.Status != http.StatusOK || res.Header.Get("X-Auth-User-Id") != id {
			t.Fatalf("verify: %d %s", res.Status, res.Body)
		}
		claims := jwt.MapClaims{}
		if _, _, err := jwt.NewParser().ParseUnverified(tok, claims); err != nil {
			t.Fatal(err)
		}
		if claims["iss"] != "https://apikeyd.example" || !slices.Contains(claimStrings(claims["aud"]), "apikeyd") {
			t.Errorf("claims %v", claims)
		}
	})
}

// claimStrings reads aud, a string or an array of strings.
func claimStrings(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, s := range v {
			if s, ok := s.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func TestAccountsConfig(t *testing.T) {
	cfg, err := parseConfig("-session-ttl", "90m", "-accounts=false", "-login-fail-burst", "5")
	if err != nil {
		t.Fatal(err)
	}
	if cfg.SessionTTL != 90*time.Minute || cfg.Accounts || cfg.LoginFailBurst != 5 {
		t.Errorf("config %+v", cfg)
	}
	for _, args := range [][]string{
		{"-session-ttl", "0s"}, {"-session-ttl", "1500ms"}, {"-session-ttl", "-1h"}, {"-session-ttl", "soon"},
		{"-accounts", "maybe"}, {"-login-fail-burst", "-1"},
	} {
		if _, err := parseConfig(args...); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}
