package rest

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apitime"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/auth"
	"github.com/apikeyd/apikeyd/internal/httpx"
)

// verifyPath is the forward-authentication route.
const verifyPath = "/auth/verify"

// API serves the REST routes over one apikey.Service.
type API struct {
	svc *apikey.Service
	fwd *auth.Authenticator // decides GET /auth/verify (Forward)
	log *slog.Logger
}

// New returns the REST adapter of svc; fwd decides GET /auth/verify.
func New(svc *apikey.Service, fwd *auth.Authenticator, log *slog.Logger) *API {
	return &API{svc: svc, fwd: fwd, log: log}
}

// Register mounts the REST routes on mux, each with how it authenticates. A
// known path with another method answers 405 with Allow; call NotFound for
// the rest.
func (a *API) Register(mux *http.ServeMux) {
	authn := Authenticated(a.fwd, a.log)
	a.route(mux, "POST /auth/api-keys", authn, a.create)
	a.route(mux, "GET /auth/api-keys", authn, a.list)
	a.route(mux, "DELETE /auth/api-keys/{id}", authn, a.revoke)
	a.route(mux, "PATCH /auth/api-keys/{id}", authn, a.update)
	a.route(mux, "POST /auth/api-keys/{id}/roll", authn, a.roll)
	a.route(mux, "GET /auth/api-keys/{id}/usage", authn, a.keyUsage)
	a.route(mux, "GET /auth/usage", authn, a.usageSummary)
	// GET /auth/verify authenticates its own request (Forward): it must
	// know the scopes a request requires before it verifies the key, so
	// that a refusal is counted once and is no use of the key.
	a.route(mux, "GET "+verifyPath, ownCredential, a.verify)
	a.route(mux, "GET /auth/scopes", authn, a.scopes)
	a.route(mux, "GET /auth/leak-notices", authn, a.leakNotices)
	a.route(mux, "DELETE /auth/leak-notices/{id}", authn, a.dismissLeakNotice)
	a.route(mux, "GET /healthz", authn, a.healthz)
	a.route(mux, "GET /readyz", authn, a.readyz)
	a.route(mux, "GET /openapi.json", authn, a.openapi)
	a.methodNotAllowed(mux, "/auth/api-keys", authn, "GET, HEAD, POST")
	a.methodNotAllowed(mux, "/auth/api-keys/{id}", authn, "DELETE, PATCH")
	a.methodNotAllowed(mux, "/auth/api-keys/{id}/roll", authn, "POST")
	a.methodNotAllowed(mux, "/auth/api-keys/{id}/usage", authn, "GET, HEAD")
	a.methodNotAllowed(mux, "/auth/usage", authn, "GET, HEAD")
	a.methodNotAllowed(mux, verifyPath, ownCredential, "GET, HEAD")
	a.methodNotAllowed(mux, "/auth/scopes", authn, "GET, HEAD")
	a.methodNotAllowed(mux, "/auth/leak-notices", authn, "GET, HEAD")
	a.methodNotAllowed(mux, "/auth/leak-notices/{id}", authn, "DELETE")
	a.methodNotAllowed(mux, "/healthz", authn, "GET, HEAD")
	a.methodNotAllowed(mux, "/readyz", authn, "GET, HEAD")
	a.methodNotAllowed(mux, "/openapi.json", authn, "GET, HEAD")
}

// authentication is how a route authenticates: the wrapper of its handler.
type authentication func(http.Handler) http.Handler

// Authenticated verifies the credential a request brings, if any, before
// the route's handler, which finds it in the request's context
// (auth.Authenticator.Optional); a request refused there (its address is
// out of failure budget) is answered in the REST error shape. Every route
// answered in that shape, the REST adapter's or not, is wrapped by it.
func Authenticated(authn *auth.Authenticator, log *slog.Logger) func(http.Handler) http.Handler {
	refuse := func(w http.ResponseWriter, r *http.Request, err error) { httpx.WriteError(w, r, log, err) }
	return func(h http.Handler) http.Handler { return authn.Optional(h, refuse) }
}

