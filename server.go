// Command apikeyd is an API key service: signed-in users create, list and
// revoke API keys over GraphQL and REST, and any service asks apikeyd whether
// a key is good.
//
// Usage:
//
//	apikeyd serve                  run the server (migrates first)
//	apikeyd migrate up|down|status manage the database schema
//	apikeyd token --sub USER       mint a login token (JWT) with the configured secret
//	apikeyd scan [PATH…]           find API keys in files (exit 1 when found)
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/uptrace/bun"

	"github.com/apikeyd/apikeyd/graph"
	"github.com/apikeyd/apikeyd/internal/accesslog"
	"github.com/apikeyd/apikeyd/internal/account"
	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/auth"
	"github.com/apikeyd/apikeyd/internal/leak"
	"github.com/apikeyd/apikeyd/internal/logsink"
	"github.com/apikeyd/apikeyd/internal/metrics"
	"github.com/apikeyd/apikeyd/internal/rest"
	"github.com/apikeyd/apikeyd/internal/scan"
	"github.com/apikeyd/apikeyd/internal/store"
	"github.com/apikeyd/apikeyd/web"
)

func main() {
	// Logs (a line per request) go to stderr through a buffer, so that no
	// request waits for a write system call; at most logFlushEvery of them
	// is lost if the process dies without returning from run.
	logs := logsink.New(os.Stderr, logFlushEvery)
	log := slog.New(slog.NewJSONHandler(logs, nil))
	err := run(context.Background(), os.Args[1:], os.Stdout, log)
	logs.Close()
	var status exitStatus
	if errors.As(err, &status) {
		os.Exit(int(status))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "apikeyd:", err)
		os.Exit(1)
	}
}

// exitStatus is an error that only sets the process's exit status: the
// command has already said what it had to.
type exitStatus int

func (s exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(s)) }

// logFlushEvery is how long a log line may wait in memory.
const logFlushEvery = 100 * time.Millisecond

const usage = `usage:
  apikeyd serve [flags]                   run the server (see apikeyd serve -h)
  apikeyd migrate up|down|status [flags]  manage the database schema
  apikeyd token --sub USER [--ttl 1h]     print a login token signed with the configured secret
  apikeyd scan [PATH…]                    find API keys in files or - (stdin); exit 1 if any, 2 on error`

// run executes one command.
func run(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "serve":
		cfg, _, err := parseConfig("serve", args[1:], nil)
		if err != nil {
			return err
		}
		ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		return serve(ctx, cfg, log, nil)
	case "migrate":
		return migrateCommand(ctx, args[1:], stdout)
	case "token":
		return tokenCommand(args[1:], stdout)
	case "scan":
		cfg, fs, err := parseConfig("scan", args[1:], func(*flag.FlagSet) {})
		if err != nil {
			fmt.Fprintln(os.Stderr, "apikeyd:", err)
			return exitStatus(scan.ExitError)
		}
		if code := scan.Run(ctx, fs.Args(), os.Stdin, stdout, os.Stderr, cfg.KeyPrefix); code != scan.ExitNone {
			return exitStatus(code)
		}
		return nil
	case "-h", "--help", "help":
		fmt.Fprintln(stdout, usage)
		return nil
	}
	return fmt.Errorf("unknown command %q\n%s", args[0], usage)
}

// Config is apikeyd's configuration, read once from the environment and the
// command line (flags win).
type Config struct {
	Addr             string
	MetricsAddr      string
	DatabaseURL      string
	JWTSecret        string
	JWKSURL          string
	JWTIssuer        string
	JWTAudience      string
	KeyPrefix        string
	MaxKeysPerUser   int
	LastUsedInterval time.Duration
	Introspection    bool
	TrustedProxies   string
	CORSOrigins      string
	Migrate          bool
	AuthFailBurst    int
	Accounts         bool
	SessionTTL       time.Duration
	LoginFailBurst   int
	CacheSize        int           // verified keys cached; 0 turns the cache off
	CacheTTL         time.Duration // how long a cached verification is trusted
	LeakKeysURL      string        // key set that signs leak reports (POST /auth/leaks), fetched
	LeakKeysFile     string        // the same, from a file
	LeakToken        string        // a self-managed GitLab's token (/auth/leaks/gitlab/…)
}

