package rest

import (
	"net/http"

	"github.com/apikeyd/apikeyd/internal/apitime"
	"github.com/apikeyd/apikeyd/internal/httpx"
)

// leakNoticeJSON is one of the caller's keys that a leak report revoked, as
// GET /auth/leak-notices lists it.
type leakNoticeJSON struct {
	ID        string  `json:"id"`
	KeyPrefix string  `json:"key_prefix"`
	Name      *string `json:"name"`
	URL       *string `json:"url"`    // where it was found; null when the report did not say
	Source    *string `json:"source"` // commit, issue, …, gitlab; null when not said
	RevokedAt string  `json:"revoked_at"`
}

// leakNotices answers GET /auth/leak-notices: the caller's keys revoked by
// leak reports whose notice is not dismissed, most recent first.
func (a *API) leakNotices(w http.ResponseWriter, r *http.Request) {
	ns, err := a.svc.LeakNotices(r.Context())
	if err != nil {
		httpx.WriteError(w, r, a.log, err)
		return
	}
	out := make([]leakNoticeJSON, len(ns))
	for i, n := range ns {
		out[i] = leakNoticeJSON{
			ID:        n.ID,
			KeyPrefix: n.KeyPrefix,
			Name:      n.Name,
			URL:       n.URL,
			Source:    n.Source,
			RevokedAt: apitime.Format(n.LeakedAt),
		}
	}
	httpx.WriteJSON(w, http.StatusOK, struct {
		LeakNotices []leakNoticeJSON `json:"leak_notices"`
	}{out})
}

// dismissLeakNotice answers DELETE /auth/leak-notices/{id}: 204 once the
// notice is dismissed, 404 unless it is an undismissed notice of the
// caller's.
func (a *API) dismissLeakNotice(w http.ResponseWriter, r *http.Request) {
	if err := a.svc.DismissLeakNotice(r.Context(), r.PathValue("id")); err != nil {
		httpx.WriteError(w, r, a.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
