// Package accesslog writes one structured log line per HTTP request: method,
// route, status, latency, principal id and key id, and nothing else from the
// request (no headers, no query, no body: they may carry secrets).
package accesslog

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/apikeyd/apikeyd/internal/httpx"
)

// Writer returns the function that logs an answered request to log at Info
// level, for httpx.Observe.
func Writer(log *slog.Logger) func(*http.Request, *httpx.Record) {
	return func(r *http.Request, rec *httpx.Record) {
		attrs := []slog.Attr{
			slog.String("method", rec.Method),
			slog.String("route", rec.Route),
			slog.Int("status", rec.Status),
			slog.Float64("latency_ms", float64(time.Since(rec.Start).Microseconds())/1000),
		}
		if rec.UserID != "" {
			attrs = append(attrs, slog.String("user_id", rec.UserID))
		}
		if rec.KeyID != "" {
			attrs = append(attrs, slog.String("key_id", rec.KeyID))
		}
		log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
	}
}