// parseConfig reads the configuration for command name from the environment
// and args. extra may add command-specific flags to the set.
func parseConfig(name string, args []string, extra func(*flag.FlagSet)) (Config, *flag.FlagSet, error) {
	env := func(k, def string) string {
		if v, ok := os.LookupEnv(k); ok {
			return v
		}
		return def
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	var c Config
	var maxKeys, burst, interval, introspection, migrate, accounts, sessionTTL, loginBurst, cacheSize, cacheTTL string
	fs.StringVar(&c.Addr, "addr", env("ADDR", "127.0.0.1:8080"), "listen address (ADDR)")
	fs.StringVar(&c.MetricsAddr, "metrics-addr", env("METRICS_ADDR", ""), "serve /metrics only on this address, e.g. 127.0.0.1:9090; empty: on the main listener (METRICS_ADDR)")
	fs.StringVar(&c.DatabaseURL, "database-url", env("DATABASE_URL", "file:apikeyd.db"), "postgres://… or file:PATH for SQLite (DATABASE_URL)")
	fs.StringVar(&c.JWTSecret, "jwt-secret", env("JWT_SECRET", ""), "HS256 secret, at least 32 bytes; prefer the JWT_SECRET variable")
	fs.StringVar(&c.JWKSURL, "jwt-jwks-url", env("JWT_JWKS_URL", ""), "JWKS URL of an identity provider (JWT_JWKS_URL)")
	fs.StringVar(&c.JWTIssuer, "jwt-issuer", env("JWT_ISSUER", ""), "required iss claim (JWT_ISSUER)")
	fs.StringVar(&c.JWTAudience, "jwt-audience", env("JWT_AUDIENCE", ""), "required aud claim (JWT_AUDIENCE)")
	fs.StringVar(&c.KeyPrefix, "api-key-prefix", env("API_KEY_PREFIX", apikey.DefaultPrefix), "key prefix: lower-case letters and digits ending in _ (API_KEY_PREFIX)")
	fs.StringVar(&maxKeys, "max-keys-per-user", env("MAX_KEYS_PER_USER", "100"), "active keys a user may hold (MAX_KEYS_PER_USER)")
	fs.StringVar(&interval, "last-used-interval", env("LAST_USED_INTERVAL", "60s"), "how often one key's last_used_at may be written (LAST_USED_INTERVAL)")
	fs.StringVar(&introspection, "graphql-introspection", env("GRAPHQL_INTROSPECTION", "true"), "GraphQL introspection and the playground (GRAPHQL_INTROSPECTION)")
	fs.StringVar(&c.TrustedProxies, "trusted-proxies", env("TRUSTED_PROXIES", ""), "comma-separated addresses or CIDRs whose X-Forwarded-For is believed (TRUSTED_PROXIES)")
	fs.StringVar(&c.CORSOrigins, "cors-origins", env("CORS_ORIGINS", ""), "comma-separated origins allowed to call from a browser (CORS_ORIGINS)")
	fs.StringVar(&burst, "auth-fail-burst", env("AUTH_FAIL_BURST", "30"), "failed authentications allowed per address in a burst, refilling at one a second; 0 disables (AUTH_FAIL_BURST)")
	fs.StringVar(&migrate, "migrate", env("AUTO_MIGRATE", "true"), "apply pending migrations on start (AUTO_MIGRATE)")
	fs.StringVar(&accounts, "accounts", env("ACCOUNTS", "true"), "built-in accounts (POST /auth/register, /auth/login) when no JWT_JWKS_URL is set (ACCOUNTS)")
	fs.StringVar(&sessionTTL, "session-ttl", env("SESSION_TTL", "1h"), "lifetime of the login tokens /auth/login issues (SESSION_TTL)")
	fs.StringVar(&loginBurst, "login-fail-burst", env("LOGIN_FAIL_BURST", "10"), "failed logins allowed per account in a burst, refilling at one a minute; 0 disables (LOGIN_FAIL_BURST)")
	fs.StringVar(&cacheSize, "verify-cache-size", env("VERIFY_CACHE_SIZE", strconv.Itoa(apikey.DefaultCacheSize)), "verified API keys kept in memory; 0 turns the cache off (VERIFY_CACHE_SIZE)")
	fs.StringVar(&cacheTTL, "verify-cache-ttl", env("VERIFY_CACHE_TTL", apikey.DefaultCacheTTL.String()), "how long a cached verification is trusted without asking the database (VERIFY_CACHE_TTL)")
	fs.StringVar(&c.LeakKeysURL, "leak-report-keys-url", env("LEAK_REPORT_KEYS_URL", ""), "URL of the public keys that sign leak reports, e.g. GitHub's; enables POST /auth/leaks (LEAK_REPORT_KEYS_URL)")
	fs.StringVar(&c.LeakKeysFile, "leak-report-keys-file", env("LEAK_REPORT_KEYS_FILE", ""), "file of the public keys that sign leak reports; enables POST /auth/leaks (LEAK_REPORT_KEYS_FILE)")
	fs.StringVar(&c.LeakToken, "leak-revocation-token", env("LEAK_REVOCATION_TOKEN", ""), "token a self-managed GitLab presents to /auth/leaks/gitlab/; prefer the variable (LEAK_REVOCATION_TOKEN)")
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return c, fs, err
	}
	var err error
	if c.MaxKeysPerUser, err = strconv.Atoi(maxKeys); err != nil || c.MaxKeysPerUser < 1 {
		return c, fs, fmt.Errorf("MAX_KEYS_PER_USER must be a positive integer, not %q", maxKeys)
	}
	if c.AuthFailBurst, err = strconv.Atoi(burst); err != nil || c.AuthFailBurst < 0 {
		return c, fs, fmt.Errorf("AUTH_FAIL_BURST must be a non-negative integer, not %q", burst)
	}
	if c.LastUsedInterval, err = time.ParseDuration(interval); err != nil || c.LastUsedInterval <= 0 {
		return c, fs, fmt.Errorf("LAST_USED_INTERVAL must be a positive duration such as 60s, not %q", interval)
	}
	if c.CacheSize, err = strconv.Atoi(cacheSize); err != nil || c.CacheSize < 0 {
		return c, fs, fmt.Errorf("VERIFY_CACHE_SIZE must be a non-negative integer, not %q", cacheSize)
	}
	if c.CacheTTL, err = time.ParseDuration(cacheTTL); err != nil || c.CacheTTL <= 0 {
		return c, fs, fmt.Errorf("VERIFY_CACHE_TTL must be a positive duration such as 30s, not %q", cacheTTL)
	}
	if c.Introspection, err = strconv.ParseBool(introspection); err != nil {
		return c, fs, fmt.Errorf("GRAPHQL_INTROSPECTION must be true or false, not %q", introspection)
	}
	if c.Migrate, err = strconv.ParseBool(migrate); err != nil {
		return c, fs, fmt.Errorf("AUTO_MIGRATE must be true or false, not %q", migrate)
	}
	if c.MetricsAddr != "" {
		if _, _, err := net.SplitHostPort(c.MetricsAddr); err != nil {
			return c, fs, fmt.Errorf("METRICS_ADDR must be host:port such as 127.0.0.1:9090, not %q", c.MetricsAddr)
		}
	}
	if c.Accounts, err = strconv.ParseBool(accounts); err != nil {
		return c, fs, fmt.Errorf("ACCOUNTS must be true or false, not %q", accounts)
	}
	if c.SessionTTL, err = time.ParseDuration(sessionTTL); err != nil || c.SessionTTL < time.Second || c.SessionTTL%time.Second != 0 {
		return c, fs, fmt.Errorf("SESSION_TTL must be a duration of whole seconds such as 1h, not %q", sessionTTL)
	}
	if c.LoginFailBurst, err = strconv.Atoi(loginBurst); err != nil || c.LoginFailBurst < 0 {
		return c, fs, fmt.Errorf("LOGIN_FAIL_BURST must be a non-negative integer, not %q", loginBurst)
	}
	if !apikey.ValidPrefix(c.KeyPrefix) {
		return c, fs, fmt.Errorf("API_KEY_PREFIX %q must be lower-case letters and digits ending in _ (at most 32 bytes)", c.KeyPrefix)
	}
	if _, err := auth.ParsePrefixes(c.TrustedProxies); err != nil {
		return c, fs, fmt.Errorf("TRUSTED_PROXIES: %v", err)
	}
	if _, err := rest.ParseOrigins(c.CORSOrigins); err != nil {
		return c, fs, fmt.Errorf("CORS_ORIGINS: %v", err)
	}
	if c.LeakKeysURL != "" && c.LeakKeysFile != "" {
		return c, fs, errors.New("set LEAK_REPORT_KEYS_URL or LEAK_REPORT_KEYS_FILE, not both")
	}
	if fs.NArg() > 0 && extra == nil {
		return c, fs, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	return c, fs, nil
}

// jwtSecret returns the HS256 secret: the configured one, or, for SQLite
// without a JWKS, one generated once and kept beside the database file.
// PostgreSQL needs an explicit JWT_SECRET or JWT_JWKS_URL: replicas must
// share the secret, and a generated one would differ per machine.
func (c Config) jwtSecret() ([]byte, error) {
	if c.JWTSecret != "" {
		if c.JWKSURL != "" {
			return nil, errors.New("set JWT_SECRET or JWT_JWKS_URL, not both")
		}
		if len(c.JWTSecret) < 32 {
			return nil, errors.New("JWT_SECRET must be at least 32 bytes")
		}
		return []byte(c.JWTSecret), nil
	}
	if c.JWKSURL != "" {
		return nil, nil
	}
	if store.IsPostgres(c.DatabaseURL) {
		return nil, errors.New("with PostgreSQL, set JWT_SECRET (at least 32 bytes) or JWT_JWKS_URL")
	}
	return loadOrCreateSecret(secretPath(c.DatabaseURL))
}

// secretPath names the generated secret's file beside the SQLite database.
func secretPath(dsn string) string {
	path := strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite:"), "file:")
	if i := strings.IndexByte(path, '?'); i >= 0 {
		path = path[:i]
	}
	return strings.TrimSuffix(path, filepath.Ext(path)) + ".jwt-secret"
}

// loadOrCreateSecret reads the secret file, creating it (mode 0600, 48
// random bytes) when it does not exist.
func loadOrCreateSecret(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		s := strings.TrimSpace(string(b))
		if len(s) < 32 {
			return nil, fmt.Errorf("the JWT secret in %s is shorter than 32 bytes", path)
		}
		return []byte(s), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read JWT secret: %w", err)
	}
	raw := make([]byte, 48)
	_, _ = rand.Read(raw)
	s := base64.RawURLEncoding.EncodeToString(raw)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return loadOrCreateSecret(path) // another process created it first
	}
	if err != nil {
		return nil, fmt.Errorf("create JWT secret: %w", err)
	}
	if _, err := f.WriteString(s + "\n"); err != nil {
		f.Close()
		return nil, fmt.Errorf("write JWT secret: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("write JWT secret: %w", err)
	}
	return []byte(s), nil
}

