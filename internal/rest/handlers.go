package rest

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/apikeyd/apikeyd/internal/accesslog"
	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apperr"
)

// API serves the REST routes over one apikey.Service.
type API struct {
	svc *apikey.Service
	log *slog.Logger
}

// New returns the REST adapter of svc.
func New(svc *apikey.Service, log *slog.Logger) *API { return &API{svc: svc, log: log} }

// Register mounts the REST routes on mux. A known path with another method
// answers 405 with Allow; call NotFound for the rest.
func (a *API) Register(mux *http.ServeMux) {
	a.route(mux, "POST /auth/api-keys", a.create)
	a.route(mux, "GET /auth/api-keys", a.list)
	a.route(mux, "DELETE /auth/api-keys/{id}", a.revoke)
	a.route(mux, "GET /auth/verify", a.verify)
	a.route(mux, "GET /auth/scopes", a.scopes)
	a.route(mux, "GET /healthz", a.healthz)
	a.route(mux, "GET /readyz", a.readyz)
	a.route(mux, "GET /openapi.json", a.openapi)
	a.methodNotAllowed(mux, "/auth/api-keys", "GET, HEAD, POST")
	a.methodNotAllowed(mux, "/auth/api-keys/{id}", "DELETE")
	a.methodNotAllowed(mux, "/auth/verify", "GET, HEAD")
	a.methodNotAllowed(mux, "/auth/scopes", "GET, HEAD")
	a.methodNotAllowed(mux, "/healthz", "GET, HEAD")
	a.methodNotAllowed(mux, "/readyz", "GET, HEAD")
	a.methodNotAllowed(mux, "/openapi.json", "GET, HEAD")
}

// route mounts h at pattern, naming the route in the access log.
func (a *API) route(mux *http.ServeMux, pattern string, h http.HandlerFunc) {
	mux.Handle(pattern, Route(pattern, h))
}

// Route wraps h so the access log names pattern as its route.
func Route(pattern string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		accesslog.SetRoute(r.Context(), pattern)
		h.ServeHTTP(w, r)
	})
}

// methodNotAllowed answers every other method on path with 405 and Allow.
func (a *API) methodNotAllowed(mux *http.ServeMux, path, allow string) {
	mux.Handle(path, Route(path, MethodNotAllowed(a.log, allow)))
}

// MethodNotAllowed answers 405 METHOD_NOT_ALLOWED with Allow: allow.
func MethodNotAllowed(log *slog.Logger, allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		WriteError(w, r, log, apperr.Errorf(apperr.MethodNotAllowed, "method %s is not allowed here; use %s", r.Method, allow))
	})
}

// NotFound answers 404 NOT_FOUND in the error shape.
func NotFound(log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, r, log, apperr.New(apperr.NotFound, "no such route"))
	})
}

// NoStore marks every response under /auth/ and of /graphql as not
// cacheable: they carry secrets (a new key) or depend on who asks, and a
// GraphQL GET is otherwise as cacheable as any other.
func NoStore(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/auth/") || r.URL.Path == "/graphql" {
			w.Header().Set("Cache-Control", "no-store")
		}
		next.ServeHTTP(w, r)
	})
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
}

// optTime formats an optional timestamp; nil stays null.
func optTime(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := apikey.FormatTime(*t)
	return &s
}

func (a *API) create(w http.ResponseWriter, r *http.Request) {
	// Permission is checked before the body is read, so a caller who may
	// not create keys learns nothing from body validation.
	if _, err := apikey.RequireJWT(r.Context()); err != nil {
		WriteError(w, r, a.log, err)
		return
	}
	in, err := decodeCreate(w, r)
	if err != nil {
		WriteError(w, r, a.log, err)
		return
	}
	k, err := a.svc.Create(r.Context(), in)
	if err != nil {
		WriteError(w, r, a.log, err)
		return
	}
	w.Header().Set("Location", "/auth/api-keys/"+k.ID)
	writeJSON(w, http.StatusCreated, createdJSON{
		ID:        k.ID,
		Key:       k.Secret,
		KeyPrefix: k.KeyPrefix,
		Name:      k.Name,
		CreatedAt: apikey.FormatTime(k.CreatedAt),
		ExpiresAt: optTime(k.ExpiresAt),
		Scopes:    k.Scopes,
	})
}

// decodeCreate reads the optional body of a create.
func decodeCreate(w http.ResponseWriter, r *http.Request) (apikey.CreateInput, error) {
	var in apikey.CreateInput
	b, err := ReadBody(w, r)
	if err != nil || b == nil {
		return in, err
	}
	err = DecodeObject(b, func(name string, dec *json.Decoder) error {
		switch name {
		case "name":
			s, err := decodeNullableString(name, dec)
			in.Name = s
			return err
		case "expires_at":
			s, err := decodeNullableString(name, dec)
			if err != nil || s == nil {
				return err
			}
			t, err := apikey.ParseTime(name, *s)
			in.ExpiresAt = &t
			return err
		case "scopes":
			s, err := decodeScopes(dec)
			in.Scopes = s
			return err
		default:
			return skipValue(dec)
		}
	})
	return in, err
}

