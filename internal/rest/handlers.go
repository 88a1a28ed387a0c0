package rest

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/httpx"
)

// API serves the REST routes over one apikey.Service.
type API struct {
	svc *apikey.Service
	fwd Forwarder
	log *slog.Logger
}

// Forwarder decides a forward-authentication request from what
// authentication found (auth.Authenticator.Forward).
type Forwarder interface {
	Forward(ctx context.Context) (apikey.Principal, error)
}

// New returns the REST adapter of svc; fwd decides GET /auth/verify.
func New(svc *apikey.Service, fwd Forwarder, log *slog.Logger) *API {
	return &API{svc: svc, fwd: fwd, log: log}
}

// Register mounts the REST routes on mux. A known path with another method
// answers 405 with Allow; call NotFound for the rest.
func (a *API) Register(mux *http.ServeMux) {
	a.route(mux, "POST /auth/api-keys", a.create)
	a.route(mux, "GET /auth/api-keys", a.list)
	a.route(mux, "DELETE /auth/api-keys/{id}", a.revoke)
	a.route(mux, "GET /auth/verify", a.verify)
	a.route(mux, "GET /healthz", a.healthz)
	a.route(mux, "GET /readyz", a.readyz)
	a.route(mux, "GET /openapi.json", a.openapi)
	a.methodNotAllowed(mux, "/auth/api-keys", "GET, HEAD, POST")
	a.methodNotAllowed(mux, "/auth/api-keys/{id}", "DELETE")
	a.methodNotAllowed(mux, "/auth/verify", "GET, HEAD")
	a.methodNotAllowed(mux, "/healthz", "GET, HEAD")
	a.methodNotAllowed(mux, "/readyz", "GET, HEAD")
	a.methodNotAllowed(mux, "/openapi.json", "GET, HEAD")
}

// route mounts h at pattern, naming the route in the request's record.
func (a *API) route(mux *http.ServeMux, pattern string, h http.HandlerFunc) {
	mux.Handle(pattern, httpx.Route(pattern, h))
}

// methodNotAllowed answers every other method on path with 405 and Allow.
func (a *API) methodNotAllowed(mux *http.ServeMux, path, allow string) {
	mux.Handle(path, httpx.Route(path, httpx.MethodNotAllowed(a.log, allow)))
}

// keyJSON is a key as listed.
type keyJSON struct {
	ID         string  `json:"id"`
	KeyPrefix  string  `json:"key_prefix"`
	Name       *string `json:"name"`
	CreatedAt  string  `json:"created_at"`
	LastUsedAt *string `json:"last_used_at"`
	ExpiresAt  *string `json:"expires_at"`
	// Where the last use came from.
	LastUsedIP        *string `json:"last_used_ip"`
	LastUsedUserAgent *string `json:"last_used_user_agent"`
}

// createdJSON is the answer to a create: the only one with the key.
type createdJSON struct {
	ID        string  `json:"id"`
	Key       string  `json:"key"`
	KeyPrefix string  `json:"key_prefix"`
	Name      *string `json:"name"`
	CreatedAt string  `json:"created_at"`
	ExpiresAt *string `json:"expires_at"`
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
		httpx.WriteError(w, r, a.log, err)
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
	w.Header().Set("Location", "/auth/api-keys/"+k.ID)
	httpx.WriteJSON(w, http.StatusCreated, createdJSON{
		ID:        k.ID,
		Key:       k.Secret,
		KeyPrefix: k.KeyPrefix,
		Name:      k.Name,
		CreatedAt: apikey.FormatTime(k.CreatedAt),
		ExpiresAt: optTime(k.ExpiresAt),
	})
}

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
			t, err := apikey.ParseTime(name, *s)
			in.ExpiresAt = &t
			return err
		default:
			return httpx.SkipValue(dec)
		}
	})
	return in, err
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
		out.APIKeys[i] = keyJSON{
			ID:         k.ID,
			KeyPrefix:  k.KeyPrefix,
			Name:       k.Name,
			CreatedAt:  apikey.FormatTime(k.CreatedAt),
			LastUsedAt: optTime(k.LastUsedAt),
			ExpiresAt:  optTime(k.ExpiresAt),

			LastUsedIP:        k.LastUsedIP,
			LastUsedUserAgent: k.LastUsedUserAgent,
		}
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

// verify is the forward-auth endpoint: 200 with the principal in the body and
// in X-Auth-* headers, or the 401 of the credential.
func (a *API) verify(w http.ResponseWriter, r *http.Request) {
	p, err := a.fwd.Forward(r.Context())
	if err != nil {
		httpx.WriteError(w, r, a.log, err)
		return
	}
	var keyID *string
	w.Header().Set("X-Auth-User-Id", p.UserID)
	if p.KeyID != "" {
		keyID = &p.KeyID
		w.Header().Set("X-Auth-Key-Id", p.KeyID)
	}
	httpx.WriteJSON(w, http.StatusOK, struct {
		UserID     string        `json:"user_id"`
		AuthMethod apikey.Method `json:"auth_method"`
		KeyID      *string       `json:"key_id"`
	}{p.UserID, p.Method, keyID})
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
