package rest

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"time"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apitime"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/httpx"
	"github.com/apikeyd/apikeyd/internal/org"
)

// Orgs serves the organisation routes (docs/organisations.md): the
// organisations, their members and invitations over one org.Service, and
// their keys through the very handlers of personal keys, scoped to the
// organisation (apikey.WithOrg), so that both answer alike.
type Orgs struct {
	svc  *org.Service
	keys *API
	log  *slog.Logger
}

// NewOrgs returns the REST adapter of svc; keys serves the organisations'
// keys.
func NewOrgs(svc *org.Service, keys *API, log *slog.Logger) *Orgs {
	return &Orgs{svc: svc, keys: keys, log: log}
}

// Register mounts the organisation routes on mux, behind the verification
// of the credential a request brings; other methods on their paths answer
// 405 with Allow.
func (o *Orgs) Register(mux *http.ServeMux) {
	a := o.keys
	authn := Authenticated(a.fwd, o.log)
	for _, r := range []struct {
		path   string
		allow  string
		routes map[string]http.HandlerFunc
	}{
		{"/auth/orgs", "GET, HEAD, POST", map[string]http.HandlerFunc{"GET": o.list, "POST": o.create}},
		{"/auth/orgs/{org}", "DELETE, GET, HEAD, PATCH", map[string]http.HandlerFunc{"GET": o.get, "PATCH": o.update, "DELETE": o.delete}},
		{"/auth/orgs/{org}/members", "GET, HEAD", map[string]http.HandlerFunc{"GET": o.members}},
		{"/auth/orgs/{org}/members/{user_id}", "DELETE, PATCH", map[string]http.HandlerFunc{"PATCH": o.updateMember, "DELETE": o.removeMember}},
		{"/auth/orgs/{org}/invitations", "GET, HEAD, POST", map[string]http.HandlerFunc{"GET": o.invitations, "POST": o.invite}},
		{"/auth/orgs/{org}/invitations/{id}", "DELETE", map[string]http.HandlerFunc{"DELETE": o.revokeInvitation}},
		{"/auth/invitations/accept", "POST", map[string]http.HandlerFunc{"POST": o.accept}},
		{"/auth/orgs/{org}/audit-events", "GET, HEAD", map[string]http.HandlerFunc{"GET": o.auditEvents}},
		// The organisation's keys: the handlers of personal keys.
		{"/auth/orgs/{org}/api-keys", "GET, HEAD, POST", map[string]http.HandlerFunc{"GET": scoped(a.list), "POST": scoped(a.create)}},
		{"/auth/orgs/{org}/api-keys/{id}", "DELETE, PATCH", map[string]http.HandlerFunc{"PATCH": scoped(a.update), "DELETE": scoped(a.revoke)}},
		{"/auth/orgs/{org}/api-keys/{id}/roll", "POST", map[string]http.HandlerFunc{"POST": scoped(a.roll)}},
		{"/auth/orgs/{org}/api-keys/{id}/usage", "GET, HEAD", map[string]http.HandlerFunc{"GET": scoped(a.keyUsage)}},
		{"/auth/orgs/{org}/usage", "GET, HEAD", map[string]http.HandlerFunc{"GET": scoped(a.usageSummary)}},
	} {
		for method, h := range r.routes {
			a.route(mux, method+" "+r.path, authn, h)
		}
		a.methodNotAllowed(mux, r.path, authn, r.allow)
	}
}

// scoped runs h on the keys of the organisation the path names: the
// service finds the caller's role there and answers 404 for a
// non-member, so the handler checks nothing itself.
func scoped(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		h(w, r.WithContext(apikey.WithOrg(r.Context(), r.PathValue("org"))))
	}
}

// orgJSON is an organisation as its member sees it, with their role.
type orgJSON struct {
	ID                    string      `json:"id"`
	Name                  string      `json:"name"`
	Role                  apikey.Role `json:"role"`
	CreatedAt             string      `json:"created_at"`
	MaxKeyLifetimeSeconds *int64      `json:"max_key_lifetime_seconds"` // null: no limit
}

func orgOf(g org.Org) orgJSON {
	out := orgJSON{ID: g.ID, Name: g.Name, Role: g.Role, CreatedAt: apitime.Format(g.CreatedAt)}
	if g.MaxKeyLifetime > 0 {
		s := int64(g.MaxKeyLifetime / time.Second)
		out.MaxKeyLifetimeSeconds = &s
	}
	return out
}

type memberJSON struct {
	UserID   string      `json:"user_id"`
	Email    *string     `json:"email"` // null without built-in accounts
	Role     apikey.Role `json:"role"`
	JoinedAt string      `json:"joined_at"`
}

func memberOf(m org.Member) memberJSON {
	return memberJSON{UserID: m.UserID, Email: m.Email, Role: m.Role, JoinedAt: apitime.Format(m.JoinedAt)}
}

