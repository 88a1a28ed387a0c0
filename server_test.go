package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/apikeyd/apikeyd/internal/dbtest"
)

// TestCommandHelp: -h prints a command's flags to stdout and succeeds.
func TestCommandHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"serve", "-h"}, {"serve", "--help"}, {"token", "-h"}, {"migrate", "-h"}, {"migrate", "status", "-h"}, {"backup", "-h"}} {
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

// TestCommandsShowNoSecret: neither the help nor an error nor a log line of
// serve, token or migrate shows a secret, whether it came from the
// environment, a flag or the file of the generated JWT secret.
func TestCommandsShowNoSecret(t *testing.T) {
	secrets := []string{"jwt-secret-from", "d2ViaG9vay1zZWNyZXQ", "gitlab-token-from", "hook-token", "database-password",
		"webhook-flag-secret", "short-secret-in-the-file", "short-flag"}
	const badDatabase = "postgres://apikeyd:database-password@127.0.0.1:port/apikeyd" // not a port
	good := map[string]string{
		"JWT_SECRET":            "jwt-secret-from-the-environment-0123456789",
		"WEBHOOK_URL":           "https://hooks.example/services/hook-token-in-path",
		"WEBHOOK_SECRET":        "whsec_d2ViaG9vay1zZWNyZXQtZnJvbS10aGUtZW52aXJvbm1lbnQ=",
		"LEAK_REVOCATION_TOKEN": "gitlab-token-from-the-environment",
		"DATABASE_URL":          badDatabase,
	}
	check := func(t *testing.T, env map[string]string, args ...string) {
		t.Helper()
		for k, v := range env {
			t.Setenv(k, v)
		}
		var out, logs bytes.Buffer
		err := run(context.Background(), args, &out, slog.New(slog.NewJSONHandler(&logs, nil)))
		shown := out.String() + logs.String()
		if err != nil {
			shown += err.Error() // what main prints to stderr
		} else if !slices.Contains(args, "-h") {
			t.Errorf("%v succeeded", args)
		}
		for _, s := range secrets {
			if strings.Contains(shown, s) {
				t.Errorf("%v shows %q:\n%s", args, s, shown)
			}
		}
	}
	flags := []string{"--jwt-secret", "short-flag", "--database-url", badDatabase}
	for _, args := range [][]string{
		{"serve", "-h"}, {"token", "-h"}, {"migrate", "status", "-h"}, {"backup", "-h"},
		append(append([]string{"serve"}, flags...), "--webhook-secret", "whsec_webhook-flag-secret", "-h"),
		append(append([]string{"token"}, flags...), "-h"),
		// Errors: each secret in turn refused, then the database.
		{"serve"}, {"migrate", "status"}, {"backup", "copy.db"},
		append([]string{"serve"}, flags...), append([]string{"token", "--sub", "alice"}, flags...),
		{"serve", "--webhook-secret", "whsec_webhook-flag-secret!"}, {"serve", "--leak-revocation-token", "short-flag"},
	} {
		check(t, good, args...)
	}
	check(t, map[string]string{"JWT_SECRET": "jwt-secret-from-env"}, "token", "--sub", "alice")
	check(t, map[string]string{"WEBHOOK_SECRET": "whsec_d2ViaG9vay1zZWNyZXQ"}, "serve")
	check(t, map[string]string{"LEAK_REVOCATION_TOKEN": "gitlab-token-from"}, "serve")

	// A JWT secret read from its file beside the SQLite database.
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "apikeyd.jwt-secret"), []byte("short-secret-in-the-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("JWT_SECRET", "")
	check(t, map[string]string{"DATABASE_URL": "file:" + filepath.Join(dir, "apikeyd.db")}, "token", "--sub", "alice")
	check(t, nil, "token", "-h")
}
