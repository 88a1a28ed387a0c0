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
	// UserID is the signed-in user, or the owner of a personal key; empty
	// for an organisation key, which acts for its organisation (OrgID).
	UserID string
	Method Method
	KeyID  string // set when Method is MethodAPIKey
	// OrgID is the organisation that owns the key, and CreatedBy the
	// member who made it; both empty but for an organisation key.
	OrgID     string
	CreatedBy string
	// Org is the organisation a login token acts for in identity-provider
	// mode (ORG_CLAIM), with its role there; nil otherwise.
	Org *OrgClaim
	// Scopes are the key's scopes, sorted; nil when unrestricted (always
	// for a login token). See Unrestricted and CheckScopes.
	Scopes []string
	// Policy is the key's usage policy and lineage, shared by every
	// verification of the key and never changed (a change makes a new
	// principal); nil when the key has none (the zero Policy), and for a
	// login token.
	Policy *KeyPolicy
}

// KeyPolicy is the usage policy of a key's principal, with the lineage
// whose balance and rate-limit bucket the key spends from (APIKey.Lineage).
type KeyPolicy struct {
	Policy
	Lineage string
}

// Auth is what authentication found of a request's credential: the
// principal it proved, or the error to give whatever needs one. Both empty
// means the request brought no credential.
type Auth struct {
	Principal *Principal
	Err       error
}

// Anonymous reports whether the request brought no credential at all.
func (a Auth) Anonymous() bool { return a.Principal == nil && a.Err == nil }

// Require returns the principal, or the authentication error: the refusal
// of the credential, or apperr.MissingAuth when there was none.
func (a Auth) Require() (Principal, error) {
	switch {
	case a.Principal != nil:
		return *a.Principal, nil
	case a.Err != nil:
		return Principal{}, a.Err
	default:
		return Principal{}, errMissingAuth
	}
}

type authKey struct{}

// WithAuth returns ctx carrying what authentication found.
func WithAuth(ctx context.Context, a Auth) context.Context {
	return context.WithValue(ctx, authKey{}, a)
}

// WithPrincipal returns ctx carrying an authenticated principal.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return WithAuth(ctx, Auth{Principal: &p})
}

// AuthOf returns what authentication found for the request of ctx.
func AuthOf(ctx context.Context) Auth {
	a, _ := ctx.Value(authKey{}).(Auth)
	return a
}

// RequirePrincipal returns the principal of ctx, or the authentication error
// (see Auth.Require).
func RequirePrincipal(ctx context.Context) (Principal, error) { return AuthOf(ctx).Require() }

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
	a := AuthOf(ctx)
	return a.Principal, a.Err
}