// App is a configured apikeyd: its database, service, metrics and HTTP
// handler, and on PostgreSQL the listener that keeps its key cache in step
// with the revocations of other servers. The handler serves /metrics unless
// Config.MetricsAddr is set, in which case serve exposes Metrics.Handler
// there instead. Close releases them.
type App struct {
	DB      *bun.DB
	Keys    *apikey.Service
	Metrics *metrics.Metrics
	Handler http.Handler

	stopListener context.CancelFunc
	listener     sync.WaitGroup
}

// Close stops the revocation listener and closes the database.
func (a *App) Close() error {
	if a.stopListener != nil {
		a.stopListener()
	}
	a.listener.Wait()
	return a.DB.Close()
}

// newApp opens the database, migrates it when configured, and wires the
// service and the HTTP handler.
func newApp(ctx context.Context, cfg Config, log *slog.Logger) (*App, error) {
	secret, err := cfg.jwtSecret()
	if err != nil {
		return nil, err
	}
	verifier, err := auth.NewJWTVerifier(auth.JWTConfig{
		Secret: secret, JWKSURL: cfg.JWKSURL, Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, Logger: log,
	})
	if err != nil {
		return nil, err
	}
	var leaks *leak.Verifier
	if cfg.LeakKeysURL != "" || cfg.LeakKeysFile != "" {
		if leaks, err = leak.NewVerifier(leak.VerifierConfig{URL: cfg.LeakKeysURL, File: cfg.LeakKeysFile, Log: log}); err != nil {
			return nil, err
		}
	}
	db, err := store.Open(cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	if cfg.Migrate {
		g, err := store.MigrateUp(ctx, db)
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("migrate: %w", err)
		}
		if !g.IsZero() {
			log.Info("migrated", "group", g.ID, "migrations", g.Migrations.String())
		}
	}
	m := metrics.New()
	m.WatchDB(db.DB)
	cacheSize := cfg.CacheSize
	if cacheSize == 0 {
		cacheSize = -1 // off
	}
	st := store.New(db)
	keys := apikey.NewService(st, apikey.Config{
		Prefix:           cfg.KeyPrefix,
		MaxKeysPerUser:   cfg.MaxKeysPerUser,
		LastUsedInterval: cfg.LastUsedInterval,
		CacheSize:        cacheSize,
		CacheTTL:         cfg.CacheTTL,
		Observer:         m,
	})
	app := &App{DB: db, Keys: keys, Metrics: m}
	if store.IsPostgres(cfg.DatabaseURL) && cfg.CacheSize > 0 {
		// Other servers may revoke keys: cache nothing until their
		// revocations reach this one.
		keys.SuspendCache()
		lctx, stop := context.WithCancel(context.WithoutCancel(ctx))
		l := &store.RevocationListener{DB: db, Cache: keys, Log: log}
		app.stopListener = stop
		app.listener.Go(func() { l.Run(lctx) })
	}
	trusted, _ := auth.ParsePrefixes(cfg.TrustedProxies) // checked by parseConfig
	failures, client := auth.NewFailureLimiter[netip.Addr](cfg.AuthFailBurst, 1), auth.NewClientIP(trusted)
	authn := auth.NewAuthenticator(verifier, keys, failures, client)
	mux := http.NewServeMux()
	authn.Refuse = func(w http.ResponseWriter, r *http.Request, err error) {
		// Refused before routing: name the route it was for, so the access
		// log and metrics show where the refusals land.
		if _, pattern := mux.Handler(r); pattern != notFoundPattern {
			accesslog.SetRoute(r.Context(), pattern)
		}
		rest.WriteError(w, r, log, err)
	}
	rest.New(keys, log).Register(mux)
	mountAccounts(mux, cfg, secret, st, client, failures, log)
	rest.NewLeaks(keys, log, leaks, cfg.LeakToken, client, failures).Register(mux)
	gql := graph.NewHandler(graph.Options{Keys: keys, Logger: log, Introspection: cfg.Introspection})
	mux.Handle("GET /graphql", rest.Route("/graphql", gql))
	mux.Handle("POST /graphql", rest.Route("/graphql", gql))
	mux.Handle("/graphql", rest.Route("/graphql", rest.MethodNotAllowed(log, "GET, HEAD, POST")))
	web.Register(mux, log, web.Options{Playground: cfg.Introspection})
	if cfg.MetricsAddr == "" {
		mux.Handle("GET /metrics", rest.Route("/metrics", m.Handler()))
		mux.Handle("/metrics", rest.Route("/metrics", rest.MethodNotAllowed(log, "GET, HEAD")))
	}
	mux.Handle(notFoundPattern, rest.NotFound(log))

	var h http.Handler = rest.SkipAuthentication(mux, authn.Middleware(mux))
	h = rest.CORS(strings.Split(cfg.CORSOrigins, ","), h)
	h = rest.NoStore(h)
	h = rest.SecurityHeaders(h)
	h = rest.Recover(log, h)
	h = m.Middleware(h) // inside the access log, whose context carries the route
	h = accesslog.Middleware(log, h)
	app.Handler = h
	return app, nil
}