// requireJWT answers JWT_REQUIRED (or the authentication's error) and
// returns false unless the request signed in with a login token. A route
// that reads a body checks it first, so that a key learns nothing from the
// body's validation.
func requireJWT(w http.ResponseWriter, r *http.Request, log *slog.Logger) bool {
	if _, err := apikey.RequireJWT(r.Context()); err != nil {
		httpx.WriteError(w, r, log, err)
		return false
	}
	return true
}

// ownCredential is the authentication of a route that checks its own
// credential: none before its handler.
func ownCredential(h http.Handler) http.Handler { return h }

// route mounts h at pattern behind authn, naming the route in the request's
// record first, so that a refusal names it too.
func (a *API) route(mux *http.ServeMux, pattern string, authn authentication, h http.HandlerFunc) {
	mux.Handle(pattern, httpx.Route(pattern, authn(h)))
}

// methodNotAllowed answers every other method on path with 405 and Allow,
// behind authn.
func (a *API) methodNotAllowed(mux *http.ServeMux, path string, authn authentication, allow string) {
	mux.Handle(path, httpx.Route(path, authn(httpx.MethodNotAllowed(a.log, allow))))
}

// keyJSON is a key as listed.
type keyJSON struct {
	ID         string   `json:"id"`
	KeyPrefix  string   `json:"key_prefix"`
	Name       *string  `json:"name"`
	CreatedAt  string   `json:"created_at"`
	LastUsedAt *string  `json:"last_used_at"`
	ExpiresAt  *string  `json:"expires_at"`
	Scopes     []string `json:"scopes"` // null: unrestricted
	ReplacedBy *string  `json:"replaced_by"`
	// Where the last use came from.
	LastUsedIP        *string `json:"last_used_ip"`
	LastUsedUserAgent *string `json:"last_used_user_agent"`
	ownerJSON
	policyJSON
}

// ownerJSON is whose a key is, and who made it (for a personal key, its
// owner).
type ownerJSON struct {
	Owner     ownerRefJSON `json:"owner"`
	CreatedBy string       `json:"created_by"`
}

type ownerRefJSON struct {
	Type apikey.OwnerType `json:"type"`
	ID   string           `json:"id"`
}

func ownerOf(k *apikey.APIKey) ownerJSON {
	o := k.Owner()
	return ownerJSON{Owner: ownerRefJSON{Type: o.Type, ID: o.ID}, CreatedBy: k.UserID}
}

// listed is k as listed.
func listed(k apikey.APIKey) keyJSON {
	return keyJSON{
		ID:         k.ID,
		KeyPrefix:  k.KeyPrefix,
		Name:       k.Name,
		CreatedAt:  apitime.Format(k.CreatedAt),
		LastUsedAt: apitime.FormatOptional(k.LastUsedAt),
		ExpiresAt:  apitime.FormatOptional(k.ExpiresAt),
		Scopes:     k.Scopes,
		ReplacedBy: k.ReplacedBy,

		LastUsedIP:        k.LastUsedIP,
		LastUsedUserAgent: k.LastUsedUserAgent,
		ownerJSON:         ownerOf(&k),
		policyJSON:        policyOf(k.Policy),
	}
}

// createdJSON is the answer to a create: the only one with the key.
type createdJSON struct {
	ID        string   `json:"id"`
	Key       string   `json:"key"`
	KeyPrefix string   `json:"key_prefix"`
	Name      *string  `json:"name"`
	CreatedAt string   `json:"created_at"`
	ExpiresAt *string  `json:"expires_at"`
	Scopes    []string `json:"scopes"` // null: unrestricted
	// RolledFrom is the replaced key's id, in the answer to a roll only.
	RolledFrom string `json:"rolled_from,omitempty"`
	ownerJSON
	policyJSON
}