// decodeScopes decodes the scopes of a create: null (unrestricted) or an
// array of strings, kept non-nil when empty. The names themselves are the
// service's to check.
func decodeScopes(dec *json.Decoder) ([]string, error) {
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return nil, errMalformedDoc
	}
	if string(raw) == "null" {
		return nil, nil
	}
	var items []json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		return nil, apperr.New(apperr.InvalidRequest, "scopes must be an array of strings or null")
	}
	out := make([]string, len(items))
	for i, item := range items {
		if err := json.Unmarshal(item, &out[i]); err != nil || item[0] != '"' {
			return nil, apperr.Errorf(apperr.InvalidRequest, "scopes[%d] must be a string", i)
		}
	}
	return out, nil
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	keys, err := a.svc.List(r.Context())
	if err != nil {
		WriteError(w, r, a.log, err)
		return
	}
	out := struct {
		APIKeys []keyJSON `json:"api_keys"`
	}{APIKeys: make([]keyJSON, len(keys))}
	for i, k := range keys {
		out.APIKeys[i] = keyJSON{
			ID:         k.ID,
			KeyPrefix:  k.KeyPrefix,
			Name:       k.Name,
			CreatedAt:  apikey.FormatTime(k.CreatedAt),
			LastUsedAt: optTime(k.LastUsedAt),
			ExpiresAt:  optTime(k.ExpiresAt),
			Scopes:     k.Scopes,
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (a *API) revoke(w http.ResponseWriter, r *http.Request) {
	if _, err := a.svc.Revoke(r.Context(), r.PathValue("id")); err != nil {
		WriteError(w, r, a.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// verify is the forward-auth endpoint: 200 with the principal in the body and
// in X-Auth-* headers, or the 401 of the credential, or 403 when an API key
// lacks a scope named by ?scope= (repeated or comma-separated).
func (a *API) verify(w http.ResponseWriter, r *http.Request) {
	var buf [8]string // a proxy names a scope or two: parse them without allocating
	required, err := scopeParams(buf[:0], r.URL.RawQuery)
	if err != nil {
		WriteError(w, r, a.log, err)
		return
	}
	p, err := a.svc.CheckScopes(r.Context(), required)
	if err != nil {
		// Anonymous requests elsewhere are not verifications, but one that
		// asks whether it may pass and brings nothing is: count it here.
		if q, authErr := apikey.OptionalPrincipal(r.Context()); q == nil && authErr == nil {
			a.svc.ObserveVerification(apikey.MethodNone, apikey.OutcomeMissing)
		}
		WriteError(w, r, a.log, err)
		return
	}
	var keyID *string
	h := w.Header()
	h.Set("X-Auth-User-Id", p.UserID)
	if p.KeyID != "" {
		keyID = &p.KeyID
		h.Set("X-Auth-Key-Id", p.KeyID)
	}
	if p.Unrestricted() {
		h.Set("X-Auth-Scopes", "*")
	} else {
		h.Set("X-Auth-Scopes", strings.Join(p.Scopes, " "))
	}
	writeJSON(w, http.StatusOK, struct {
		UserID     string        `json:"user_id"`
		AuthMethod apikey.Method `json:"auth_method"`
		KeyID      *string       `json:"key_id"`
		Scopes     []string      `json:"scopes"`
	}{p.UserID, p.Method, keyID, p.Scopes})
}

// scopeParams appends to dst the scopes named by the scope parameters of
// a raw query (repeated, or comma-separated: scope=a&scope=b,c) and returns
// them as a sorted set. Other parameters are ignored. It reads the query
// itself rather than through url.Values, which would allocate a map on
// every verification.
// Returns INVALID_REQUEST for a malformed name, an empty value, or a
// parameter that does not decode.
func scopeParams(dst []string, rawQuery string) ([]string, error) {
	for rawQuery != "" {
		var param string
		param, rawQuery, _ = strings.Cut(rawQuery, "&")
		key, value, _ := strings.Cut(param, "=")
		if key != "scope" {
			if !strings.ContainsAny(key, "%+") {
				continue
			}
			if k, err := url.QueryUnescape(key); err != nil || k != "scope" {
				continue
			}
		}
		if strings.ContainsAny(value, "%+") {
			v, err := url.QueryUnescape(value)
			if err != nil {
				return nil, apperr.New(apperr.InvalidRequest, "the scope parameter is not a valid query value")
			}
			value = v
		}
		var err error
		if dst, err = apikey.AppendScopeList(dst, value); err != nil {
			return nil, err
		}
	}
	return apikey.RequiredScopes(dst), nil
}

// scopes answers the scope catalogue: null when any well-formed name goes.
func (a *API) scopes(w http.ResponseWriter, r *http.Request) {
	c, err := a.svc.AvailableScopes(r.Context())
	if err != nil {
		WriteError(w, r, a.log, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Scopes []string `json:"scopes"`
	}{c})
}

func (a *API) healthz(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (a *API) readyz(w http.ResponseWriter, r *http.Request) {
	if err := a.svc.Ready(r.Context()); err != nil {
		WriteError(w, r, a.log, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}