// notFoundPattern is the catch-all route that answers 404.
const notFoundPattern = "/"

// metricsHandler serves GET /metrics and nothing else, for the separate
// metrics listener.
func metricsHandler(m *metrics.Metrics, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", m.Handler())
	mux.Handle("/metrics", rest.MethodNotAllowed(log, "GET, HEAD"))
	mux.Handle("/", rest.NotFound(log))
	return mux
}

// listening tells where serve listens.
type listening struct {
	Addr        string // the API
	MetricsAddr string // /metrics alone, when Config.MetricsAddr is set
}

// mountAccounts mounts the built-in accounts when apikeyd is its own token
// issuer: unless ACCOUNTS is false or an identity provider (JWT_JWKS_URL)
// issues the tokens. Failed logins share the per-address budget of failed
// authentications, and each account has its own.
func mountAccounts(mux *http.ServeMux, cfg Config, secret []byte, st *store.Store, client *auth.ClientIP, failures *auth.FailureLimiter[netip.Addr], log *slog.Logger) {
	switch {
	case !cfg.Accounts:
		log.Info("built-in accounts are off (ACCOUNTS=false)")
		return
	case cfg.JWKSURL != "":
		log.Info("built-in accounts are off: login tokens come from the identity provider (JWT_JWKS_URL)")
		return
	}
	svc := account.NewService(st, account.Config{
		SessionTTL: cfg.SessionTTL,
		Mint: func(sub string, iat time.Time, ttl time.Duration) (string, error) {
			return auth.MintTokenAt(secret, sub, iat, ttl, cfg.JWTIssuer, cfg.JWTAudience)
		},
	})
	byAccount := auth.NewFailureLimiter[string](cfg.LoginFailBurst, 1.0/60)
	rest.NewAccounts(svc, log, client, failures, byAccount).Register(mux)
}

