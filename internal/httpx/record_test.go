package httpx_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/apikeyd/apikeyd/internal/httpx"
)

type originKey struct{}

func TestObserve(t *testing.T) {
	for _, tc := range []struct {
		name   string
		h      http.Handler
		status int
		route  string
		user   string
		key    string
	}{
		{"unmatched, nothing written", http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), 200, httpx.Unmatched, "", ""},
		{"route and principal", httpx.Route("GET /auth/verify", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			httpx.SetPrincipal(r.Context(), "user-1", "key-1")
			w.WriteHeader(http.StatusNoContent)
			w.WriteHeader(http.StatusOK) // superfluous: the first status counts
		})), 204, "GET /auth/verify", "user-1", "key-1"},
		{"implicit 200 on write", httpx.Route("/metrics", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte("x"))
		})), 200, "/metrics", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []*httpx.Record
			var written bool
			h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Context().Value(originKey{}) != "prepared" {
					t.Error("prepare's context did not reach the handler")
				}
				if httpx.Written(r.Context()) {
					t.Error("Written before anything was written")
				}
				tc.h.ServeHTTP(w, r)
				written = httpx.Written(r.Context())
			})
			prepare := func(ctx context.Context, _ *http.Request) context.Context {
				return context.WithValue(ctx, originKey{}, "prepared")
			}
			record := func(_ *http.Request, rec *httpx.Record) { got = append(got, rec) }
			httpx.Observe(h, prepare, record, record).ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/x", nil))
			if len(got) != 2 || got[0] != got[1] {
				t.Fatalf("each done function is called once with the one record: %v", got)
			}
			rec := got[0]
			if rec.Method != "GET" || rec.Route != tc.route || rec.Status != tc.status || rec.UserID != tc.user || rec.KeyID != tc.key || rec.Start.IsZero() {
				t.Errorf("record %+v", rec)
			}
			if written != (tc.status != 200 || tc.route == "/metrics") {
				t.Errorf("Written = %v after the handler", written)
			}
		})
	}
}

func TestRecordOutsideObserve(t *testing.T) {
	ctx := context.Background() // no record: the setters do nothing
	httpx.SetRoute(ctx, "x")
	httpx.SetPrincipal(ctx, "u", "k")
	if httpx.Written(ctx) {
		t.Error("Written without a record")
	}
}

func TestAccessLog(t *testing.T) {
	var jsonLog strings.Builder
	h := httpx.Observe(httpx.Route("POST /auth/api-keys", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpx.SetPrincipal(r.Context(), "user-1", "")
		w.WriteHeader(http.StatusCreated)
	})), nil, httpx.AccessLog(slog.New(slog.NewJSONHandler(&jsonLog, nil))))
	r := httptest.NewRequest(http.MethodPost, "/auth/api-keys?api_key=secret-in-query", strings.NewReader(`{"name":"secret-in-body"}`))
	r.Header.Set("Authorization", "Bearer secret-in-header")
	r.Header.Set("User-Agent", "secret-in-agent")
	h.ServeHTTP(httptest.NewRecorder(), r)

	var line map[string]any
	if err := json.Unmarshal([]byte(jsonLog.String()), &line); err != nil {
		t.Fatalf("not one JSON line: %q", jsonLog.String())
	}
	delete(line, "time")
	if ms, ok := line["latency_ms"].(float64); !ok || ms < 0 {
		t.Errorf("latency_ms %v", line["latency_ms"])
	}
	delete(line, "latency_ms")
	want := map[string]any{"level": "INFO", "msg": "request", "method": "POST", "route": "POST /auth/api-keys", "status": float64(201), "user_id": "user-1"}
	if len(line) != len(want) {
		t.Errorf("line %v, want exactly %v (and time, latency_ms)", line, want)
	}
	for k, v := range want {
		if line[k] != v {
			t.Errorf("%s = %v, want %v", k, line[k], v)
		}
	}
	if strings.Contains(jsonLog.String(), "secret") {
		t.Errorf("the line carries more than it should: %s", jsonLog.String())
	}
}
