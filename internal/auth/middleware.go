package auth

import (
	"context"
	"net/http"
	"net/netip"
	"strconv"

	"github.com/apikeyd/apikeyd/internal/accesslog"
	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apperr"
)

// TokenVerifier verifies a login token and returns its subject (the user id).
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (string, error)
}

// Authenticator turns a request's credential into a principal.
type Authenticator struct {
	tokens  TokenVerifier
	keys    *apikey.Service
	limiter *FailureLimiter[netip.Addr]
	client  *ClientIP
	// Refuse answers a request refused before authentication (rate limited).
	Refuse func(w http.ResponseWriter, r *http.Request, err error)
}

// NewAuthenticator returns an Authenticator that verifies JWTs with tokens and
// API keys with keys, limiting failures per client address (nil: no limit).
func NewAuthenticator(tokens TokenVerifier, keys *apikey.Service, limiter *FailureLimiter[netip.Addr], client *ClientIP) *Authenticator {
	if client == nil {
		client = NewClientIP(nil)
	}
	return &Authenticator{tokens: tokens, keys: keys, limiter: limiter, client: client}
}

// Authenticate verifies c. It returns ok=false with a nil error when there is
// no credential, and the coded error (MISSING_AUTH, INVALID_OR_EXPIRED_TOKEN,
// SERVER_BUSY, …) when there is a bad one. The outcome of a verification goes
// to the service's observer.
func (a *Authenticator) Authenticate(ctx context.Context, c Credential) (p apikey.Principal, ok bool, err error) {
	switch c.Kind {
	case None:
		return apikey.Principal{}, false, nil
	case APIKey:
		p, err = a.keys.Verify(ctx, c.Value) // reports its own outcome
	default:
		var sub string
		sub, err = a.tokens.Verify(ctx, c.Value)
		p = apikey.Principal{UserID: sub, Method: apikey.MethodJWT}
		o := apikey.OutcomeOK
		if err != nil {
			o = tokenOutcome(err)
		}
		a.keys.ObserveVerification(apikey.MethodJWT, o)
	}
	if err != nil {
		return apikey.Principal{}, false, err
	}
	return p, true, nil
}

// Middleware authenticates every request and records the outcome in its
// context (apikey.WithPrincipal or apikey.WithAuthError). It rejects a
// request itself only when its address is rate limited: otherwise whatever
// needs a principal asks for one, so a GraphQL request with a bad token still
// gets a normal GraphQL response.
func (a *Authenticator) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := ParseCredential(r.Header, a.keys.Format())
		if err == nil && c.Kind == None {
			next.ServeHTTP(w, r)
			return
		}
		addr := a.client.Of(r)
		if ok, wait := a.limiter.Allow(addr); !ok {
			a.keys.ObserveVerification(c.method(), apikey.OutcomeRateLimited)
			w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
			a.Refuse(w, r, errRateLimited)
			return
		}
		var p apikey.Principal
		if err == nil {
			p, _, err = a.Authenticate(r.Context(), c)
		} else {
			a.keys.ObserveVerification(apikey.MethodNone, apikey.OutcomeMalformed)
		}
		if err != nil {
			if code := apperr.CodeOf(err); code == apperr.MissingAuth || code == apperr.InvalidToken {
				a.limiter.Fail(addr)
			}
			r = r.WithContext(apikey.WithAuthError(r.Context(), err))
		} else {
			accesslog.SetPrincipal(r.Context(), p.UserID, p.KeyID)
			r = r.WithContext(apikey.WithPrincipal(r.Context(), p))
		}
		next.ServeHTTP(w, r)
	})
}

var errRateLimited = apperr.New(apperr.RateLimited, "too many failed authentications from this address; retry later")
