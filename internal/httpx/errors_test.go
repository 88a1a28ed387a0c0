package httpx_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/httpx"
)

// errorShape is the error body of every route, with no member besides.
type errorShape struct {
	Error      string `json:"error"`
	StatusCode int    `json:"statusCode"`
	Code       string `json:"code"`
}

// decodeError decodes rec's body strictly as the error shape.
func decodeError(t *testing.T, rec *httptest.ResponseRecorder) errorShape {
	t.Helper()
	dec := json.NewDecoder(rec.Body)
	dec.DisallowUnknownFields()
	var e errorShape
	if err := dec.Decode(&e); err != nil {
		t.Fatalf("body is not the error shape: %v", err)
	}
	return e
}

// testLog returns a logger writing text lines to the returned buffer.
func testLog() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})), &buf
}

func TestWriteError(t *testing.T) {
	cause := errors.New("pq: connection refused to db.internal")
	for _, tc := range []struct {
		err       error
		status    int
		message   string
		challenge string // WWW-Authenticate; empty: none
		logged    string // the level of the log line; empty: none
	}{
		{apperr.New(apperr.MissingAuth, "no credential"), 401, "no credential", `Bearer realm="apikeyd"`, ""},
		{apperr.New(apperr.InvalidToken, "expired"), 401, "expired", `Bearer realm="apikeyd", error="invalid_token"`, ""},
		{apperr.New(apperr.InvalidCredentials, "wrong password"), 401, "wrong password", `Bearer realm="apikeyd"`, ""},
		{apperr.New(apperr.InvalidSignature, "bad signature"), 401, "bad signature", `Bearer realm="apikeyd"`, ""},
		{apperr.New(apperr.JWTRequired, "use a login token"), 403, "use a login token", "", ""},
		{apperr.New(apperr.InsufficientScope, "lacks a:b"), 403, "lacks a:b", "", ""},
		{apperr.New(apperr.KeyLimitReached, "too many"), 403, "too many", "", ""},
		{apperr.New(apperr.InsufficientRole, "owners only"), 403, "owners only", "", ""},
		{apperr.New(apperr.InvitationEmailMismatch, "not yours"), 403, "not yours", "", ""},
		{apperr.New(apperr.NotFound, "no such key"), 404, "no such key", "", ""},
		{apperr.New(apperr.MethodNotAllowed, "use GET"), 405, "use GET", "", ""},
		{apperr.New(apperr.InvalidRequest, "bad"), 400, "bad", "", ""},
		{apperr.New(apperr.PayloadTooLarge, "big"), 413, "big", "", ""},
		{apperr.New(apperr.UnsupportedMediaType, "json only"), 415, "json only", "", ""},
		{apperr.New(apperr.KeyAlreadyRolled, "rolled"), 409, "rolled", "", ""},
		{apperr.New(apperr.KeyExpired, "expired"), 409, "expired", "", ""},
		{apperr.New(apperr.EmailTaken, "taken"), 409, "taken", "", ""},
		{apperr.New(apperr.LastOwner, "last owner"), 409, "last owner", "", ""},
		{apperr.New(apperr.RateLimited, "slow down"), 429, "slow down", "", ""},
		{apperr.Wrap(apperr.ServerBusy, "database unavailable", cause), 503, "database unavailable", "", "WARN"},
		{apperr.Wrap(apperr.Internal, "internal error", cause), 500, "internal error", "", "ERROR"},
		{cause, 500, "internal error", "", "ERROR"},
		{fmt.Errorf("list: %w", apperr.New(apperr.NotFound, "no such key")), 404, "no such key", "", ""},
	} {
		t.Run(fmt.Sprint(tc.status, " ", tc.err), func(t *testing.T) {
			log, buf := testLog()
			rec := httptest.NewRecorder()
			httpx.WriteError(rec, httptest.NewRequest(http.MethodGet, "/auth/api-keys?q=1", nil), log, tc.err)
			if rec.Code != tc.status {
				t.Errorf("status %d, want %d", rec.Code, tc.status)
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
				t.Errorf("Content-Type %q", ct)
			}
			if n := rec.Header().Get("X-Content-Type-Options"); n != "nosniff" {
				t.Errorf("X-Content-Type-Options %q", n)
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != tc.challenge {
				t.Errorf("WWW-Authenticate %q, want %q", got, tc.challenge)
			}
			e := decodeError(t, rec)
			if e.StatusCode != tc.status || e.Code != string(apperr.CodeOf(tc.err)) || e.Error != tc.message {
				t.Errorf("body %+v", e)
			}
			if strings.Contains(rec.Body.String(), "db.internal") {
				t.Errorf("the cause reached the client: %s", rec.Body)
			}
			switch line := buf.String(); {
			case tc.logged == "" && line != "":
				t.Errorf("a client's mistake was logged: %s", line)
			case tc.logged != "" && !strings.Contains(line, "level="+tc.logged):
				t.Errorf("log %q, want a %s line", line, tc.logged)
			case tc.logged != "" && !strings.Contains(line, "db.internal"):
				t.Errorf("the log lacks the cause an operator needs: %s", line)
			case tc.logged != "" && !strings.Contains(line, "path=/auth/api-keys ") || strings.Contains(line, "q=1"):
				t.Errorf("the log should name the path, not the query: %s", line)
			}
		})
	}
}

func TestStatusOfUnknownCode(t *testing.T) {
	if s := httpx.Status("NO_SUCH_CODE"); s != http.StatusInternalServerError {
		t.Errorf("Status = %d", s)
	}
}

func TestLogFailureClientGone(t *testing.T) {
	log, buf := testLog()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	httpx.LogFailure(ctx, log, "request failed", apperr.Internal, context.Canceled)
	if line := buf.String(); !strings.Contains(line, "level=INFO") || !strings.Contains(line, "client closed the request") {
		t.Errorf("a request whose client left is logged as %q", line)
	}
}

func TestRetryAfter(t *testing.T) {
	for wait, want := range map[time.Duration]string{0: "1", 300 * time.Millisecond: "1", time.Second: "2", 59*time.Second + 999*time.Millisecond: "60"} {
		rec := httptest.NewRecorder()
		httpx.RetryAfter(rec, wait)
		if got := rec.Header().Get("Retry-After"); got != want {
			t.Errorf("RetryAfter(%v) = %q, want %q", wait, got, want)
		}
	}
}

func TestWriteJSONUnencodable(t *testing.T) {
	rec := httptest.NewRecorder()
	httpx.WriteJSON(rec, http.StatusOK, map[string]any{"f": func() {}})
	if rec.Code != 500 || decodeError(t, rec).Code != string(apperr.Internal) {
		t.Errorf("an answer that cannot be encoded gave %d %s", rec.Code, rec.Body)
	}
}

func TestNotFoundAndMethodNotAllowed(t *testing.T) {
	log, _ := testLog()
	rec := httptest.NewRecorder()
	httpx.NotFound(log).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/nope", nil))
	if e := decodeError(t, rec); rec.Code != 404 || e.Code != string(apperr.NotFound) {
		t.Errorf("NotFound: %d %+v", rec.Code, e)
	}

	rec = httptest.NewRecorder()
	httpx.MethodNotAllowed(log, "GET, HEAD").ServeHTTP(rec, httptest.NewRequest(http.MethodPut, "/healthz", nil))
	if e := decodeError(t, rec); rec.Code != 405 || e.Code != string(apperr.MethodNotAllowed) || !strings.Contains(e.Error, "PUT") {
		t.Errorf("MethodNotAllowed: %d %+v", rec.Code, e)
	}
	if allow := rec.Header().Get("Allow"); allow != "GET, HEAD" {
		t.Errorf("Allow %q", allow)
	}
}
