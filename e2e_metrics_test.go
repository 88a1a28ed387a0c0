package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apikey/apikeytest"
	"github.com/apikeyd/apikeyd/internal/apitime"
	"github.com/apikeyd/apikeyd/internal/app"
	"github.com/apikeyd/apikeyd/internal/config"
)

// metricsScrape is one parsed scrape of /metrics.
type metricsScrape map[string]*dto.MetricFamily

// scrape fetches and parses /metrics with the Prometheus text parser.
func (e *testEnv) scrape() metricsScrape {
	e.t.Helper()
	res := e.do("GET", "/metrics", nil, nil)
	if res.Status != http.StatusOK {
		e.t.Fatalf("GET /metrics: %d %s", res.Status, res.Body)
	}
	return parseMetrics(e.t, res.Body)
}

func parseMetrics(t testing.TB, body []byte) metricsScrape {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

// value returns the value of the series of name whose labels include want
// (summed over the others): a counter's or gauge's value, a histogram's
// sample count. A missing series is 0.
func (s metricsScrape) value(name string, want ...string) float64 {
	var total float64
	fam, ok := s[name]
	if !ok {
		return 0
	}
next:
	for _, m := range fam.GetMetric() {
		have := map[string]string{}
		for _, l := range m.GetLabel() {
			have[l.GetName()] = l.GetValue()
		}
		for i := 0; i+1 < len(want); i += 2 {
			if have[want[i]] != want[i+1] {
				continue next
			}
		}
		switch {
		case m.Counter != nil:
			total += m.GetCounter().GetValue()
		case m.Gauge != nil:
			total += m.GetGauge().GetValue()
		case m.Histogram != nil:
			total += float64(m.GetHistogram().GetSampleCount())
		case m.Untyped != nil:
			total += m.GetUntyped().GetValue()
		}
	}
	return total
}

// histogramSum returns the sum of the observations of a histogram series.
func (s metricsScrape) histogramSum(name string) float64 {
	var total float64
	if fam, ok := s[name]; ok {
		for _, m := range fam.GetMetric() {
			total += m.GetHistogram().GetSampleSum()
		}
	}
	return total
}

// metricsScript sends requests and tallies what each should add to the
// metrics, so a later scrape can be compared with exactly that.
type metricsScript struct {
	t        *testing.T
	e        *testEnv
	requests map[[3]string]float64 // route, method, status
	verified map[[2]string]float64 // method, outcome
}

func newMetricsScript(t *testing.T, e *testEnv) *metricsScript {
	return &metricsScript{t: t, e: e, requests: map[[3]string]float64{}, verified: map[[2]string]float64{}}
}

// send makes a request that must answer status, served by route, and that
// makes the given verifications ("method/outcome").
func (s *metricsScript) send(method, path, route string, h http.Header, body *string, status int, verifications ...string) response {
	s.t.Helper()
	res := s.e.do(method, path, h, body)
	if res.Status != status {
		s.t.Fatalf("%s %s: %d %s, want %d", method, path, res.Status, res.Body, status)
	}
	s.requests[[3]string{route, method, fmt.Sprint(status)}]++
	for _, v := range verifications {
		m, o, _ := strings.Cut(v, "/")
		s.verified[[2]string{m, o}]++
	}
	return res
}

// check compares the moves of the request and verification counters
// between two scrapes with the tally. /metrics itself is left out: whether
// a scrape's own count lands before the next scrape is a race.
func (s *metricsScript) check(before, after metricsScrape) {
	s.t.Helper()
	for k, want := range s.requests {
		got := after.value("apikeyd_http_requests_total", "route", k[0], "method", k[1], "status", k[2]) -
			before.value("apikeyd_http_requests_total", "route", k[0], "method", k[1], "status", k[2])
		if got != want {
			s.t.Errorf("apikeyd_http_requests_total{route=%q,method=%q,status=%q} moved by %v, want %v", k[0], k[1], k[2], got, want)
		}
	}
	perRoute := map[[2]string]float64{}
	for k, n := range s.requests {
		perRoute[[2]string{k[0], k[1]}] += n
	}
	for k, want := range perRoute {
		got := after.value("apikeyd_http_request_duration_seconds", "route", k[0], "method", k[1]) -
			before.value("apikeyd_http_request_duration_seconds", "route", k[0], "method", k[1])
		if got != want {
			s.t.Errorf("apikeyd_http_request_duration_seconds{route=%q,method=%q} count moved by %v, want %v", k[0], k[1], got, want)
		}
	}
	// Every request series moved by what the script did, and no other
	// series moved (except /metrics).
	for _, m := range after["apikeyd_http_requests_total"].GetMetric() {
		l := map[string]string{}
		for _, p := range m.GetLabel() {
			l[p.GetName()] = p.GetValue()
		}
		if l["route"] == "/metrics" {
			continue
		}
		moved := m.GetCounter().GetValue() - before.value("apikeyd_http_requests_total", "route", l["route"], "method", l["method"], "status", l["status"])
		if moved != s.requests[[3]string{l["route"], l["method"], l["status"]}] {
			s.t.Errorf("apikeyd_http_requests_total%v moved by %v, which the script did not do", l, moved)
		}
	}
	for _, method := range []apikey.Method{apikey.MethodAPIKey, apikey.MethodJWT, apikey.MethodNone} {
		for _, o := range apikey.Outcomes {
			want := s.verified[[2]string{string(method), string(o)}]
			got := after.value("apikeyd_verifications_total", "method", string(method), "outcome", string(o)) -
				before.value("apikeyd_verifications_total", "method", string(method), "outcome", string(o))
			if got != want {
				s.t.Errorf("apikeyd_verifications_total{method=%q,outcome=%q} moved by %v, want %v", method, o, got, want)
			}
		}
	}
}

// TestMetrics runs a script of requests and checks that /metrics moved by
// exactly what the script did: requests by route, method and status,
// verifications by method and outcome, keys created and revoked, and the
// last_used_at flush; and that no label carries a user id, key id or key.
func TestMetrics(t *testing.T) {
	e := newEnv(t, "sqlite")
	s := newMetricsScript(t, e)
	before := e.scrape()
	for _, name := range []string{"go_sql_in_use_connections", "go_sql_idle_connections", "go_sql_wait_count_total", "go_sql_wait_duration_seconds_total", "go_goroutines"} {
		if _, ok := before[name]; !ok {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if fam := before["go_sql_in_use_connections"]; fam != nil && fam.GetMetric()[0].GetLabel()[0].GetValue() != "apikeyd" {
		t.Errorf("go_sql_in_use_connections labels %v", fam.GetMetric()[0].GetLabel())
	}

	tok := e.token("alice")
	decode := func(res response) createdKey {
		var k createdKey
		if err := json.Unmarshal(res.Body, &k); err != nil {
			t.Fatal(err)
		}
		return k
	}
	const create, verify, byID = "/auth/api-keys", "/auth/verify", "/auth/api-keys/{id}"
	expiry := e.Clock.Now().Add(time.Minute)
	expiring := decode(s.send("POST", create, create, bearer(tok),
		str(`{"expires_at":"`+apitime.Format(expiry)+`"}`), 201, "jwt/ok"))
	good := decode(s.send("POST", create, create, bearer(tok), str(`{"name":"good"}`), 201, "jwt/ok"))
	gone := decode(s.send("POST", create, create, bearer(tok), nil, 201, "jwt/ok"))
	s.send("DELETE", "/auth/api-keys/"+gone.ID, byID, bearer(tok), nil, 204, "jwt/ok")
	s.send("DELETE", "/auth/api-keys/"+gone.ID, byID, bearer(tok), nil, 404, "jwt/ok")
	s.send("GET", create, create, bearer(tok), nil, 200, "jwt/ok")
	s.send("GET", create, create, hdr("X-Api-Key", good.Key), nil, 403, "api_key/ok")

	s.send("GET", verify, verify, hdr("X-Api-Key", good.Key), nil, 200, "api_key/ok")
	s.send("GET", verify, verify, bearer(good.Key), nil, 200, "api_key/ok")
	s.send("GET", verify, verify, bearer(tok), nil, 200, "jwt/ok")
	s.send("GET", verify, verify, hdr("X-Api-Key", gone.Key), nil, 401, "api_key/revoked")
	unknown := apikey.NewFormat(apikey.DefaultPrefix).Generate()
	s.send("GET", verify, verify, hdr("X-Api-Key", unknown), nil, 401, "api_key/unknown")
	s.send("GET", verify, verify, hdr("X-Api-Key", apikeytest.BadChecksum(good.Key)), nil, 401, "api_key/bad_checksum")
	s.send("GET", verify, verify, bearer("atiru_tooShort"), nil, 401, "api_key/malformed")
	s.send("GET", verify, verify, nil, nil, 401, "none/missing")
	s.send("GET", verify, verify, hdr("Authorization", "Basic dXNlcjpwdw=="), nil, 401, "none/malformed")
	s.send("GET", verify, verify, hdr("X-Api-Key", good.Key, "Authorization", "Bearer "+tok), nil, 401, "none/malformed")
	s.send("GET", verify, verify, bearer("not.a.jwt"), nil, 401, "jwt/malformed")
	s.send("GET", verify, verify, bearer(e.sign("alice", issuedAt(time.Now().Add(-2*time.Hour)))), nil, 401, "jwt/expired")
	s.send("GET", verify, verify, bearer(e.sign("alice", signedWith(jwt.SigningMethodHS256, []byte(strings.Repeat("x", 32))))), nil, 401, "jwt/invalid")
	s.send("GET", "/healthz", "/healthz", nil, nil, 200)
	s.send("GET", "/readyz", "/readyz", nil, nil, 200)
	s.send("PUT", verify, verify, nil, nil, 405)
	s.send("GET", "/no/such/route", "unmatched", nil, nil, 404)
	s.send("BREW", "/healthz", "/healthz", nil, nil, 405) // an unknown method is labelled "other"
	s.requests[[3]string{"/healthz", "other", "405"}] = s.requests[[3]string{"/healthz", "BREW", "405"}]
	delete(s.requests, [3]string{"/healthz", "BREW", "405"})

	e.advancePast(expiry)
	s.send("GET", verify, verify, hdr("X-Api-Key", expiring.Key), nil, 401, "api_key/expired")

	// The one key used is written in one batch within a couple of seconds.
	var after metricsScrape
	deadline := time.Now().Add(5 * time.Second)
	for {
		after = e.scrape()
		if after.value("apikeyd_last_used_flushes_total", "result", "ok") > before.value("apikeyd_last_used_flushes_total", "result", "ok") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no last_used_at flush within 5 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.check(before, after)
	moved := func(name string, labels ...string) float64 {
		return after.value(name, labels...) - before.value(name, labels...)
	}
	if n := moved("apikeyd_keys_created_total"); n != 3 {
		t.Errorf("apikeyd_keys_created_total moved by %v, want 3", n)
	}
	if n := moved("apikeyd_keys_revoked_total"); n != 1 {
		t.Errorf("apikeyd_keys_revoked_total moved by %v, want 1", n)
	}
	if n := moved("apikeyd_last_used_flushes_total", "result", "ok"); n != 1 {
		t.Errorf("%v flush batches, want 1", n)
	}
	if n, keys := moved("apikeyd_last_used_flush_keys"), after.histogramSum("apikeyd_last_used_flush_keys")-before.histogramSum("apikeyd_last_used_flush_keys"); n != 1 || keys != 1 {
		t.Errorf("flush batches %v with %v keys, want 1 with 1", n, keys)
	}
	// Of the well-formed keys checked, the good key's first use misses and
	// fills the cache, its next two uses hit; the revoked, unknown and
	// expired keys miss.
	if hit, miss := moved("apikeyd_verify_cache_lookups_total", "result", "hit"), moved("apikeyd_verify_cache_lookups_total", "result", "miss"); hit != 2 || miss != 4 {
		t.Errorf("cache lookups moved by %v hits and %v misses, want 2 and 4", hit, miss)
	}

	// Bounded labels: nothing that names a user or a key.
	forbidden := []string{"alice", good.ID, gone.ID, expiring.ID, good.KeyPrefix, good.Key, gone.Key, "BREW", "/no/such/route"}
	for name, fam := range after {
		for _, m := range fam.GetMetric() {
			for _, l := range m.GetLabel() {
				for _, f := range forbidden {
					if strings.Contains(l.GetValue(), f) {
						t.Errorf("%s has label %s=%q", name, l.GetName(), l.GetValue())
					}
				}
			}
		}
	}
}

// TestMetricsRateLimited checks that refusals by the failure limiter are
// counted as address_limited, and the failures before them as what they were.
func TestMetricsRateLimited(t *testing.T) {
	e := newEnv(t, "sqlite", func(c *config.Config) { c.AuthFailBurst = 2 })
	s := newMetricsScript(t, e)
	before := e.scrape()
	unknown := apikey.NewFormat(apikey.DefaultPrefix).Generate()
	limited := 0
	for range 5 {
		// The bucket refills at one a second: a slow run may see a 401
		// where a fast one sees 429, so each answer says what to count.
		res := e.do("GET", "/auth/verify", hdr("X-Api-Key", unknown), nil)
		switch res.Status {
		case http.StatusUnauthorized:
			s.requests[[3]string{"/auth/verify", "GET", "401"}]++
			s.verified[[2]string{"api_key", "unknown"}]++
		case http.StatusTooManyRequests:
			limited++
			s.requests[[3]string{"/auth/verify", "GET", "429"}]++
			s.verified[[2]string{"api_key", "address_limited"}]++
		default:
			t.Fatalf("status %d %s", res.Status, res.Body)
		}
	}
	if limited == 0 {
		t.Fatal("never rate limited")
	}
	// Refused before routing, and labelled with its route all the same;
	// an unknown path stays unmatched.
	s.send("GET", "/no/such/route", "unmatched", hdr("X-Api-Key", unknown), nil, 429, "api_key/address_limited")
	s.check(before, e.scrape())
}

// TestMetricsListener checks METRICS_ADDR: /metrics is served there, and
// only there.
func TestMetricsListener(t *testing.T) {
	cfg, err := parseConfig(
		"-addr", "127.0.0.1:0", "-metrics-addr", "127.0.0.1:0",
		"-database-url", "file:"+filepath.Join(t.TempDir(), "apikeyd.db"),
		"-jwt-secret", strings.Repeat("s", 32),
	)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan app.Listening, 1)
	done := make(chan error, 1)
	go func() { done <- app.Serve(ctx, cfg, slog.New(slog.DiscardHandler), ready) }()
	var at app.Listening
	select {
	case at = <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	c := mustContract(t)
	// The main listener's answers are checked against the OpenAPI document;
	// the metrics listener serves no API, so its refusals are checked
	// against the document's Error schema alone.
	main, metricsOnly := contractClient(t, http.DefaultTransport), http.DefaultClient
	get := func(method, url string) (int, string) {
		t.Helper()
		client := main
		if strings.HasPrefix(url, "http://"+at.MetricsAddr+"/") {
			client = metricsOnly
		}
		req, _ := http.NewRequest(method, url, nil)
		res, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if client == metricsOnly && res.StatusCode != http.StatusOK {
			code := map[int]string{404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}[res.StatusCode]
			if err := c.checkError(res, b, code); err != nil {
				t.Errorf("%s %s on the metrics listener: %v", method, url, err)
			}
		}
		return res.StatusCode, string(b)
	}
	if status, body := get("GET", "http://"+at.Addr+"/metrics"); status != 404 || !strings.Contains(body, `"NOT_FOUND"`) {
		t.Errorf("main listener /metrics: %d %s, want 404", status, body)
	}
	status, body := get("GET", "http://"+at.MetricsAddr+"/metrics")
	if status != 200 {
		t.Fatalf("metrics listener: %d %s", status, body)
	}
	fams := parseMetrics(t, []byte(body))
	if _, ok := fams["apikeyd_keys_created_total"]; !ok {
		t.Error("metrics listener lacks apikeyd_keys_created_total")
	}
	// The main listener's 404 above was counted, by the metrics it no
	// longer serves.
	if n := fams.value("apikeyd_http_requests_total", "route", "unmatched", "status", "404"); n != 1 {
		t.Errorf("main listener's 404 counted %v times, want 1", n)
	}
	if status, _ := get("GET", "http://"+at.MetricsAddr+"/auth/verify"); status != 404 {
		t.Errorf("metrics listener serves the API: %d", status)
	}
	if status, _ := get("POST", "http://"+at.MetricsAddr+"/metrics"); status != 405 {
		t.Errorf("POST /metrics: %d, want 405", status)
	}
}
