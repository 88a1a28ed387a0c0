package httpx

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/apikeyd/apikeyd/internal/apperr"
)

// statusOf maps each error code to its HTTP status.
var statusOf = map[apperr.Code]int{
	apperr.MissingAuth:             http.StatusUnauthorized,
	apperr.InvalidToken:            http.StatusUnauthorized,
	apperr.JWTRequired:             http.StatusForbidden,
	apperr.InsufficientScope:       http.StatusForbidden,
	apperr.InsufficientRole:        http.StatusForbidden,
	apperr.NotFound:                http.StatusNotFound,
	apperr.MethodNotAllowed:        http.StatusMethodNotAllowed,
	apperr.InvalidRequest:          http.StatusBadRequest,
	apperr.PayloadTooLarge:         http.StatusRequestEntityTooLarge,
	apperr.UnsupportedMediaType:    http.StatusUnsupportedMediaType,
	apperr.KeyLimitReached:         http.StatusForbidden,
	apperr.KeyAlreadyRolled:        http.StatusConflict,
	apperr.KeyExpired:              http.StatusConflict,
	apperr.EmailTaken:              http.StatusConflict,
	apperr.LastOwner:               http.StatusConflict,
	apperr.InvitationEmailMismatch: http.StatusForbidden,
	apperr.InvalidCredentials:      http.StatusUnauthorized,
	apperr.RateLimited:             http.StatusTooManyRequests,
	apperr.KeyDisabled:             http.StatusForbidden,
	apperr.IPNotAllowed:            http.StatusForbidden,
	apperr.UsageExceeded:           http.StatusTooManyRequests,
	apperr.InvalidSignature:        http.StatusUnauthorized,
	apperr.ServerBusy:              http.StatusServiceUnavailable,
	apperr.Internal:                http.StatusInternalServerError,
}

// Status returns the HTTP status of an error code.
func Status(code apperr.Code) int {
	if s, ok := statusOf[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// errorBody is the error shape of every route.
type errorBody struct {
	Error      string      `json:"error"`
	StatusCode int         `json:"statusCode"`
	Code       apperr.Code `json:"code"`
}

// WriteError answers with err in the error shape. Errors that are not coded
// (and SERVER_BUSY, whose cause an operator needs) are logged (LogFailure);
// the client sees only the coded message, or "internal error".
func WriteError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	code := apperr.CodeOf(err)
	status := Status(code)
	LogFailure(r.Context(), log, "request failed", code, err,
		slog.String("method", r.Method), slog.String("path", r.URL.Path))
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", challenge(code))
	}
	WriteJSON(w, status, errorBody{Error: apperr.MessageOf(err), StatusCode: status, Code: code})
}

// LogFailure logs a request that failed with err, of code: INTERNAL (a
// failure of the server's own) at ERROR, SERVER_BUSY (a dependency such as
// the database or the identity provider is down, which its own log line
// reports once) at WARN; but a request whose client hung up first (ctx is
// cancelled), which interrupts whatever it was doing, at INFO: that is no
// failure of the server's. Other codes are the client's mistakes and are not
// logged. err's text may name internals but never a secret: errors never
// carry one.
func LogFailure(ctx context.Context, log *slog.Logger, msg string, code apperr.Code, err error, attrs ...slog.Attr) {
	level := slog.LevelError
	switch {
	case code != apperr.Internal && code != apperr.ServerBusy:
		return
	case ctx.Err() != nil:
		level, msg = slog.LevelInfo, "client closed the request before it was answered"
	case code == apperr.ServerBusy:
		level = slog.LevelWarn
	}
	attrs = append(attrs, slog.String("code", string(code)), slog.String("err", err.Error()))
	log.LogAttrs(ctx, level, msg, attrs...)
}

// RetryAfter tells a refused client, in Retry-After, to come back in wait
// (whole seconds, at least one).
func RetryAfter(w http.ResponseWriter, wait time.Duration) {
	w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
}

// WriteJSON answers with status and v as JSON.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":"internal error","statusCode":500,"code":"INTERNAL"}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// challenge is the WWW-Authenticate value of a 401 (RFC 6750, section 3): a
// credential that was presented and refused is error="invalid_token"; a
// missing or malformed one carries no error. Besides telling clients, it is
// what lets a reverse proxy, which sees the headers of an auth_request answer
// but not its body, rebuild the right error.
func challenge(code apperr.Code) string {
	if code == apperr.InvalidToken {
		return `Bearer realm="apikeyd", error="invalid_token"`
	}
	return `Bearer realm="apikeyd"`
}
