package main

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/apikeyd/apikeyd/internal/dbtest"
)

// TestCommandHelp: -h prints a command's flags to stdout and succeeds.
func TestCommandHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"serve", "-h"}, {"serve", "--help"}, {"token", "-h"}, {"migrate", "-h"}, {"migrate", "status", "-h"}} {
		var out bytes.Buffer
		if err := run(context.Background(), args, &out, slog.New(slog.DiscardHandler)); err != nil {
			t.Errorf("%v: %v", args, err)
		}
		if !strings.Contains(out.String(), "usage") {
			t.Errorf("%v printed no usage: %q", args, out.String())
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"serve", "-h"}, &out, slog.New(slog.DiscardHandler)); err != nil ||
		!strings.Contains(out.String(), "-cors-origins") || !strings.Contains(out.String(), "(CORS_ORIGINS)") {
		t.Errorf("serve -h does not list the settings with their variables: %v\n%s", err, out.String())
	}
}

// TestMigrateIgnoresServerSettings: `apikeyd migrate` reads DATABASE_URL
// and nothing else, so a bad server setting does not stop it.
func TestMigrateIgnoresServerSettings(t *testing.T) {
	t.Setenv("CORS_ORIGINS", "*")
	t.Setenv("DATABASE_URL", "file:"+filepath.Join(t.TempDir(), "apikeyd.db"))
	for _, action := range []string{"status", "up", "status", "down"} {
		var out bytes.Buffer
		if err := run(context.Background(), []string{"migrate", action}, &out, slog.New(slog.DiscardHandler)); err != nil {
			t.Fatalf("migrate %s: %v", action, err)
		}
	}
	// serve reads them all, and refuses.
	if err := run(context.Background(), []string{"serve"}, new(bytes.Buffer), slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "CORS_ORIGINS") {
		t.Errorf("serve with CORS_ORIGINS=*: %v", err)
	}
}

// TestTokenCommand: `apikeyd token` mints a token with the configured secret
// and needs no server setting.
func TestTokenCommand(t *testing.T) {
	t.Setenv("CORS_ORIGINS", "*")
	t.Setenv("DATABASE_URL", dbtest.DSN(t, "sqlite"))
	var out bytes.Buffer
	if err := run(context.Background(), []string{"token", "--sub", "alice", "--ttl", "5m"}, &out, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if tok := strings.TrimSpace(out.String()); strings.Count(tok, ".") != 2 {
		t.Errorf("not a JWT: %q", tok)
	}
	if err := run(context.Background(), []string{"token"}, new(bytes.Buffer), slog.New(slog.DiscardHandler)); err == nil {
		t.Error("token without --sub succeeded")
	}
}
