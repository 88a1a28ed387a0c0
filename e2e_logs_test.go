package main

import (
	"encoding/json"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// What apikeyd logs (SECURITY.md, "Secrets in logs"). Every test server's whole log
// is checked when its test ends (newEnvDSN): no secret a test handed out nor
// its hash (remember), nothing shaped like a credential, and access log lines
// with exactly the allowed fields.

// credentialShapes match credentials in logs whether or not a test
// remembered them.
var credentialShapes = map[string]*regexp.Regexp{
	"an API key":             regexp.MustCompile(`\b[a-z0-9]+_[0-9A-Za-z]{38}\b`),
	"a JWT":                  regexp.MustCompile(`eyJ[A-Za-z0-9_-]*\.eyJ[A-Za-z0-9_-]*\.`),
	"a bearer credential":    regexp.MustCompile(`(?i)bearer\s+[A-Za-z0-9._~+/=-]{8,}`),
	"a SHA-256 or a secret":  regexp.MustCompile(`\b[0-9a-fA-F]{64}\b`),
	"a password in a DSN":    regexp.MustCompile(`postgres(ql)?://[^/\s:@"]+:[^@\s"]+@`),
	"an Authorization value": regexp.MustCompile(`(?i)"authorization"\s*:`),
	"an argon2 hash":         regexp.MustCompile(`\$argon2(id|i|d)\$`),
	"a password field":       regexp.MustCompile(`(?i)"password"\s*:\s*"`),
}

// accessLogFields are the only fields of an access log line; the first seven
// are always there.
var accessLogFields = []string{"time", "level", "msg", "method", "route", "status", "latency_ms", "user_id", "key_id"}

// assertLogsClean checks a server's whole JSON log output.
func assertLogsClean(t testing.TB, logs string) {
	t.Helper()
	for what, re := range credentialShapes {
		if m := re.FindString(logs); m != "" {
			t.Errorf("the server log holds %s: %.12s…", what, m)
		}
	}
	for line := range strings.Lines(logs) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("a log line is not one JSON object: %.80q", line)
			continue
		}
		if rec["msg"] != "request" {
			continue
		}
		for k := range rec {
			if !slices.Contains(accessLogFields, k) {
				t.Errorf("access log line has field %q: %s", k, line)
			}
		}
		for _, k := range accessLogFields[:7] {
			if _, ok := rec[k]; !ok {
				t.Errorf("access log line lacks %q: %s", k, line)
			}
		}
		if _, ok := rec["status"].(float64); !ok {
			t.Errorf("access log status is not a number: %s", line)
		}
	}
}

// TestAccessLog: one line per request with method, route pattern, status,
// latency, and who asked; never a path, query, header or body.
func TestAccessLog(t *testing.T) {
	t.Parallel()
	e := newEnv(t, "sqlite", noFailLimit)
	alice := e.token("alice")
	k := e.create(alice, str(`{"name":"logged"}`))
	e.do("GET", "/auth/verify?api_key="+k.Key+"&note=query-marker", hdr("X-Api-Key", k.Key, "User-Agent", "agent-marker"), nil)
	e.do("GET", "/auth/verify", bearer("garbage-token-marker"), nil)
	e.do("DELETE", "/auth/api-keys/"+k.ID, bearer(alice), nil)
	e.do("POST", "/graphql", bearer(alice), str(gqlBody(`{ viewer { userId } }`)))
	e.do("GET", "/no/such/path-marker", nil, nil)

	type line struct {
		Method, Route, UserID, KeyID string
		Status                       int
	}
	var got []line
	for l := range strings.Lines(e.Logs.String()) {
		var rec map[string]any
		if json.Unmarshal([]byte(l), &rec) != nil || rec["msg"] != "request" {
			continue
		}
		s := func(k string) string { v, _ := rec[k].(string); return v }
		st, _ := rec["status"].(float64)
		got = append(got, line{s("method"), s("route"), s("user_id"), s("key_id"), int(st)})
	}
	want := []line{
		{"POST", "POST /auth/api-keys", "alice", "", http.StatusCreated},
		{"GET", "GET /auth/verify", "alice", k.ID, http.StatusOK},
		{"GET", "GET /auth/verify", "", "", http.StatusUnauthorized},
		{"DELETE", "DELETE /auth/api-keys/{id}", "alice", "", http.StatusNoContent},
		{"POST", "/graphql", "alice", "", http.StatusOK},
		{"GET", "unmatched", "", "", http.StatusNotFound},
	}
	if !slices.Equal(got, want) {
		t.Errorf("access log\n got %+v\nwant %+v", got, want)
	}
	for l := range strings.Lines(e.Logs.String()) {
		if strings.Contains(l, "marker") {
			t.Errorf("the log holds request data (a query, header, path or credential): %s", l)
		}
	}
	// The check every test server gets at its end refuses other fields.
	ft := &fakeTB{}
	assertLogsClean(ft, `{"time":"t","level":"INFO","msg":"request","method":"GET","route":"/","status":200,"latency_ms":1,"user_agent":"x"}`+"\n")
	assertLogsClean(ft, `{"time":"t","level":"INFO","msg":"x","err":"Bearer abcdefghijklmnop"}`+"\n")
	assertLogsClean(ft, `{"time":"t","level":"INFO","msg":"x","hash":"$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"}`+"\n")
	if len(ft.errors) != 3 {
		t.Errorf("assertLogsClean reported %q, want three errors", ft.errors)
	}
}

// fakeTB records the errors of a check, to test the check itself.
type fakeTB struct {
	testing.TB
	errors []string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Errorf(format string, args ...any) {
	f.errors = append(f.errors, format)
}