// invitationJSON is a pending invitation as listed: never its token.
type invitationJSON struct {
	ID        string      `json:"id"`
	Role      apikey.Role `json:"role"`
	Email     *string     `json:"email"`
	ExpiresAt string      `json:"expires_at"`
	CreatedAt string      `json:"created_at"`
	CreatedBy string      `json:"created_by"`
}

func invitationOf(inv org.Invitation) invitationJSON {
	return invitationJSON{
		ID: inv.ID, Role: inv.Role, Email: inv.Email, ExpiresAt: apitime.Format(inv.ExpiresAt),
		CreatedAt: apitime.Format(inv.CreatedAt), CreatedBy: inv.CreatedBy,
	}
}

// createdInvitationJSON is the answer to an invitation: the only one with
// its token.
type createdInvitationJSON struct {
	ID        string      `json:"id"`
	Role      apikey.Role `json:"role"`
	Email     *string     `json:"email"`
	ExpiresAt string      `json:"expires_at"`
	Token     string      `json:"token"`
}

func (o *Orgs) fail(w http.ResponseWriter, r *http.Request, err error) {
	httpx.WriteError(w, r, o.log, err)
}

func (o *Orgs) create(w http.ResponseWriter, r *http.Request) {
	if !requireJWT(w, r, o.log) {
		return
	}
	name, err := decodeStringField(w, r, "name", errOrgName)
	if err != nil {
		o.fail(w, r, err)
		return
	}
	g, err := o.svc.Create(r.Context(), name)
	if err != nil {
		o.fail(w, r, err)
		return
	}
	w.Header().Set("Location", orgPath(g.ID))
	httpx.WriteJSON(w, http.StatusCreated, orgOf(g))
}

var errOrgName = apperr.New(apperr.InvalidRequest, `the body must be a JSON object with "name", a string`)

func (o *Orgs) list(w http.ResponseWriter, r *http.Request) {
	gs, err := o.svc.List(r.Context())
	answerList(o, w, r, "orgs", gs, err, orgOf)
}

// answerList answers 200 with what a listing found, each item as show
// shows it, as the array member name of one object; or the listing's error.
func answerList[T, J any](o *Orgs, w http.ResponseWriter, r *http.Request, name string, items []T, err error, show func(T) J) {
	if err != nil {
		o.fail(w, r, err)
		return
	}
	out := make([]J, len(items))
	for i, it := range items {
		out[i] = show(it)
	}
	httpx.WriteJSON(w, http.StatusOK, map[string][]J{name: out})
}

func (o *Orgs) get(w http.ResponseWriter, r *http.Request) {
	g, err := o.svc.Get(r.Context(), r.PathValue("org"))
	if err != nil {
		o.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, orgOf(g))
}

// update answers PATCH /auth/orgs/{org}: name, max_key_lifetime_seconds or
// both; other fields are ignored.
func (o *Orgs) update(w http.ResponseWriter, r *http.Request) {
	if !requireJWT(w, r, o.log) {
		return
	}
	var in org.UpdateInput
	err := decodeBody(w, r, errOrgUpdate, func(field string, dec *json.Decoder) (err error) {
		switch field {
		case "name":
			in.Name.Set = true
			in.Name.Value, err = decodeString(field, dec)
		case "max_key_lifetime_seconds":
			in.MaxKeyLifetime.Set = true
			in.MaxKeyLifetime.Value, err = decodeLifetime(dec)
		default:
			err = httpx.SkipValue(dec)
		}
		return err
	})
	if err == nil && !in.Name.Set && !in.MaxKeyLifetime.Set {
		err = errOrgUpdate
	}
	if err != nil {
		o.fail(w, r, err)
		return
	}
	g, err := o.svc.Update(r.Context(), r.PathValue("org"), in)
	if err != nil {
		o.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, orgOf(g))
}

var errOrgUpdate = apperr.New(apperr.InvalidRequest, "the body must set name, max_key_lifetime_seconds or both")

// decodeLifetime reads a whole number of seconds, or null (nil). Its range
// is the service's to check: one out of range stays out of range.
func decodeLifetime(dec *json.Decoder) (*time.Duration, error) {
	raw, err := httpx.DecodeRaw(dec)
	if err != nil || string(raw) == "null" {
		return nil, err
	}
	n, err := decodeInteger("max_key_lifetime_seconds", raw)
	if err != nil {
		return nil, org.ErrBadMaxKeyLifetime
	}
	d := apikey.SecondsUpTo(n, org.LongestKeyLifetime)
	return &d, nil
}

