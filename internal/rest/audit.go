package rest

import (
	"log/slog"
	"net/http"
	"net/url"
	"strconv"

	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/audit"
	"github.com/apikeyd/apikeyd/internal/auth"
	"github.com/apikeyd/apikeyd/internal/httpx"
)

// Audit serves GET /auth/audit-events over one audit.Service.
type Audit struct {
	svc *audit.Service
	log *slog.Logger
}

// NewAudit returns the REST adapter of the audit log.
func NewAudit(svc *audit.Service, log *slog.Logger) *Audit { return &Audit{svc: svc, log: log} }

// Register mounts the route on mux, behind authn's verification of the
// credential a request brings; other methods answer 405.
func (a *Audit) Register(mux *http.ServeMux, authn *auth.Authenticator) {
	authenticate := Authenticated(authn, a.log)
	mux.Handle("GET /auth/audit-events", httpx.Route("GET /auth/audit-events", authenticate(http.HandlerFunc(a.list))))
	mux.Handle("/auth/audit-events", httpx.Route("/auth/audit-events", authenticate(httpx.MethodNotAllowed(a.log, "GET, HEAD"))))
}

func (a *Audit) list(w http.ResponseWriter, r *http.Request) {
	limit, cursor, err := auditPageParams(r.URL.Query())
	if err != nil {
		httpx.WriteError(w, r, a.log, err)
		return
	}
	page, err := a.svc.List(r.Context(), limit, cursor)
	if err != nil {
		httpx.WriteError(w, r, a.log, err)
		return
	}
	writeAuditPage(w, page)
}

// auditPageParams reads the limit and cursor parameters of a page of audit
// events, each optional and given at most once; the limit's range and the
// cursor's content are the service's to check.
func auditPageParams(q url.Values) (limit int, cursor string, err error) {
	limit = audit.DefaultLimit
	if vs, ok := q["limit"]; ok {
		n, err := strconv.Atoi(vs[0])
		if err != nil || len(vs) > 1 {
			return 0, "", audit.ErrBadLimit
		}
		limit = n
	}
	if vs, ok := q["cursor"]; ok {
		if len(vs) > 1 || vs[0] == "" {
			return 0, "", errBadCursor
		}
		cursor = vs[0]
	}
	return limit, cursor, nil
}

var errBadCursor = apperr.New(apperr.InvalidRequest, "cursor must be next_cursor of a previous page")

// writeAuditPage answers 200 with a page of events.
func writeAuditPage(w http.ResponseWriter, page audit.Page) {
	out := struct {
		Events []audit.JSON `json:"audit_events"`
		Next   *string      `json:"next_cursor"`
	}{Events: make([]audit.JSON, len(page.Events))}
	for i, ev := range page.Events {
		out.Events[i] = ev.ToJSON()
	}
	if page.Next != "" {
		out.Next = &page.Next
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}
