package main

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestHealthcheckCommand: `apikeyd healthcheck` succeeds when the server
// answers 200, and fails when it answers anything else or nothing; it finds
// the server from ADDR alone, so no other setting can stop it.
func TestHealthcheckCommand(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.Error(w, "down", http.StatusServiceUnavailable)
		}
	}))
	defer srv.Close()
	t.Setenv("CORS_ORIGINS", "*") // a bad server setting
	t.Setenv("ADDR", strings.TrimPrefix(srv.URL, "http://"))
	healthcheck := func(args ...string) error {
		return run(context.Background(), append([]string{"healthcheck"}, args...), new(bytes.Buffer), slog.New(slog.DiscardHandler))
	}
	if err := healthcheck(); err != nil {
		t.Errorf("healthcheck of ADDR: %v", err)
	}
	if err := healthcheck("--url", srv.URL+"/healthz"); err != nil {
		t.Errorf("healthcheck --url: %v", err)
	}
	if err := healthcheck("--url", srv.URL+"/readyz"); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("healthcheck of a 503: %v, want an error saying 503", err)
	}
	srv.Close()
	if err := healthcheck(); err == nil {
		t.Error("healthcheck of a stopped server succeeded")
	}
	t.Setenv("ADDR", "127.0.0.1:0")
	if err := healthcheck(); err == nil || !strings.Contains(err.Error(), "--url") {
		t.Errorf("healthcheck of ADDR with port 0: %v, want an error asking for --url", err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"healthcheck", "-h"}, &out, slog.New(slog.DiscardHandler)); err != nil || !strings.Contains(out.String(), "-url") {
		t.Errorf("healthcheck -h: %v\n%s", err, out.String())
	}
}

func TestHealthzURL(t *testing.T) {
	for addr, want := range map[string]string{
		"0.0.0.0:8080":   "http://127.0.0.1:8080/healthz",
		":8080":          "http://127.0.0.1:8080/healthz",
		"[::]:8080":      "http://127.0.0.1:8080/healthz",
		"127.0.0.1:8080": "http://127.0.0.1:8080/healthz",
		"10.1.2.3:9000":  "http://10.1.2.3:9000/healthz",
		"[::1]:8080":     "http://[::1]:8080/healthz",
		"localhost:8080": "http://localhost:8080/healthz",
	} {
		if got, err := healthzURL(addr); err != nil || got != want {
			t.Errorf("healthzURL(%q) = %q, %v; want %q", addr, got, err, want)
		}
	}
	for _, addr := range []string{"127.0.0.1:0", "8080", ""} {
		if got, err := healthzURL(addr); err == nil {
			t.Errorf("healthzURL(%q) = %q, want an error", addr, got)
		}
	}
}
