package rest

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"log/slog"
	"net/http"
	"strings"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/auth"
	"github.com/apikeyd/apikeyd/internal/httpx"
	"github.com/apikeyd/apikeyd/internal/leak"
)

// GitLabTokenType is the token type apikeyd revokes for a self-managed
// GitLab (GET /auth/leaks/gitlab/revocable_token_types).
const GitLabTokenType = "apikeyd_api_key"

// Leaks serves the leak report routes: POST /auth/leaks (GitHub's secret
// scanning partner format, signed) and the token revocation service of a
// self-managed GitLab under /auth/leaks/gitlab/ (a pre-shared token). Their
// callers are code hosts, not users: they bring no API key or login token,
// so the routes are not behind auth.Authenticator.Optional (which would read
// GitLab's "Authorization: <token>" as a malformed credential and count each
// call as a failed authentication, rate limiting a code host for doing its
// job): they check their own credential, drawing on the same per-address
// budget of failed authentications.
type Leaks struct {
	svc      *apikey.Service
	log      *slog.Logger
	verifier *leak.Verifier // nil: no POST /auth/leaks
	token    []byte         // SHA-256 of the GitLab token; nil: no GitLab routes
	client   *auth.ClientIP
	failures *auth.AddressLimiter
}

// NewLeaks returns the leak report routes. A nil verifier turns
// POST /auth/leaks off, an empty gitlabToken the GitLab routes; either
// then answers 404.
func NewLeaks(svc *apikey.Service, log *slog.Logger, verifier *leak.Verifier, gitlabToken string, client *auth.ClientIP, failures *auth.AddressLimiter) *Leaks {
	l := &Leaks{svc: svc, log: log, verifier: verifier, client: client, failures: failures}
	if client == nil {
		l.client = auth.NewClientIP(nil)
	}
	if gitlabToken != "" {
		sum := sha256.Sum256([]byte(gitlabToken))
		l.token = sum[:]
	}
	return l
}

// leakPrefix is where the leak routes live.
const leakPrefix = "/auth/leaks"

// Register mounts the leak routes on mux, which check their own credential;
// other methods answer 405, other paths under them 404.
func (l *Leaks) Register(mux *http.ServeMux) {
	mount := func(method, path string, on bool, off string, h http.HandlerFunc) {
		if !on {
			mux.Handle(path, httpx.Route(path, off404(l.log, off)))
			return
		}
		mux.Handle(method+" "+path, httpx.Route(method+" "+path, h))
		allow := method
		if method == http.MethodGet {
			allow = "GET, HEAD"
		}
		mux.Handle(path, httpx.Route(path, httpx.MethodNotAllowed(l.log, allow)))
	}
	const github = "leak reports are off: set LEAK_REPORT_KEYS_URL or LEAK_REPORT_KEYS_FILE"
	const gitlab = "the GitLab token revocation service is off: set LEAK_REVOCATION_TOKEN"
	mount(http.MethodPost, leakPrefix, l.verifier != nil, github, l.report)
	mount(http.MethodGet, leakPrefix+"/gitlab/revocable_token_types", l.token != nil, gitlab, l.gitlabTypes)
	mount(http.MethodPost, leakPrefix+"/gitlab/revoke_tokens", l.token != nil, gitlab, l.gitlabRevoke)
	// Any other path under the leak routes is unknown, and answered as
	// such before any credential it brings is looked at, like the routes.
	mux.Handle(leakPrefix+"/", httpx.NotFound(l.log))
}

// off404 answers 404 for a route whose feature is off.
func off404(log *slog.Logger, why string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteError(w, r, log, apperr.New(apperr.NotFound, why))
	})
}

var (
	errReportTooLarge  = apperr.Errorf(apperr.PayloadTooLarge, "a leak report is at most %d bytes", leak.MaxReportBytes)
	errRevocationAuth  = apperr.New(apperr.InvalidToken, "the token revocation service needs 'Authorization: <LEAK_REVOCATION_TOKEN>'")
	errReportMediaType = apperr.New(apperr.UnsupportedMediaType, "request body must be application/json")
)

// authenticate runs check, which checks the credential of a code host's
// request, as one authentication attempt of r's address (auth.Attempt).
func (l *Leaks) authenticate(w http.ResponseWriter, r *http.Request, check func() error) error {
	return auth.Attempt(w, r, l.failures, l.client.Of(r), auth.ErrAddressLimited, check)
}