func (a *API) create(w http.ResponseWriter, r *http.Request) {
	// Permission is checked before the body is read, so a caller who may
	// not create keys learns nothing from body validation.
	if !requireJWT(w, r, a.log) {
		return
	}
	in, err := decodeCreate(w, r)
	if err != nil {
		httpx.WriteError(w, r, a.log, err)
		return
	}
	k, err := a.svc.Create(r.Context(), in)
	if err != nil {
		httpx.WriteError(w, r, a.log, err)
		return
	}
	writeCreated(w, k, "")
}

// writeCreated answers 201 with a new key and where it lives: the one
// answer that holds the secret. rolledFrom names the key it replaced, if any.
func writeCreated(w http.ResponseWriter, k apikey.Created, rolledFrom string) {
	w.Header().Set("Location", keyPath(&k.APIKey))
	httpx.WriteJSON(w, http.StatusCreated, createdJSON{
		ID:         k.ID,
		Key:        k.Secret,
		KeyPrefix:  k.KeyPrefix,
		Name:       k.Name,
		CreatedAt:  apitime.Format(k.CreatedAt),
		ExpiresAt:  apitime.FormatOptional(k.ExpiresAt),
		Scopes:     k.Scopes,
		RolledFrom: rolledFrom,
		ownerJSON:  ownerOf(&k.APIKey),
		policyJSON: policyOf(k.Policy),
	})
}

// keyPath is where k lives: under its organisation's keys for an
// organisation key.
func keyPath(k *apikey.APIKey) string {
	if k.OrgID != "" {
		return orgPath(k.OrgID) + "/api-keys/" + url.PathEscape(k.ID)
	}
	return "/auth/api-keys/" + url.PathEscape(k.ID)
}

// orgPath is where the organisation id lives.
func orgPath(id string) string { return "/auth/orgs/" + url.PathEscape(id) }

// decodeCreate reads the optional body of a create.
func decodeCreate(w http.ResponseWriter, r *http.Request) (apikey.CreateInput, error) {
	var in apikey.CreateInput
	b, err := httpx.ReadBody(w, r, httpx.MaxBodyBytes)
	if err != nil || b == nil {
		return in, err
	}
	err = httpx.DecodeObject(b, func(name string, dec *json.Decoder) error {
		switch name {
		case "name":
			s, err := httpx.DecodeNullableString(name, dec)
			in.Name = s
			return err
		case "expires_at":
			s, err := httpx.DecodeNullableString(name, dec)
			if err != nil || s == nil {
				return err
			}
			t, err := apitime.Parse(name, *s)
			in.ExpiresAt = &t
			return err
		case "scopes":
			s, err := decodeStrings(name, dec)
			in.Scopes = s
			return err
		case "enabled":
			b, err := decodeEnabled(dec)
			in.Enabled = &b
			return err
		case "rate_limit":
			l, err := decodeRateLimit(dec)
			in.RateLimit = l
			return err
		case "credits":
			c, err := decodeCredits(dec)
			in.Credits = c
			return err
		case "allowed_ips":
			ips, err := decodeAllowedIPs(dec)
			in.AllowedIPs = ips
			return err
		case "meta":
			m, err := decodeMeta(dec)
			in.Meta = m
			return err
		default:
			return httpx.SkipValue(dec)
		}
	})
	return in, err
}