// serve runs the server until ctx is done, then shuts down gracefully:
// in-flight requests finish and recorded key uses are written.
// ready, when not nil, receives the listening addresses.
func serve(ctx context.Context, cfg Config, log *slog.Logger, ready chan<- listening) error {
	app, err := newApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer app.Close()

	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return err
	}
	at := listening{Addr: ln.Addr().String()}
	servers := map[*http.Server]net.Listener{newHTTPServer(app.Handler, log): ln}
	if cfg.MetricsAddr != "" {
		mln, err := net.Listen("tcp", cfg.MetricsAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("METRICS_ADDR: %w", err)
		}
		at.MetricsAddr = mln.Addr().String()
		servers[newHTTPServer(metricsHandler(app.Metrics, log), log)] = mln
	}

	flushCtx, stopFlusher := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() { app.Keys.RunUsageFlusher(flushCtx, log) })

	errc := make(chan error, len(servers))
	for srv, l := range servers {
		go func() { errc <- srv.Serve(l) }()
	}
	attrs := []any{"addr", at.Addr, "database", store.Describe(cfg.DatabaseURL)}
	if at.MetricsAddr != "" {
		attrs = append(attrs, "metrics_addr", at.MetricsAddr)
	}
	log.Info("apikeyd listening", attrs...)
	if ready != nil {
		ready <- at
	}

	select {
	case err = <-errc: // a listener failed: stop the other too
	case <-ctx.Done():
		log.Info("shutting down")
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	for srv := range servers {
		if e := srv.Shutdown(shutCtx); err == nil {
			err = e
		}
	}
	cancel()
	stopFlusher()
	wg.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// newHTTPServer returns an http.Server for h with apikeyd's limits.
func newHTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return defaultHTTPLimits.server(h, log)
}

