// Package metrics exposes apikeyd's Prometheus metrics: HTTP requests by
// route, method and status with their latency; verifications by method and
// outcome; keys created and revoked; last_used_at flushes; verification-cache
// lookups; whether rate limits fall back from Redis to this server's own
// buckets; the database connection pool; and the Go runtime and process.
//
// Metrics owns its registry rather than using the process-wide default, so
// each App (and each test) counts on its own. No label ever carries a user
// id, a key id or any other unbounded value.
package metrics

import (
	"database/sql"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/httpx"
)

// Metrics holds apikeyd's collectors. It implements apikey.Observer and
// auth.Observer.
type Metrics struct {
	registry      *prometheus.Registry
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	verifications *prometheus.CounterVec
	keysCreated   prometheus.Counter
	keysRevoked   prometheus.Counter
	flushes       *prometheus.CounterVec
	flushKeys     prometheus.Histogram
	cacheLookups  *prometheus.CounterVec
	rateFallback  prometheus.Gauge
	eventMetrics
}

var _ apikey.Observer = (*Metrics)(nil)

// verificationLabels lists the method and outcome pairs that can happen; they
// are exported at zero from the start, so that rates and alerts need not
// wait for a first occurrence.
var verificationLabels = map[apikey.Method][]apikey.Outcome{
	apikey.MethodAPIKey: {apikey.OutcomeOK, apikey.OutcomeMalformed, apikey.OutcomeBadChecksum, apikey.OutcomeUnknown,
		apikey.OutcomeRevoked, apikey.OutcomeExpired, apikey.OutcomeAddressLimited, apikey.OutcomeError,
		apikey.OutcomeInsufficientScope, apikey.OutcomeDisabled, apikey.OutcomeIPNotAllowed,
		apikey.OutcomeRateLimited, apikey.OutcomeUsageExceeded},
	apikey.MethodJWT: {apikey.OutcomeOK, apikey.OutcomeMalformed, apikey.OutcomeExpired, apikey.OutcomeInvalid,
		apikey.OutcomeAddressLimited, apikey.OutcomeError},
	apikey.MethodNone: {apikey.OutcomeMissing, apikey.OutcomeMalformed, apikey.OutcomeAddressLimited},
}

// New returns Metrics with every collector registered, the Go runtime and
// process collectors included, and db's connection pool statistics
// (go_sql_*, with db_name="apikeyd": connections in use and idle, waits and
// their duration) unless db is nil.
func New(db *sql.DB) *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apikeyd_http_requests_total",
			Help: "HTTP requests answered, by route pattern, method and status code.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "apikeyd_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, by route pattern and method.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route", "method"}),
		verifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apikeyd_verifications_total",
			Help: "Credential verifications, by method (api_key, jwt, none) and outcome.",
		}, []string{"method", "outcome"}),
		keysCreated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "apikeyd_keys_created_total",
			Help: "API keys created.",
		}),
		keysRevoked: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "apikeyd_keys_revoked_total",
			Help: "API keys revoked.",
		}),
		flushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apikeyd_last_used_flushes_total",
			Help: "Batched last_used_at writes, by result (ok, error).",
		}, []string{"result"}),
		flushKeys: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "apikeyd_last_used_flush_keys",
			Help:    "Keys written per successful last_used_at batch.",
			Buckets: []float64{1, 5, 10, 50, 100, 500, 1000, 5000},
		}),
		cacheLookups: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "apikeyd_verify_cache_lookups_total",
			Help: "Verification cache lookups, by result (hit, miss).",
		}, []string{"result"}),
		rateFallback: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "apikeyd_rate_limit_fallback",
			Help: "1 while Redis (REDIS_URL) cannot be reached and rate limits use this server's own buckets; 0 otherwise, and without REDIS_URL.",
		}),
	}
	m.registry.MustRegister(
		m.requests, m.duration, m.verifications, m.keysCreated, m.keysRevoked,
		m.flushes, m.flushKeys, m.cacheLookups, m.rateFallback,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	for method, outcomes := range verificationLabels {
		for _, o := range outcomes {
			m.verifications.WithLabelValues(string(method), string(o))
		}
	}
	m.flushes.WithLabelValues("ok")
	m.flushes.WithLabelValues("error")
	m.eventMetrics = newEventMetrics(m.registry)
	// Cache lookups are left out until a cache reports one: a zero for a
	// cache that does not exist would mislead.
	if db != nil {
		m.registry.MustRegister(collectors.NewDBStatsCollector(db, "apikeyd"))
	}
	return m
}

// Handler serves the metrics in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry})
}

// Request counts and times an answered request, for httpx.Observe. A
// request that matched no route is labelled "unmatched".
func (m *Metrics) Request(_ *http.Request, rec *httpx.Record) {
	route, method := routeLabel(rec.Route), methodLabel(rec.Method)
	m.requests.WithLabelValues(route, method, strconv.Itoa(rec.Status)).Inc()
	m.duration.WithLabelValues(route, method).Observe(time.Since(rec.Start).Seconds())
}

// routeLabel turns a route pattern ("POST /auth/api-keys") into its path
// ("/auth/api-keys"): the method has its own label.
func routeLabel(pattern string) string {
	if pattern == "" {
		return httpx.Unmatched
	}
	if i := strings.IndexByte(pattern, ' '); i >= 0 {
		return pattern[i+1:]
	}
	return pattern
}

// methodLabel bounds the method label: a client may send any token as a
// method, and each would otherwise make a new series.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

// KeyCreated implements apikey.Observer.
func (m *Metrics) KeyCreated() { m.keysCreated.Inc() }

// KeyRevoked implements apikey.Observer.
func (m *Metrics) KeyRevoked() { m.keysRevoked.Inc() }

// Verified implements auth.Observer.
func (m *Metrics) Verified(method apikey.Method, o apikey.Outcome) {
	m.verifications.WithLabelValues(string(method), string(o)).Inc()
}

// UsageFlushed implements apikey.Observer.
func (m *Metrics) UsageFlushed(keys int, err error) {
	if err != nil {
		m.flushes.WithLabelValues("error").Inc()
		return
	}
	m.flushes.WithLabelValues("ok").Inc()
	m.flushKeys.Observe(float64(keys))
}

// CacheLookup implements apikey.Observer.
func (m *Metrics) CacheLookup(hit bool) {
	result := "miss"
	if hit {
		result = "hit"
	}
	m.cacheLookups.WithLabelValues(result).Inc()
}

// RateLimitFallback implements redislimit.Observer.
func (m *Metrics) RateLimitFallback(on bool) {
	if on {
		m.rateFallback.Set(1)
		return
	}
	m.rateFallback.Set(0)
}
