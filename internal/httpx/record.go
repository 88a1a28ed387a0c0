package httpx

import (
	"context"
	"log/slog"
	"net/http"
	"time"
)

// Unmatched is the route of a request that no route pattern matched.
const Unmatched = "unmatched"

// Record is what is known of one request once it is answered. The handlers
// fill in the route and the principal while it runs; the one StatusRecorder
// of Observe fills in the status.
type Record struct {
	Method string
	Route  string // the route pattern that served it, or Unmatched
	UserID string // who made it, when authenticated
	KeyID  string // the API key it came with, if any
	Status int    // the status written; 0 until written
	Start  time.Time
}

type recordKey struct{}

func recordOf(ctx context.Context) *Record {
	rec, _ := ctx.Value(recordKey{}).(*Record)
	return rec
}

// SetRoute records the route pattern that serves the request.
func SetRoute(ctx context.Context, route string) {
	if rec := recordOf(ctx); rec != nil {
		rec.Route = route
	}
}

// SetPrincipal records who made the request.
func SetPrincipal(ctx context.Context, userID, keyID string) {
	if rec := recordOf(ctx); rec != nil {
		rec.UserID, rec.KeyID = userID, keyID
	}
}

// Written reports whether the answer to the request of ctx has begun (its
// status is written), as far as Observe saw it.
func Written(ctx context.Context) bool {
	rec := recordOf(ctx)
	return rec != nil && rec.Status != 0
}

// Observe gives each request a Record and answers it through one
// StatusRecorder; once the request is answered, each of done is called with
// the record (the access log, the metrics). prepare, when not nil, adds what
// else every handler may need to the request's context (where the request
// came from), in the same copy of the request. It is the outermost handler.
func Observe(next http.Handler, prepare func(context.Context, *http.Request) context.Context, done ...func(*http.Request, *Record)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &Record{Method: r.Method, Route: Unmatched, Start: time.Now()}
		ctx := context.WithValue(r.Context(), recordKey{}, rec)
		if prepare != nil {
			ctx = prepare(ctx, r)
		}
		next.ServeHTTP(&statusRecorder{ResponseWriter: w, rec: rec}, r.WithContext(ctx))
		if rec.Status == 0 {
			rec.Status = http.StatusOK // net/http's answer to a handler that wrote nothing
		}
		for _, f := range done {
			f(r, rec)
		}
	})
}

// statusRecorder writes the status of the answer into its record.
type statusRecorder struct {
	http.ResponseWriter
	rec *Record
}

// WriteHeader records code and passes it on.
func (s *statusRecorder) WriteHeader(code int) {
	if s.rec.Status == 0 {
		s.rec.Status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

// Write records an implicit 200.
func (s *statusRecorder) Write(b []byte) (int, error) {
	if s.rec.Status == 0 {
		s.rec.Status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the underlying writer.
func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// AccessLog returns the function that logs each answered request to log, at
// Info, for Observe: one line of its method, route, status, latency,
// principal id and key id, and nothing else from the request (no headers,
// no query, no body: they may carry secrets).
func AccessLog(log *slog.Logger) func(*http.Request, *Record) {
	return func(r *http.Request, rec *Record) {
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