func (o *Orgs) delete(w http.ResponseWriter, r *http.Request) {
	if err := o.svc.Delete(r.Context(), r.PathValue("org")); err != nil {
		o.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (o *Orgs) members(w http.ResponseWriter, r *http.Request) {
	ms, err := o.svc.Members(r.Context(), r.PathValue("org"))
	answerList(o, w, r, "members", ms, err, memberOf)
}

// updateMember answers PATCH /auth/orgs/{org}/members/{user_id}: the
// member's new role.
func (o *Orgs) updateMember(w http.ResponseWriter, r *http.Request) {
	if !requireJWT(w, r, o.log) {
		return
	}
	role, err := decodeStringField(w, r, "role", errRoleRequired)
	if err != nil {
		o.fail(w, r, err)
		return
	}
	m, err := o.svc.UpdateMember(r.Context(), r.PathValue("org"), r.PathValue("user_id"), apikey.Role(role))
	if err != nil {
		o.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, memberOf(m))
}

var errRoleRequired = apperr.New(apperr.InvalidRequest, `the body must be a JSON object with "role": "owner", "admin" or "member"`)

func (o *Orgs) removeMember(w http.ResponseWriter, r *http.Request) {
	if err := o.svc.RemoveMember(r.Context(), r.PathValue("org"), r.PathValue("user_id")); err != nil {
		o.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// invite answers POST /auth/orgs/{org}/invitations {"role", "email"}: 201
// with the invitation's token, shown this once.
func (o *Orgs) invite(w http.ResponseWriter, r *http.Request) {
	if !requireJWT(w, r, o.log) {
		return
	}
	var in org.InvitationInput
	var role bool
	err := decodeBody(w, r, errRoleRequired, func(field string, dec *json.Decoder) (err error) {
		switch field {
		case "role":
			role = true
			var s string
			s, err = decodeString(field, dec)
			in.Role = apikey.Role(s)
		case "email":
			in.Email, err = httpx.DecodeNullableString(field, dec)
		default:
			err = httpx.SkipValue(dec)
		}
		return err
	})
	if err == nil && !role {
		err = errRoleRequired
	}
	if err != nil {
		o.fail(w, r, err)
		return
	}
	inv, err := o.svc.CreateInvitation(r.Context(), r.PathValue("org"), in)
	if err != nil {
		o.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, createdInvitationJSON{
		ID: inv.ID, Role: inv.Role, Email: inv.Email, ExpiresAt: apitime.Format(inv.ExpiresAt), Token: inv.Token,
	})
}

func (o *Orgs) invitations(w http.ResponseWriter, r *http.Request) {
	invs, err := o.svc.Invitations(r.Context(), r.PathValue("org"))
	answerList(o, w, r, "invitations", invs, err, invitationOf)
}

func (o *Orgs) revokeInvitation(w http.ResponseWriter, r *http.Request) {
	if err := o.svc.RevokeInvitation(r.Context(), r.PathValue("org"), r.PathValue("id")); err != nil {
		o.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// accept answers POST /auth/invitations/accept {"token"}: the caller joins
// the organisation, which the answer shows as GET /auth/orgs/{org} would.
func (o *Orgs) accept(w http.ResponseWriter, r *http.Request) {
	if !requireJWT(w, r, o.log) {
		return
	}
	token, err := decodeStringField(w, r, "token", errTokenRequired)
	if err != nil {
		o.fail(w, r, err)
		return
	}
	g, err := o.svc.AcceptInvitation(r.Context(), token)
	if err != nil {
		o.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, orgOf(g))
}

var errTokenRequired = apperr.New(apperr.InvalidRequest, `the body must be a JSON object with "token", the invitation's`)

// auditEvents answers GET /auth/orgs/{org}/audit-events: the
// organisation's log, in the pages of GET /auth/audit-events.
func (o *Orgs) auditEvents(w http.ResponseWriter, r *http.Request) {
	limit, cursor, err := auditPageParams(r.URL.Query())
	if err != nil {
		o.fail(w, r, err)
		return
	}
	page, err := o.svc.AuditEvents(r.Context(), r.PathValue("org"), cursor, limit)
	if err != nil {
		o.fail(w, r, err)
		return
	}
	writeAuditPage(w, page)
}

// decodeBody reads a body that must be one JSON object, calling field for
// each member (httpx.DecodeObject); no body at all is the error empty.
func decodeBody(w http.ResponseWriter, r *http.Request, empty error, field func(name string, dec *json.Decoder) error) error {
	b, err := httpx.ReadBody(w, r, httpx.MaxBodyBytes)
	if err != nil {
		return err
	}
	if b == nil {
		return empty
	}
	return httpx.DecodeObject(b, field)
}

// decodeStringField reads a body that must be one JSON object with the
// string member field; other members are ignored. No body, or no such
// member, is the error missing.
func decodeStringField(w http.ResponseWriter, r *http.Request, field string, missing error) (string, error) {
	var v *string
	err := decodeBody(w, r, missing, func(name string, dec *json.Decoder) error {
		if name != field {
			return httpx.SkipValue(dec)
		}
		s, err := decodeString(name, dec)
		v = &s
		return err
	})
	if err == nil && v == nil {
		err = missing
	}
	if err != nil {
		return "", err
	}
	return *v, nil
}
