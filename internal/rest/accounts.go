package rest

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/apikeyd/apikeyd/internal/account"
	"github.com/apikeyd/apikeyd/internal/apitime"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/auth"
	"github.com/apikeyd/apikeyd/internal/httpx"
)

// Accounts serves the built-in account routes, POST /auth/register and
// POST /auth/login, over one account.Service.
type Accounts struct {
	svc    *account.Service
	log    *slog.Logger
	client *auth.ClientIP
	// Failed logins are limited per client address (the same budget as every
	// other failed authentication) and per account, so that neither one
	// address nor many addresses can guess one account's password quickly.
	byAddress *auth.AddressLimiter
	byAccount *auth.FailureLimiter[string]
}

// NewAccounts returns the REST adapter of svc. byAddress and byAccount limit
// failed logins (nil: no limit); client finds a request's address.
func NewAccounts(svc *account.Service, log *slog.Logger, client *auth.ClientIP, byAddress *auth.AddressLimiter, byAccount *auth.FailureLimiter[string]) *Accounts {
	if client == nil {
		client = auth.NewClientIP(nil)
	}
	return &Accounts{svc: svc, log: log, client: client, byAddress: byAddress, byAccount: byAccount}
}

// Register mounts the account routes on mux, behind authn's verification of
// the credential a request brings (a login or a registration needs none,
// but one that brings a bad one is a failed authentication like any
// other); other methods answer 405.
func (a *Accounts) Register(mux *http.ServeMux, authn *auth.Authenticator) {
	authenticate := Authenticated(authn, a.log)
	for path, h := range map[string]http.HandlerFunc{"/auth/register": a.register, "/auth/login": a.login} {
		mux.Handle("POST "+path, httpx.Route("POST "+path, authenticate(h)))
		mux.Handle(path, httpx.Route(path, authenticate(httpx.MethodNotAllowed(a.log, "POST"))))
	}
}

var (
	errNoCredentials = apperr.New(apperr.InvalidRequest, `request body must be a JSON object with "email" and "password"`)
	errLoginsByAcct  = apperr.New(apperr.RateLimited, "too many failed logins for this account; retry later")
)

func (a *Accounts) register(w http.ResponseWriter, r *http.Request) {
	email, password, err := decodeCredentials(w, r)
	if err != nil {
		httpx.WriteError(w, r, a.log, err)
		return
	}
	u, err := a.svc.Register(r.Context(), email, password)
	if err != nil {
		httpx.WriteError(w, r, a.log, err)
		return
	}
	httpx.SetPrincipal(r.Context(), u.ID, "")
	type userJSON struct {
		ID    string `json:"id"`
		Email string `json:"email"`
	}
	httpx.WriteJSON(w, http.StatusCreated, struct {
		Message string   `json:"message"`
		User    userJSON `json:"user"`
	}{"Account created. It is active now: log in with POST /auth/login.", userJSON{u.ID, u.Email}})
}

func (a *Accounts) login(w http.ResponseWriter, r *http.Request) {
	s, err := a.authenticate(w, r)
	if err != nil {
		httpx.WriteError(w, r, a.log, err)
		return
	}
	httpx.SetPrincipal(r.Context(), s.User.ID, "")
	type userJSON struct {
		ID        string `json:"id"`
		Email     string `json:"email"`
		CreatedAt string `json:"created_at"`
	}
	type sessionJSON struct {
		AccessToken string `json:"access_token"`
		TokenType   string `json:"token_type"`
		ExpiresIn   int64  `json:"expires_in"`
		ExpiresAt   string `json:"expires_at"`
	}
	httpx.WriteJSON(w, http.StatusOK, struct {
		User    userJSON    `json:"user"`
		Session sessionJSON `json:"session"`
	}{
		userJSON{s.User.ID, s.User.Email, apitime.Format(s.User.CreatedAt)},
		sessionJSON{s.AccessToken, s.TokenType, int64(s.ExpiresIn / time.Second), apitime.Format(s.ExpiresAt)},
	})
}

// authenticate checks the credentials of a login as one authentication
// attempt of the address, then of the account (auth.Attempt), so that
// logins sent in parallel cannot check more passwords than the budgets
// allow. When either budget is spent it sets Retry-After on w and returns
// RATE_LIMITED.
func (a *Accounts) authenticate(w http.ResponseWriter, r *http.Request) (s account.Session, err error) {
	err = auth.Attempt(w, r, a.byAddress, a.client.Of(r), auth.ErrAddressLimited, func() error {
		email, password, err := decodeCredentials(w, r)
		if err != nil {
			return err
		}
		login := func() (err error) {
			s, err = a.svc.Login(r.Context(), email, password)
			return err
		}
		// The account's bucket is keyed by the normalized email whether or
		// not an account has it, so a 429 does not tell that it exists. An
		// email that is not an address names no account and has no bucket.
		if _, acct, bad := account.NormalizeEmail(email); bad == nil {
			return auth.Attempt(w, r, a.byAccount, acct, errLoginsByAcct, login)
		}
		return login()
	})
	return s, err
}

// decodeCredentials reads {"email": "…", "password": "…"}: both required
// strings; other fields are ignored.
func decodeCredentials(w http.ResponseWriter, r *http.Request) (email, password string, err error) {
	b, err := httpx.ReadBody(w, r, httpx.MaxBodyBytes)
	if err != nil {
		return "", "", err
	}
	if b == nil {
		return "", "", errNoCredentials
	}
	var gotEmail, gotPassword bool
	err = httpx.DecodeObject(b, func(name string, dec *json.Decoder) error {
		var err error
		switch name {
		case "email":
			email, err = decodeString(name, dec)
			gotEmail = true
		case "password":
			password, err = decodeString(name, dec)
			gotPassword = true
		default:
			err = httpx.SkipValue(dec)
		}
		return err
	})
	if err != nil {
		return "", "", err
	}
	if !gotEmail || !gotPassword {
		return "", "", errNoCredentials
	}
	return email, password, nil
}

// decodeString decodes a JSON string; anything else, null included, is
// INVALID_REQUEST.
func decodeString(name string, dec *json.Decoder) (string, error) {
	s, err := httpx.DecodeNullableString(name, dec)
	if err != nil {
		return "", err
	}
	if s == nil {
		return "", apperr.Errorf(apperr.InvalidRequest, "%s must be a string", name)
	}
	return *s, nil
}
