package apikey

import (
	"context"

	"github.com/apikeyd/apikeyd/internal/apperr"
)

// Method is how a principal authenticated.
type Method string

// Authentication methods.
const (
	MethodJWT    Method = "jwt"
	MethodAPIKey Method = "api_key"
)

// Principal is the caller of a request.
type Principal struct {
	UserID string
	Method Method
	KeyID  string // set when Method is MethodAPIKey
	// Scopes are the key's scopes, sorted; nil when unrestricted (always
	// for a login token). See Unrestricted and Service.CheckScopes.
	Scopes []string
}

type authKey struct{}

// authResult is what authentication found: a principal, or the error to give
// any operation that needs one. Both empty means no credential was presented.
type authResult struct {
	principal *Principal
	err       error
}

// WithPrincipal returns ctx carrying an authenticated principal.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, authKey{}, authResult{principal: &p})
}

// WithAuthError returns ctx recording that authentication failed with err.
// Operations that need a principal return err; anonymous ones proceed.
func WithAuthError(ctx context.Context, err error) context.Context {
	return context.WithValue(ctx, authKey{}, authResult{err: err})
}

// PrincipalFrom returns the authenticated principal of ctx, if any.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	r, _ := ctx.Value(authKey{}).(authResult)
	if r.principal == nil {
		return Principal{}, false
	}
	return *r.principal, true
}

// RequirePrincipal returns the principal of ctx, or the authentication error:
// the recorded failure, or apperr.MissingAuth when no credential was given.
func RequirePrincipal(ctx context.Context) (Principal, error) {
	r, _ := ctx.Value(authKey{}).(authResult)
	switch {
	case r.principal != nil:
		return *r.principal, nil
	case r.err != nil:
		return Principal{}, r.err
	default:
		return Principal{}, errMissingAuth
	}
}

// RequireJWT returns the principal of ctx when it signed in with a JWT.
// Keys never manage keys: an API-key principal gets apperr.JWTRequired.
func RequireJWT(ctx context.Context) (Principal, error) {
	p, err := RequirePrincipal(ctx)
	if err != nil {
		return Principal{}, err
	}
	if p.Method != MethodJWT {
		return Principal{}, errJWTRequired
	}
	return p, nil
}

var (
	errMissingAuth = apperr.New(apperr.MissingAuth, "authentication required")
	errJWTRequired = apperr.New(apperr.JWTRequired, "this operation requires a login token (JWT); API keys cannot manage API keys")
)

// OptionalPrincipal returns the principal of ctx, nil when no credential was
// presented, or the authentication error when one was and failed.
func OptionalPrincipal(ctx context.Context) (*Principal, error) {
	r, _ := ctx.Value(authKey{}).(authResult)
	return r.principal, r.err
}
