// Package auth finds who is calling: it parses the credential of a request,
// verifies it (a JWT here, an API key through apikey.Service) and puts the
// principal, or the reason there is none, in the request's context.
package auth

import (
	"net/http"
	"strings"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apperr"
)

// Kind is the kind of credential a request carries.
type Kind int

// Credential kinds.
const (
	None Kind = iota
	JWT
	APIKey
)

// Credential is a credential as presented, not yet verified.
type Credential struct {
	Kind  Kind
	Value string
}

// method is the authentication method c would give, MethodNone when c is
// no credential.
func (c Credential) method() apikey.Method {
	switch c.Kind {
	case APIKey:
		return apikey.MethodAPIKey
	case JWT:
		return apikey.MethodJWT
	}
	return apikey.MethodNone
}

var errMalformed = apperr.New(apperr.MissingAuth, "malformed credentials: send one of 'Authorization: Bearer <token>' or 'X-Api-Key: <key>'")

// ParseCredential reads the credential of a request from its headers:
// "Authorization: Bearer <value>" (an API key when the value starts with the
// key prefix, otherwise a JWT) or "X-Api-Key: <key>". Both at once, a repeated
// header, another scheme or an empty value are MISSING_AUTH. Credentials in
// the query string are never read.
func ParseCredential(h http.Header, f apikey.Format) (Credential, error) {
	authz, xkey := h.Values("Authorization"), h.Values("X-Api-Key")
	switch {
	case len(authz) == 0 && len(xkey) == 0:
		return Credential{}, nil
	case len(authz)+len(xkey) > 1:
		return Credential{}, errMalformed
	case len(xkey) == 1:
		v := strings.TrimSpace(xkey[0])
		if !token68(v) {
			return Credential{}, errMalformed
		}
		return Credential{Kind: APIKey, Value: v}, nil
	}
	scheme, v, ok := strings.Cut(strings.TrimSpace(authz[0]), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return Credential{}, errMalformed
	}
	v = strings.TrimSpace(v)
	if !token68(v) {
		return Credential{}, errMalformed
	}
	if f.LooksLikeKey(v) {
		return Credential{Kind: APIKey, Value: v}, nil
	}
	return Credential{Kind: JWT, Value: v}, nil
}

// token68 reports whether v is a non-empty token68 (RFC 9110 §11.2), the
// syntax of bearer tokens; API keys and JWTs both fit it. Padding ('=') may
// only end it: "==" alone is not a token68.
func token68(v string) bool {
	if v == "" || v[0] == '=' {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '-', c == '.', c == '_', c == '~', c == '+', c == '/':
		case c == '=' && strings.Trim(v[i:], "=") == "":
		default:
			return false
		}
	}
	return true
}
