package auth

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/httpx"
)

// TokenVerifier verifies a login token and returns its principal: the
// subject as the user id, method jwt, and in identity-provider mode the
// organisation it acts for.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (apikey.Principal, error)
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

// authenticate verifies a credential that is present, as req asks
// (required scopes, client address, cost; an API key's own checks), and
// counts the outcome. It returns the coded error (INVALID_OR_EXPIRED_TOKEN,
// INSUFFICIENT_SCOPE, KEY_DISABLED, SERVER_BUSY, …) of a bad one. A login
// token is the user themself: it holds every scope and has no policy.
func (a *Authenticator) authenticate(ctx context.Context, c Credential, req apikey.VerifyRequest) (apikey.Verification, error) {
	var (
		v   apikey.Verification
		err error
	)
	if c.Kind == APIKey {
		req.Key = c.Value
		v, err = a.keys.Verify(ctx, req)
	} else {
		v.Principal, err = a.tokens.Verify(ctx, c.Value)
		v.Outcome = apikey.OutcomeOK
		if err != nil {
			v.Outcome = tokenOutcome(err)
		}
	}
	a.observer.Verified(c.method(), v.Outcome)
	return v, err
}

// check authenticates the credential r brings, if any, requiring scopes
// (nil: none) and spending cost from a credited key, and charges the
// client's own failures to its address. It sets on w the headers of the
// key's rate limit and credits, and Retry-After on a refusal that waiting
// cures. It reports false, having counted the refusal and set Retry-After
// on w, when the address has no failure budget left.
func (a *Authenticator) check(w http.ResponseWriter, r *http.Request, required []string, cost int64) (found apikey.Auth, v apikey.Verification, ok bool) {
	c, err := ParseCredential(r.Header, a.keys.Format())
	if err == nil && c.Kind == None {
		return apikey.Auth{}, v, true
	}
	addr := a.client.Of(r)
	attempt, wait, ok := a.limiter.Take(r.Context(), addr)
	if !ok {
		a.observer.Verified(c.method(), apikey.OutcomeAddressLimited)
		httpx.RetryAfter(w, wait)
		return apikey.Auth{}, v, false
	}
	// Only the client's own failures are charged (Failed): not an outage
	// of the database or the identity provider (SERVER_BUSY), nor a valid
	// key that its policy or its scopes refuse.
	defer func() { attempt.Done(found.Err) }()
	if err != nil {
		a.observer.Verified(apikey.MethodNone, apikey.OutcomeMalformed)
		found.Err = err
		return found, v, true
	}
	v, err = a.authenticate(r.Context(), c, apikey.VerifyRequest{Required: required, Addr: addr, Cost: cost})
	if err == nil {
		p := v.Principal // a copy: only it escapes, not the whole verification
		found.Principal = &p
	}
	found.Err = err
	writeUsage(w, v)
	if v.Principal.UserID != "" { // also a valid key refused: the log still says whose
		httpx.SetPrincipal(r.Context(), v.Principal.UserID, v.Principal.KeyID)
	}
	return found, v, true
}

// writeUsage sets the headers that tell a client where its key stands
// (docs/usage-policy.md): the rate limit and what is left of it
// (RateLimit-Policy and RateLimit, the IETF RateLimit header fields draft),
// the credits left (X-Auth-Credits-Remaining), and Retry-After when the key
// was refused for a while.
func writeUsage(w http.ResponseWriter, v apikey.Verification) {
	h := w.Header()
	if q := v.Quota; q.Limit > 0 {
		h.Set("RateLimit-Policy", `"key";q=`+strconv.FormatInt(q.Limit, 10)+";w="+strconv.FormatInt(int64(q.Period/time.Second), 10))
		h.Set("RateLimit", `"key";r=`+strconv.FormatInt(q.Remaining, 10)+";t="+strconv.FormatInt(q.ResetSeconds(), 10))
	}
	if v.Credited {
		h.Set("X-Auth-Credits-Remaining", strconv.FormatInt(v.Credits, 10))
	}
	if v.RetryAfter > 0 {
		httpx.RetryAfter(w, v.RetryAfter)
	}
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
		found, _, ok := a.check(w, r, nil, 1)
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
// apikey.ParseScopeList returns) and spending cost (0…apikey.MaxCost) from
// a credited key. It returns the verification, and the error to refuse the
// request with: ErrAddressLimited (Retry-After set on w) when the address
// is out of failure budget. Each request is counted once, under its
// outcome. Unlike elsewhere, a request without any credential is a
// verification here, refused with MISSING_AUTH and counted as such; a key
// that its policy or its scopes refuse is refused with that error, and its
// use is not recorded.
func (a *Authenticator) Forward(w http.ResponseWriter, r *http.Request, required []string, cost int64) (apikey.Verification, error) {
	found, v, ok := a.check(w, r, required, cost)
	if !ok {
		return v, ErrAddressLimited
	}
	if found.Anonymous() {
		a.observer.Verified(apikey.MethodNone, apikey.OutcomeMissing)
	}
	if _, err := found.Require(); err != nil {
		return v, err
	}
	return v, nil
}

// ErrAddressLimited refuses a request from an address that has used up its
// budget of failed authentications.
var ErrAddressLimited = apperr.New(apperr.RateLimited, "too many failed authentications from this address; retry later")