// readReport reads a report body of at most leak.MaxReportBytes, however it
// is framed.
func readReport(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := httpx.ReadCapped(w, r, leak.MaxReportBytes)
	if apperr.CodeOf(err) == apperr.PayloadTooLarge {
		return nil, errReportTooLarge
	}
	return b, err
}

// report is POST /auth/leaks: the signature over the raw body is checked
// before anything else is read from it.
func (l *Leaks) report(w http.ResponseWriter, r *http.Request) {
	var b []byte
	err := l.authenticate(w, r, func() error {
		var err error
		if b, err = readReport(w, r); err != nil {
			return err
		}
		return l.verifier.Verify(r.Context(), r.Header.Get("Github-Public-Key-Identifier"), r.Header.Get("Github-Public-Key-Signature"), b)
	})
	if err != nil {
		httpx.WriteError(w, r, l.log, err)
		return
	}
	if !httpx.IsJSON(r.Header.Get("Content-Type")) {
		httpx.WriteError(w, r, l.log, errReportMediaType)
		return
	}
	tokens, err := leak.ParseReport(b)
	if err != nil {
		httpx.WriteError(w, r, l.log, err)
		return
	}
	found, err := l.revoke(r, "github", tokens)
	if err != nil {
		httpx.WriteError(w, r, l.log, err)
		return
	}
	out := make([]leak.Feedback, len(tokens))
	for i, t := range tokens {
		sum := sha256.Sum256([]byte(t.Token))
		out[i] = leak.Feedback{TokenHash: hex.EncodeToString(sum[:]), TokenType: t.Type, Label: leak.LabelFalsePositive}
		if found[i] {
			out[i].Label = leak.LabelTruePositive
		}
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// revoke revokes every active key among tokens, in order, and tells which
// tokens are keys revoked by a leak report. It logs how many, never which.
// A failure stops it: the code host retries the whole report, and the keys
// already revoked are then found revoked.
func (l *Leaks) revoke(r *http.Request, from string, tokens []leak.Token) ([]bool, error) {
	found := make([]bool, len(tokens))
	n := 0
	for i, t := range tokens {
		ok, err := l.svc.RevokeLeaked(r.Context(), t.Token, apikey.Leak{URL: t.URL, Source: t.Source})
		if err != nil {
			return nil, err
		}
		if found[i] = ok; ok {
			n++
		}
	}
	l.log.LogAttrs(r.Context(), slog.LevelInfo, "leak report",
		slog.String("from", from), slog.Int("tokens", len(tokens)), slog.Int("keys", n))
	return found, nil
}

// gitlabAuth checks "Authorization: <token>" in constant time (hashes of
// equal length are compared, so not even the length leaks). It answers a
// request that fails, and reports whether it passed.
func (l *Leaks) gitlabAuth(w http.ResponseWriter, r *http.Request) bool {
	err := l.authenticate(w, r, func() error {
		got := r.Header.Values("Authorization")
		sum := sha256.Sum256([]byte(strings.Join(got, "\n")))
		if len(got) != 1 || subtle.ConstantTimeCompare(sum[:], l.token) != 1 {
			return errRevocationAuth
		}
		return nil
	})
	if err != nil {
		httpx.WriteError(w, r, l.log, err)
		return false
	}
	return true
}

// gitlabTypes is GET /auth/leaks/gitlab/revocable_token_types.
func (l *Leaks) gitlabTypes(w http.ResponseWriter, r *http.Request) {
	if !l.gitlabAuth(w, r) {
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string][]string{"types": {GitLabTokenType}})
}

// gitlabRevoke is POST /auth/leaks/gitlab/revoke_tokens: 204 once every
// active key among the tokens is revoked.
func (l *Leaks) gitlabRevoke(w http.ResponseWriter, r *http.Request) {
	if !l.gitlabAuth(w, r) {
		return
	}
	b, err := readReport(w, r)
	if err == nil && !httpx.IsJSON(r.Header.Get("Content-Type")) {
		err = errReportMediaType
	}
	if err != nil {
		httpx.WriteError(w, r, l.log, err)
		return
	}
	tokens, err := leak.ParseGitLabRequest(b)
	if err == nil {
		_, err = l.revoke(r, "gitlab", tokens)
	}
	if err != nil {
		httpx.WriteError(w, r, l.log, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
