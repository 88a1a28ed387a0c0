package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
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
// token for sub: HS256 under the server's secret, issued now, expiring in
// an hour, with the options applied in order. Every token it mints is
// remembered, so the log check fails should one ever be logged.
func (e *testEnv) sign(sub string, opts ...signOption) string {
	e.t.Helper()
	now := time.Now()
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

	// The request as the server parsed it, for the contract check.
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head.String() + r.Body)))
	if err != nil {
		e.t.Fatalf("the raw request does not parse: %v", err)
	}
	req.URL.Scheme, req.URL.Host = "http", addr
	mustContract(e.t).verify(e.t, req, []byte(r.Body), res, b)
	return response{Status: res.StatusCode, Header: res.Header, Body: b}
}