// migrateCommand runs `apikeyd migrate up|down|status`.
func migrateCommand(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: apikeyd migrate up|down|status [--database-url URL]")
	}
	action := args[0]
	cfg, _, err := parseConfig("migrate "+action, args[1:], nil)
	if err != nil {
		return err
	}
	db, err := store.Open(cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer db.Close()
	switch action {
	case "up":
		g, err := store.MigrateUp(ctx, db)
		if err != nil {
			return err
		}
		if g.IsZero() {
			fmt.Fprintln(stdout, "nothing to migrate: the schema is up to date")
			return nil
		}
		fmt.Fprintf(stdout, "migrated to group %d: %s\n", g.ID, g.Migrations)
	case "down":
		g, err := store.MigrateDown(ctx, db)
		if err != nil {
			return err
		}
		if g.IsZero() {
			fmt.Fprintln(stdout, "nothing to roll back")
			return nil
		}
		fmt.Fprintf(stdout, "rolled back group %d: %s\n", g.ID, g.Migrations)
	case "status":
		m, err := store.Migrator(ctx, db)
		if err != nil {
			return err
		}
		ms, err := m.MigrationsWithStatus(ctx)
		if err != nil {
			return err
		}
		for _, mg := range ms {
			state := "pending"
			if mg.IsApplied() {
				state = "applied " + mg.MigratedAt.UTC().Format(time.RFC3339)
			}
			fmt.Fprintf(stdout, "%s_%s\t%s\n", mg.Name, mg.Comment, state)
		}
	default:
		return fmt.Errorf("unknown migrate action %q: use up, down or status", action)
	}
	return nil
}

// tokenCommand runs `apikeyd token --sub USER [--ttl 1h]`.
func tokenCommand(args []string, stdout io.Writer) error {
	var sub string
	var ttl time.Duration
	cfg, _, err := parseConfig("token", args, func(fs *flag.FlagSet) {
		fs.StringVar(&sub, "sub", "", "user id to put in the token (required)")
		fs.DurationVar(&ttl, "ttl", time.Hour, "how long the token is valid")
	})
	if err != nil {
		return err
	}
	if sub == "" {
		return errors.New("usage: apikeyd token --sub USER [--ttl 1h]")
	}
	if cfg.JWKSURL != "" {
		return errors.New("JWT_JWKS_URL is set: tokens come from the identity provider, not apikeyd")
	}
	secret, err := cfg.jwtSecret()
	if err != nil {
		return err
	}
	tok, err := auth.MintToken(secret, sub, ttl, cfg.JWTIssuer, cfg.JWTAudience)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}
