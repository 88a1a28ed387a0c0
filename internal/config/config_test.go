package config

import (
	"errors"
	"flag"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// parse reads scope from args and env (the environment, as a map).
func parse(scope Scope, env map[string]string, args ...string) (Config, error) {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return Parse(fs, scope, args, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
}

func TestDefaults(t *testing.T) {
	c, err := parse(Serve, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:8080" || c.DatabaseURL != "file:apikeyd.db" || !c.Migrate || c.KeyPrefix != "atiru_" ||
		c.MaxKeysPerUser != 100 || c.LastUsedInterval != time.Minute || c.CacheSize != 100_000 ||
		c.CacheTTL != 30*time.Second || !c.Introspection || c.AuthFailBurst != 30 || !c.Accounts ||
		c.SessionTTL != time.Hour || c.LoginFailBurst != 10 || c.JWTSecret != "" || c.JWKSURL != nil ||
		c.TrustedProxies != nil || c.CORSOrigins != nil || c.MetricsAddr != "" {
		t.Errorf("defaults: %+v", c)
	}
}

func TestFlagsWinOverEnvironment(t *testing.T) {
	env := map[string]string{"VERIFY_CACHE_SIZE": "5000", "VERIFY_CACHE_TTL": "5s", "TRUSTED_PROXIES": "10.0.0.0/8, 127.0.0.1"}
	c, err := parse(Serve, env)
	if err != nil || c.CacheSize != 5000 || c.CacheTTL != 5*time.Second {
		t.Errorf("from the environment: size %d, TTL %s, err %v", c.CacheSize, c.CacheTTL, err)
	}
	want := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("127.0.0.1/32")}
	if len(c.TrustedProxies) != 2 || c.TrustedProxies[0] != want[0] || c.TrustedProxies[1] != want[1] {
		t.Errorf("TRUSTED_PROXIES parsed to %v", c.TrustedProxies)
	}
	c, err = parse(Serve, env, "-verify-cache-size", "0", "-verify-cache-ttl", "1m")
	if err != nil || c.CacheSize != 0 || c.CacheTTL != time.Minute {
		t.Errorf("flags win: size %d, TTL %s, err %v", c.CacheSize, c.CacheTTL, err)
	}
	// Help shows neither of these values; the configuration has them whole.
	secrets := map[string]string{"DATABASE_URL": "postgres://u:pw@db/x", "JWT_SECRET": strings.Repeat("s", 32)}
	if c, err := parse(Serve, secrets); err != nil || c.DatabaseURL != secrets["DATABASE_URL"] || c.JWTSecret != secrets["JWT_SECRET"] {
		t.Errorf("from the environment: DATABASE_URL %q, JWT_SECRET %q, err %v", c.DatabaseURL, c.JWTSecret, err)
	}
	if c, err := parse(Serve, secrets, "-database-url", "postgres://v:pw2@db/y", "-jwt-secret", ""); err != nil || c.DatabaseURL != "postgres://v:pw2@db/y" || c.JWTSecret != "" {
		t.Errorf("flags win: DATABASE_URL %q, JWT_SECRET %q, err %v", c.DatabaseURL, c.JWTSecret, err)
	}
}

func TestBadValuesNameTheirVariable(t *testing.T) {
	for _, c := range []struct{ flag, value, env string }{
		{"verify-cache-size", "-1", "VERIFY_CACHE_SIZE"},
		{"verify-cache-size", "many", "VERIFY_CACHE_SIZE"},
		{"verify-cache-ttl", "0s", "VERIFY_CACHE_TTL"},
		{"verify-cache-ttl", "-5s", "VERIFY_CACHE_TTL"},
		{"verify-cache-ttl", "soon", "VERIFY_CACHE_TTL"},
		{"max-keys-per-user", "0", "MAX_KEYS_PER_USER"},
		{"last-used-interval", "0s", "LAST_USED_INTERVAL"},
		{"graphql-introspection", "perhaps", "GRAPHQL_INTROSPECTION"},
		{"api-key-prefix", "Bad-", "API_KEY_PREFIX"},
		{"metrics-addr", "9090", "METRICS_ADDR"},
		{"trusted-proxies", "10.0.0.0/99", "TRUSTED_PROXIES"},
		{"cors-origins", "*", "CORS_ORIGINS"},
		{"auth-fail-burst", "-1", "AUTH_FAIL_BURST"},
		{"database-url", " ", "DATABASE_URL"},
		{"jwt-jwks-url", "ftp://idp.example/jwks.json", "JWT_JWKS_URL"},
		{"redis-url", "http://redis:6379", "REDIS_URL"},
		{"redis-url", "redis:///0", "REDIS_URL"},
		{"redis-url", "redis://redis:6379/zero", "REDIS_URL"},
		{"redis-url", "redis:redis:6379", "REDIS_URL"},
		{"redis-timeout", "0s", "REDIS_TIMEOUT"},
		{"redis-timeout", "soon", "REDIS_TIMEOUT"},
	} {
		if _, err := parse(Serve, nil, "-"+c.flag, c.value); err == nil || !strings.Contains(err.Error(), c.env) {
			t.Errorf("-%s %q: %v, want an error naming %s", c.flag, c.value, err, c.env)
		}
	}
}

// TestSecretsAreNotEchoed: a refused secret, or a refused URL that may carry
// one, is named, never quoted; a database URL is quoted without its password.
func TestSecretsAreNotEchoed(t *testing.T) {
	for _, c := range []struct{ env, value, secret string }{
		{"JWT_SECRET", "short-but-secret", "short-but-secret"},
		{"JWT_JWKS_URL", "ftp://user:hunter2-password@idp.example/jwks.json", "hunter2"},
		{"WEBHOOK_URL", "ftp://hooks.example/services/T0/B0/hook-token-in-path", "hook-token"},
		{"WEBHOOK_SECRET", "whsec_not-base64-but-secret!", "not-base64-but-secret"},
		{"WEBHOOK_SECRET", "no-prefix-but-secret", "no-prefix-but-secret"},
		{"LEAK_REVOCATION_TOKEN", "short-gl-token", "short-gl-token"},
		{"LEAK_REPORT_KEYS_URL", "gopher://user:hunter2@keys.example/", "hunter2"},
		{"DATABASE_URL", " ", "\x00"}, // DATABASE_URL's own check; the URL cases are below
		{"REDIS_URL", "http://:hunter2@redis:6379", "hunter2"},
		{"REDIS_URL", "redis://default:hunter2@redis:6379/first", "hunter2"},
		{"REDIS_URL", "redis://:hunter2@redis:port/0", "hunter2"}, // not even a URL
	} {
		for _, from := range []string{"environment", "flag"} {
			env, args := map[string]string{c.env: c.value}, []string(nil)
			if from == "flag" {
				env, args = nil, []string{"-" + flagOf(t, c.env), c.value}
			}
			_, err := parse(Serve, env, args...)
			if err == nil || !strings.Contains(err.Error(), c.env) {
				t.Fatalf("%s from the %s: %v, want an error naming it", c.env, from, err)
			}
			if strings.Contains(err.Error(), c.secret) {
				t.Errorf("%s from the %s: the error quotes the value: %v", c.env, from, err)
			}
		}
	}
	if _, err := parse(Serve, map[string]string{"JWT_SECRET": strings.Repeat("s", 32), "JWT_JWKS_URL": "https://idp.example/jwks.json"}); err == nil {
		t.Error("both JWT_SECRET and JWT_JWKS_URL accepted")
	}
}

// TestHelpShowsNoSecret: help lists every setting, but of a secret (from
// the environment or a flag) it says at most that it is set, and of a
// database URL it shows no password.
func TestHelpShowsNoSecret(t *testing.T) {
	env := map[string]string{
		"JWT_SECRET":            "jwt-secret-from-the-environment-0123456789",
		"WEBHOOK_URL":           "https://hooks.example/services/hook-token-in-path",
		"WEBHOOK_SECRET":        "whsec_d2ViaG9vay1zZWNyZXQtZnJvbS10aGUtZW52aXJvbm1lbnQ=",
		"LEAK_REVOCATION_TOKEN": "gitlab-token-from-the-environment",
		"LEAK_REPORT_KEYS_URL":  "https://user:leak-keys-password@keys.example/",
		"DATABASE_URL":          "postgres://apikeyd:database-password@db.example:5432/apikeyd",
		"REDIS_URL":             "redis://:redis-password@redis.example:6379/0",
	}
	secrets := []string{"jwt-secret-from", "hook-token", "d2ViaG9vay1zZWNyZXQ", "gitlab-token-from", "leak-keys-password", "database-password", "redis-password",
		"jwt-secret-from-a-flag", "database-flag-password"}
	for _, scope := range []Scope{Serve, Token, Migrate} {
		for _, given := range []bool{false, true} {
			args := []string{"-h"}
			if given {
				args = []string{"-database-url", "postgres://u:database-flag-password@db/x", "-h"}
				if scope&Tokens != 0 {
					args = append([]string{"-jwt-secret", "jwt-secret-from-a-flag-0123456789abcdef"}, args...)
				}
			}
			var help strings.Builder
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(&help)
			_, err := Parse(fs, scope, args, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
			if !errors.Is(err, flag.ErrHelp) {
				t.Fatalf("%v: %v, want flag.ErrHelp", args, err)
			}
			fs.PrintDefaults()
			for _, s := range secrets {
				if strings.Contains(help.String(), s) {
					t.Errorf("scope %b, %v: help shows %q:\n%s", scope, args, s, help.String())
				}
			}
			if !strings.Contains(help.String(), "postgres://apikeyd:xxxxx@db.example:5432/apikeyd") {
				t.Errorf("scope %b: help does not show DATABASE_URL without its password:\n%s", scope, help.String())
			}
			if scope&Server != 0 && !strings.Contains(help.String(), "redis://:xxxxx@redis.example:6379/0") {
				t.Errorf("scope %b: help does not show REDIS_URL without its password:\n%s", scope, help.String())
			}
			if scope&Tokens != 0 && !strings.Contains(help.String(), "(JWT_SECRET; set, not shown)") {
				t.Errorf("scope %b: help does not say JWT_SECRET is set:\n%s", scope, help.String())
			}
		}
	}
}

// flagOf returns the flag of the variable env.
func flagOf(t *testing.T, env string) string {
	for _, s := range settings {
		if s.env == env {
			return s.flag
		}
	}
	t.Fatalf("no setting %s", env)
	return ""
}

// TestScopes: a command reads only its own settings, so a bad setting of the
// server does not stop `apikeyd migrate` or `apikeyd token`, and their flags
// are not offered elsewhere.
func TestScopes(t *testing.T) {
	bad := map[string]string{"CORS_ORIGINS": "*", "MAX_KEYS_PER_USER": "none", "DATABASE_URL": "file:elsewhere.db"}
	for _, scope := range []Scope{Migrate, Token} {
		c, err := parse(scope, bad)
		if err != nil || c.DatabaseURL != "file:elsewhere.db" {
			t.Errorf("scope %b: %+v %v", scope, c, err)
		}
	}
	if _, err := parse(Serve, bad); err == nil {
		t.Error("serve accepted CORS_ORIGINS=*")
	}
	if _, err := parse(Migrate, nil, "-cors-origins", "https://app.example"); err == nil {
		t.Error("migrate took a server flag")
	}
	if _, err := parse(Migrate, map[string]string{"JWT_SECRET": "short"}); err != nil {
		t.Errorf("migrate read JWT_SECRET: %v", err)
	}
	if _, err := parse(Token, map[string]string{"JWT_SECRET": "short"}); err == nil {
		t.Error("token took a short JWT_SECRET")
	}
}

func TestHelpAndStrayArguments(t *testing.T) {
	if _, err := parse(Serve, nil, "-h"); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v, want flag.ErrHelp", err)
	}
	if _, err := parse(Serve, nil, "now"); err == nil || !strings.Contains(err.Error(), "now") {
		t.Errorf("stray argument: %v", err)
	}
}

func TestRedisURL(t *testing.T) {
	for _, v := range []string{"redis://redis:6379", "redis://redis", "rediss://user:pw@redis.example:6380/2", "redis://[::1]:6379/0?dial_timeout=1s"} {
		c, err := parse(Serve, map[string]string{"REDIS_URL": v})
		if err != nil || c.RedisURL == nil || c.RedisURL.String() != v {
			t.Errorf("REDIS_URL=%s: %v, %v", v, c.RedisURL, err)
		}
	}
	if c, err := parse(Serve, nil); err != nil || c.RedisURL != nil || c.RedisTimeout != 100*time.Millisecond {
		t.Errorf("unset: %v, timeout %s, %v; want nil, 100ms", c.RedisURL, c.RedisTimeout, err)
	}
}
