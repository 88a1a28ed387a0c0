package auth

import (
	"context"
	"net/http"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/httpx"
)

// TokenVerifier verifies a login token and returns its subject (the user id).
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (string, error)
}

// Observer is told the outcome of every verification, for metrics. It is
// called on the request path, so it must be fast and must not block.
type Observer interface {
	Verified(m apikey.Method, o apikey.Outcome)
}

// Authenticator turns a request's credential into what the handlers need
// (apikey.Auth) and counts the outcome of every verification: this is the one
// place that sees every kind of credential, so it is the one place that
// counts them.
type Authenticator struct {
	tokens   TokenVerifier
	keys     *apikey.Service
	limiter  *AddressLimiter
	client   *ClientIP
	observer Observer
}

// NewAuthenticator returns an Authenticator that verifies JWTs with tokens and
// API keys with keys, limiting failures per client address (nil: no limit),
// and tells observer (nil: nobody) the outcome of each verification.
func NewAuthenticator(tokens TokenVerifier, keys *apikey.Service, limiter *AddressLimiter, client *ClientIP, observer Observer) *Authenticator {
	if client == nil {
		client = NewClientIP(nil)
	}
	if observer == nil {
		observer = nopObserver{}
	}
	return &Authenticator{tokens: tokens, keys: keys, limiter: limiter, client: client, observer: observer}
}

type nopObserver struct{}

func (nopObserver) Verified(apikey.Method, apikey.Outcome) {}

// authenticate verifies a credential that is present, requiring scopes
// (nil: none), and counts the outcome. It returns the coded error
// (INVALID_OR_EXPIRED_TOKEN, INSUFFICIENT_SCOPE, SERVER_BUSY, …) of a bad
// one. A login token is the user themself: it holds every scope.
func (a *Authenticator) authenticate(ctx context.Context, c Credential, required []string) (apikey.Principal, error) {
	var (
		p   apikey.Principal
		o   apikey.Outcome
		err error
	)
	if c.Kind == APIKey {
		p, o, err = a.keys.VerifyScoped(ctx, c.Value, required)
	} else {
		var sub string
		sub, err = a.tokens.Verify(ctx, c.Value)
		p, o = apikey.Principal{UserID: sub, Method: apikey.MethodJWT}, apikey.OutcomeOK
		if err != nil {
			o = tokenOutcome(err)
		}
	}
	a.observer.Verified(c.method(), o)
	return p, err
}

// check authenticates the credential r brings, if any, requiring scopes
// (nil: none), and charges the client's own failures to its address. It
// reports false, having counted the refusal and set Retry-After on w, when
// the address has no failure budget left.
func (a *Authenticator) check(w http.ResponseWriter, r *http.Request, required []string) (found apikey.Auth, ok bool) {
	c, err := ParseCredential(r.Header, a.keys.Format())
	if err == nil && c.Kind == None {
		return apikey.Auth{}, true
	}
	attempt, wait, ok := a.limiter.Take(r.Context(), a.client.Of(r))
	if !ok {
		a.observer.Verified(c.method(), apikey.OutcomeAddressLimited)
		httpx.RetryAfter(w, wait)
		return apikey.Auth{}, false
	}
	// Only the client's own failures are charged: an outage of the
	// database or the identity provider (SERVER_BUSY) is not, nor is a
	// valid key that lacks a scope.
	defer func() { attempt.Done(found.Err) }()
	if err != nil {
		a.observer.Verified(apikey.MethodNone, apikey.OutcomeMalformed)
		found.Err = err
		return found, true
	}
	p, err := a.authenticate(r.Context(), c, required)
	switch {
	case err == nil:
		found.Principal = &p
	case apperr.CodeOf(err) == apperr.InsufficientScope:
		found.Err = err // a valid key: the log still says whose
	default:
		found.Err = err
		p = apikey.Principal{}
	}
	if p.UserID != "" {
		httpx.SetPrincipal(r.Context(), p.UserID, p.KeyID)
	}
	return found, true
}

// Refusal answers a request that authentication refused before its handler
// ran, with err, in the error shape of the route's face.
type Refusal func(w http.ResponseWriter, r *http.Request, err error)

// Optional returns h behind the verification of the credential a request
// brings, if any: what it found reaches h in the request's context
// (apikey.AuthOf), and h answers with or without a principal, since
// whatever needs one asks for it (so a GraphQL request with a bad token
// still gets a normal GraphQL response). Optional answers a request itself,
// with refuse, only when its address is out of failure budget. A route that
// checks its own credential (Forward, or one that is no Bearer credential
// at all) is not wrapped.
func (a *Authenticator) Optional(h http.Handler, refuse Refusal) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		found, ok := a.check(w, r, nil)
		if !ok {
			refuse(w, r, ErrAddressLimited)
			return
		}
		if !found.Anonymous() {
			r = r.WithContext(apikey.WithAuth(r.Context(), found))
		}
		h.ServeHTTP(w, r)
	})
}

// Forward authenticates a forward-authentication request (GET /auth/verify),
// a route that is not behind Optional, requiring scopes (a sorted set, as
// apikey.ParseScopeList returns). It returns the principal or the error to
// refuse the request with: ErrAddressLimited (Retry-After set on w) when the
// address is out of failure budget. Each request is counted once, under its
// outcome. Unlike elsewhere, a request without any credential is a
// verification here, refused with MISSING_AUTH and counted as such; a key
// that lacks a scope is refused with INSUFFICIENT_SCOPE, and its use is not
// recorded.
func (a *Authenticator) Forward(w http.ResponseWriter, r *http.Request, required []string) (apikey.Principal, error) {
	found, ok := a.check(w, r, required)
	if !ok {
		return apikey.Principal{}, ErrAddressLimited
	}
	if found.Anonymous() {
		a.observer.Verified(apikey.MethodNone, apikey.OutcomeMissing)
	}
	return found.Require()
}

// ErrAddressLimited refuses a request from an address that has used up its
// budget of failed authentications.
var ErrAddressLimited = apperr.New(apperr.RateLimited, "too many failed authentications from this address; retry later")