// decodeStrings decodes field's value: null (nil) or an array of strings,
// kept non-nil when empty. The strings themselves are the service's to
// check.
func decodeStrings(field string, dec *json.Decoder) ([]string, error) {
	raw, err := httpx.DecodeRaw(dec)
	if err != nil {
		return nil, err
	}
	if string(raw) == "null" {
		return nil, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, apperr.Errorf(apperr.InvalidRequest, "%s must be an array of strings or null", field)
	}
	out := make([]string, len(items))
	for i, item := range items {
		if err := json.Unmarshal(item, &out[i]); err != nil || item[0] != '"' {
			return nil, apperr.Errorf(apperr.InvalidRequest, "%s[%d] must be a string", field, i)
		}
	}
	return out, nil
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	keys, err := a.svc.List(r.Context())
	if err != nil {
		httpx.WriteError(w, r, a.log, err)
		return
	}
	out := struct {
		APIKeys []keyJSON `json:"api_keys"`
	}{APIKeys: make([]keyJSON, len(keys))}
	for i, k := range keys {
		out.APIKeys[i] = listed(k)
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

func (a *API) revoke(w http.ResponseWriter, r *http.Request) {
	if _, err := a.svc.Revoke(r.Context(), r.PathValue("id")); err != nil {
		httpx.WriteError(w, r, a.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// verify is the forward-auth endpoint: 200 with the principal in the body
// and in X-Auth-* headers, or the refusal of the credential: 401, 403 when
// an API key lacks a scope named by ?scope= (repeated or comma-separated)
// or its policy refuses it, 429 when its rate limit or credits do. The
// route authenticates its own request (see Register): a malformed
// parameter is refused before the credential is looked at, so nothing is
// verified, counted or recorded. Every refusal also carries its code in
// X-Auth-Error-Code, for a reverse proxy, which sees the headers of an
// auth_request answer but not its body.
func (a *API) verify(w http.ResponseWriter, r *http.Request) {
	var buf [8]string // a proxy names a scope or two: parse them without allocating
	required, cost, err := verifyParams(buf[:0], r.URL.RawQuery)
	if err != nil {
		a.refuseVerify(w, r, err)
		return
	}
	v, err := a.fwd.Forward(w, r, required, cost)
	if err != nil {
		a.refuseVerify(w, r, err)
		return
	}
	p := v.Principal
	var keyID *string
	h := w.Header()
	who := verifiedJSON{AuthMethod: p.Method, Scopes: p.Scopes}
	if p.OrgID != "" {
		// An organisation key acts for its organisation, not for a user.
		h.Set("X-Auth-Org-Id", p.OrgID)
		who.OrgID, who.CreatedBy = p.OrgID, p.CreatedBy
	} else {
		userID := p.UserID // a copy: the answer keeps only it, not the principal
		who.UserID = &userID
		h.Set("X-Auth-User-Id", userID)
	}
	if id := p.KeyID; id != "" {
		keyID = &id // a copy: the answer keeps only it, not the principal
		h.Set("X-Auth-Key-Id", id)
	}
	if p.Unrestricted() {
		h.Set("X-Auth-Scopes", "*")
	} else {
		h.Set("X-Auth-Scopes", strings.Join(p.Scopes, " "))
	}
	who.KeyID = keyID
	if p.Policy == nil {
		httpx.WriteJSON(w, http.StatusOK, who)
		return
	}
	out := verifiedWithPolicyJSON{verifiedJSON: who, Meta: v.Meta}
	if v.Credited {
		out.Credits = &creditsLeftJSON{Remaining: v.Credits}
	}
	if q := v.Quota; q.Limit > 0 {
		out.RateLimit = &rateLimitLeftJSON{Limit: q.Limit, Remaining: q.Remaining, ResetSeconds: q.ResetSeconds()}
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// refuseVerify answers a refused verification with err, its code also in
// X-Auth-Error-Code.
func (a *API) refuseVerify(w http.ResponseWriter, r *http.Request, err error) {
	w.Header().Set("X-Auth-Error-Code", string(apperr.CodeOf(err)))
	httpx.WriteError(w, r, a.log, err)
}

// verifiedJSON is the answer to a verification: a user's, or an
// organisation key's (user_id null, with org_id and created_by, which no
// other answer has).
type verifiedJSON struct {
	UserID     *string       `json:"user_id"`
	OrgID      string        `json:"org_id,omitempty"`
	CreatedBy  string        `json:"created_by,omitempty"`
	AuthMethod apikey.Method `json:"auth_method"`
	KeyID      *string       `json:"key_id"`
	Scopes     []string      `json:"scopes"`
}

// verifiedWithPolicyJSON is the answer to the verification of a key with a
// usage policy: where the key stands after it.
type verifiedWithPolicyJSON struct {
	verifiedJSON
	Meta      json.RawMessage    `json:"meta"` // nil: null
	Credits   *creditsLeftJSON   `json:"credits"`
	RateLimit *rateLimitLeftJSON `json:"rate_limit"`
}

type creditsLeftJSON struct {
	Remaining int64 `json:"remaining"`
}

type rateLimitLeftJSON struct {
	Limit        int64 `json:"limit"`
	Remaining    int64 `json:"remaining"`
	ResetSeconds int64 `json:"reset_seconds"` // until the bucket is full
}

// verifyParams reads the parameters of a verification from a raw query:
// the scopes named by the scope parameters (repeated, or comma-separated:
// scope=a&scope=b,c), appended to dst and returned as a sorted set, and the
// cost (1 when absent). Other parameters are ignored. It reads the query
// itself rather than through url.Values, which would allocate a map on
// every verification.
// Returns INVALID_REQUEST for a malformed scope name, an empty scope value,
// a cost that is not an integer from 0 to apikey.MaxCost or given twice,
// or a parameter of ours that does not decode.
func verifyParams(dst []string, rawQuery string) (required []string, cost int64, err error) {
	cost = -1
	for rawQuery != "" {
		var param string
		param, rawQuery, _ = strings.Cut(rawQuery, "&")
		key, value, _ := strings.Cut(param, "=")
		if key != "scope" && key != "cost" {
			if !strings.ContainsAny(key, "%+") {
				continue
			}
			if key, err = url.QueryUnescape(key); err != nil || key != "scope" && key != "cost" {
				err = nil
				continue
			}
		}
		if strings.ContainsAny(value, "%+") {
			v, err := url.QueryUnescape(value)
			if err != nil {
				return nil, 0, apperr.Errorf(apperr.InvalidRequest, "the %s parameter is not a valid query value", key)
			}
			value = v
		}
		if key == "cost" {
			if cost >= 0 {
				return nil, 0, errCostTwice
			}
			if cost, err = parseCost(value); err != nil {
				return nil, 0, err
			}
			continue
		}
		if dst, err = apikey.AppendScopeList(dst, value); err != nil {
			return nil, 0, err
		}
	}
	if cost < 0 {
		cost = 1
	}
	return apikey.RequiredScopes(dst), cost, nil
}

// parseCost reads a cost: decimal digits only, from 0 to apikey.MaxCost.
func parseCost(s string) (int64, error) {
	if s == "" || len(s) > 4 {
		return 0, errBadCost
	}
	var n int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, errBadCost
		}
		n = n*10 + int64(s[i]-'0')
	}
	if n > apikey.MaxCost {
		return 0, errBadCost
	}
	return n, nil
}

var (
	errBadCost   = apperr.Errorf(apperr.InvalidRequest, "the cost parameter must be an integer from 0 to %d", apikey.MaxCost)
	errCostTwice = apperr.New(apperr.InvalidRequest, "the cost parameter may be given once")
)

// scopes answers the scope catalogue: null when any well-formed name goes.
func (a *API) scopes(w http.ResponseWriter, r *http.Request) {
	c, err := a.svc.AvailableScopes(r.Context())
	if err != nil {
		httpx.WriteError(w, r, a.log, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, struct {
		Scopes []string `json:"scopes"`
	}{c})
}

func (a *API) healthz(w http.ResponseWriter, r *http.Request) {
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (a *API) readyz(w http.ResponseWriter, r *http.Request) {
	if err := a.svc.Ready(r.Context()); err != nil {
		httpx.WriteError(w, r, a.log, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
