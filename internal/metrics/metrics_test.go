package metrics

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/httpx"
)

// TestObserverHooks checks the hooks that later components call (the
// verification cache, the last_used_at flusher) land in their metrics.
func TestObserverHooks(t *testing.T) {
	m := New(nil)
	var o apikey.Observer = m
	o.CacheLookup(true)
	o.CacheLookup(true)
	o.CacheLookup(false)
	o.UsageFlushed(3, nil)
	o.UsageFlushed(5, nil)
	o.UsageFlushed(2, errors.New("database down"))
	m.Verified(apikey.MethodAPIKey, apikey.OutcomeRevoked) // auth.Observer
	o.KeyCreated()
	o.KeyRevoked()
	if got := testutil.ToFloat64(m.rateFallback); got != 0 {
		t.Errorf("rate limit fallback at start: %v, want 0", got)
	}
	m.RateLimitFallback(true) // redislimit.Observer

	for _, c := range []struct {
		name string
		got  float64
		want float64
	}{
		{"cache hits", testutil.ToFloat64(m.cacheLookups.WithLabelValues("hit")), 2},
		{"cache misses", testutil.ToFloat64(m.cacheLookups.WithLabelValues("miss")), 1},
		{"flushes ok", testutil.ToFloat64(m.flushes.WithLabelValues("ok")), 2},
		{"flushes failed", testutil.ToFloat64(m.flushes.WithLabelValues("error")), 1},
		{"revoked verifications", testutil.ToFloat64(m.verifications.WithLabelValues("api_key", "revoked")), 1},
		{"keys created", testutil.ToFloat64(m.keysCreated), 1},
		{"keys revoked", testutil.ToFloat64(m.keysRevoked), 1},
		{"rate limit fallback", testutil.ToFloat64(m.rateFallback), 1},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}
	if n := testutil.CollectAndCount(m.flushKeys); n != 1 {
		t.Errorf("flush batch histogram has %d series", n)
	}
}

// TestRequestLabels checks that routes come from the request's record and
// that neither label can grow without bound.
func TestRequestLabels(t *testing.T) {
	m := New(nil)
	routed := httpx.Observe(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/known" {
			httpx.SetRoute(r.Context(), "GET /known/{id}")
		}
		w.WriteHeader(http.StatusTeapot)
	}), nil, m.Request)
	for _, req := range []*http.Request{
		httptest.NewRequest("GET", "/known", nil),
		httptest.NewRequest("GET", "/random/path/123", nil),
		httptest.NewRequest("FROBNICATE", "/random/other", nil),
	} {
		routed.ServeHTTP(httptest.NewRecorder(), req)
	}
	for _, c := range []struct{ route, method string }{
		{"/known/{id}", "GET"},
		{"unmatched", "GET"},
		{"unmatched", "other"},
	} {
		if got := testutil.ToFloat64(m.requests.WithLabelValues(c.route, c.method, "418")); got != 1 {
			t.Errorf("requests{route=%q,method=%q,status=418} = %v, want 1", c.route, c.method, got)
		}
	}
	if n := testutil.CollectAndCount(m.requests); n != 3 {
		t.Errorf("%d request series, want 3", n)
	}
	// A handler that writes nothing answers 200, and is counted so.
	httpx.Observe(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), nil, m.Request).
		ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
	if got := testutil.ToFloat64(m.requests.WithLabelValues("unmatched", "GET", "200")); got != 1 {
		t.Errorf("request whose handler wrote nothing: %v", got)
	}
}
