package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
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
// token for sub: HS256 under the server's secret, issued now by the
// server's clock, expiring in an hour, with the options applied in order.
// Every token it mints is remembered, so the log check fails should one
// ever be logged.
func (e *testEnv) sign(sub string, opts ...signOption) string {
	e.t.Helper()
	now := e.Clock.Now()
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

// rawRequest is a request as it goes on the wire, for what net/http's
// client would not send: an empty or space-padded header, a foreign Host,
// headers exactly as given (no Content-Type, User-Agent or Accept-Encoding
// added), a body of any type.
type rawRequest struct {
	Method, Path string
	Host         string      // "" for the server's address
	Header       http.Header // written first, in net/http's order
	Lines        string      // then these header lines, byte for byte, each ending in \r\n
	Body         string      // sent with its Content-Length when not empty
}

// sendRaw is the one raw-request helper: it writes r on a new connection,
// reads the answer, and checks the exchange against the OpenAPI document
// as the harness's client does.
func (e *testEnv) sendRaw(r rawRequest) response {
	e.t.Helper()
	addr := strings.TrimPrefix(e.URL, "http://")
	host := r.Host
	if host == "" {
		host = addr
	}
	var head strings.Builder
	fmt.Fprintf(&head, "%s %s HTTP/1.1\r\nHost: %s\r\n", r.Method, r.Path, host)
	if err := r.Header.Write(&head); err != nil {
		e.t.Fatal(err)
	}
	head.WriteString(r.Lines)
	if r.Body != "" {
		fmt.Fprintf(&head, "Content-Length: %d\r\n", len(r.Body))
	}
	if r.Header.Get("Connection") == "" {
		head.WriteString("Connection: close\r\n")
	}
	head.WriteString("\r\n")

	conn, err := net.Dial("tcp", addr)
	if err != nil {
		e.t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, head.String()+r.Body); err != nil {
		e.t.Fatal(err)
	}
	res, err := http.ReadResponse(bufio.NewReader(conn), &http.Request{Method: r.Method})
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		e.t.Fatal(err)
	}

	e.rememberMinted(b)
	// The request as the server parsed it, for the contract check.
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head.String() + r.Body)))
	if err != nil {
		e.t.Fatalf("the raw request does not parse: %v", err)
	}
	req.URL.Scheme, req.URL.Host = "http", addr
	mustContract(e.t).verify(e.t, req, []byte(r.Body), res, b)
	return response{Status: res.StatusCode, Header: res.Header, Body: b}
}

// rememberMinted remembers every secret an answer hands out: an API key
// ("key", from REST or GraphQL), a login token ("access_token", from
// /auth/login) or an invitation's token ("token", from REST or GraphQL),
// wherever it sits in a JSON body. Every answer the harness
// reads passes through it, so no key or token a test has the server mint
// can reach the log unnoticed, however the test asked for it.
func (e *testEnv) rememberMinted(body []byte) {
	var v any
	if json.Unmarshal(body, &v) != nil {
		return
	}
	var walk func(v any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			for name, m := range v {
				if s, ok := m.(string); ok && (name == "key" || name == "access_token" || name == "token") {
					e.remember(s)
				}
				walk(m)
			}
		case []any:
			for _, m := range v {
				walk(m)
			}
		}
	}
	walk(v)
}

// TestHarnessRemembersMintedSecrets: a key or login token the server hands
// out is remembered for the log check however the test asked for it, even
// by a bare e.do or sendRaw, and so is every token sign mints.
func TestHarnessRemembersMintedSecrets(t *testing.T) {
	e := newEnv(t, "sqlite")
	remembered := func(what, s string) {
		t.Helper()
		e.mu.Lock()
		defer e.mu.Unlock()
		if s == "" || !slices.Contains(e.secrets, s) || !slices.Contains(e.secrets, hashOf(s)) {
			t.Errorf("%s %.10s… is not remembered", what, s)
		}
	}
	tok := e.sign("alice", signedWith(jwt.SigningMethodHS512, e.Secret))
	remembered("a signed token", tok)
	tok = e.token("alice")

	res := e.do("POST", "/auth/api-keys", bearer(tok), nil)
	key, _ := res.JSON(t)["key"].(string)
	remembered("a key created over REST", key)

	res = e.sendRaw(rawRequest{Method: "POST", Path: "/auth/api-keys", Header: hdr("Authorization", "Bearer "+tok, "Content-Type", "application/json"), Body: `{"name":"raw"}`})
	key, _ = res.JSON(t)["key"].(string)
	remembered("a key created by a raw request", key)

	_, out := e.gql(bearer(tok), `mutation { createApiKey { key } }`, nil)
	var created struct{ Key string }
	out.decodeField(t, "createApiKey", &created)
	remembered("a key created over GraphQL", created.Key)

	e.mustRegister("harness@example.com", "correct horse battery staple")
	res = e.do("POST", "/auth/login", nil, credentials("harness@example.com", "correct horse battery staple"))
	session, _ := res.JSON(t)["session"].(map[string]any)
	access, _ := session["access_token"].(string)
	remembered("a login token", access)

	res = e.do("POST", "/auth/orgs", bearer(tok), str(`{"name":"Harness"}`))
	org, _ := res.JSON(t)["id"].(string)
	res = e.do("POST", "/auth/orgs/"+org+"/invitations", bearer(tok), str(`{"role":"member"}`))
	invitation, _ := res.JSON(t)["token"].(string)
	remembered("an invitation's token", invitation)
}

// listedRaw returns the key id as GET /auth/api-keys lists it, raw.
func (e *testEnv) listedRaw(tok, id string) []byte {
	e.t.Helper()
	res := e.do("GET", "/auth/api-keys", bearer(tok), nil)
	var out struct {
		APIKeys []json.RawMessage `json:"api_keys"`
	}
	if err := json.Unmarshal(res.Body, &out); err != nil {
		e.t.Fatal(err)
	}
	for _, k := range out.APIKeys {
		var head struct {
			ID string `json:"id"`
		}
		_ = json.Unmarshal(k, &head)
		if head.ID == id {
			return k
		}
	}
	e.t.Fatalf("key %s is not listed", id)
	return nil
}
