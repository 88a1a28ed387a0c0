// Package accesslog writes one structured log line per HTTP request: method,
// route, status, latency, principal id and key id, and nothing else from the
// request (no headers, no query, no body: they may carry secrets).
package accesslog

import (
	"context"
	"log/slog"
	"net/http"
	"time"
)

type infoKey struct{}

// Unmatched is the route of a request that no route pattern matched.
const Unmatched = "unmatched"

// info is filled in by inner handlers while the request runs.
type info struct {
	route  string
	userID string
	keyID  string
}

// SetRoute records the route pattern that served the request.
func SetRoute(ctx context.Context, route string) {
	if i, ok := ctx.Value(infoKey{}).(*info); ok {
		i.route = route
	}
}

// Route returns the route pattern recorded so far for the request, "" when
// ctx is not inside Middleware. Middleware inside this one (metrics) call it
// after the request is answered, to reuse the route rather than recompute it.
func Route(ctx context.Context) string {
	if i, ok := ctx.Value(infoKey{}).(*info); ok {
		return i.route
	}
	return ""
}

// SetPrincipal records who made the request.
func SetPrincipal(ctx context.Context, userID, keyID string) {
	if i, ok := ctx.Value(infoKey{}).(*info); ok {
		i.userID, i.keyID = userID, keyID
	}
}

// Middleware logs every request to log at Info level once it is answered.
func Middleware(log *slog.Logger, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		i := &info{route: Unmatched}
		rec := &StatusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r.WithContext(context.WithValue(r.Context(), infoKey{}, i)))
		attrs := []slog.Attr{
			slog.String("method", r.Method),
			slog.String("route", i.route),
			slog.Int("status", rec.Status()),
			slog.Float64("latency_ms", float64(time.Since(start).Microseconds())/1000),
		}
		if i.userID != "" {
			attrs = append(attrs, slog.String("user_id", i.userID))
		}
		if i.keyID != "" {
			attrs = append(attrs, slog.String("key_id", i.keyID))
		}
		log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
	})
}

// StatusRecorder remembers the status code written through it.
type StatusRecorder struct {
	http.ResponseWriter
	status int
}

// WriteHeader records code and passes it on.
func (s *StatusRecorder) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

// Write records an implicit 200.
func (s *StatusRecorder) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Status returns the status written, 200 if none was.
func (s *StatusRecorder) Status() int {
	if s.status == 0 {
		return http.StatusOK
	}
	return s.status
}

// Written reports whether a status has been written.
func (s *StatusRecorder) Written() bool { return s.status != 0 }

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *StatusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }
