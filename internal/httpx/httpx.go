// Package httpx is the HTTP plumbing that every face of apikeyd shares (the
// REST adapter, the GraphQL endpoint, the web pages): the error shape and its
// status table, strict JSON bodies, routing helpers, the per-request record
// (which the metrics read) and the access log line written from it, and the
// middleware every answer passes through (panic recovery, security headers,
// CORS, no-store). It serves; it sends nothing (apikeyd's own requests go
// through outbound), and it knows no route and no domain rule.
package httpx

import (
	"log/slog"
	"net/http"

	"github.com/apikeyd/apikeyd/internal/apperr"
)

// Route wraps h so that the request's record names pattern as its route.
func Route(pattern string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		SetRoute(r.Context(), pattern)
		h.ServeHTTP(w, r)
	})
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
