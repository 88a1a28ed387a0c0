// Package app assembles apikeyd from its parts: given a Config and a
// database, it builds the services, the two faces (REST and GraphQL), the
// pages and the metrics into one HTTP handler, and runs it (Serve) until it
// is told to stop.
package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/uptrace/bun"

	"github.com/apikeyd/apikeyd/graph"
	"github.com/apikeyd/apikeyd/internal/account"
	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/audit"
	"github.com/apikeyd/apikeyd/internal/auth"
	"github.com/apikeyd/apikeyd/internal/config"
	"github.com/apikeyd/apikeyd/internal/httpx"
	"github.com/apikeyd/apikeyd/internal/leak"
	"github.com/apikeyd/apikeyd/internal/metrics"
	"github.com/apikeyd/apikeyd/internal/org"
	"github.com/apikeyd/apikeyd/internal/redislimit"
	"github.com/apikeyd/apikeyd/internal/rest"
	"github.com/apikeyd/apikeyd/internal/store"
	"github.com/apikeyd/apikeyd/internal/tokensecret"
	"github.com/apikeyd/apikeyd/internal/webhook"
	"github.com/apikeyd/apikeyd/web"
)

// App is a configured apikeyd: its database, service, metrics and HTTP
// handler, on PostgreSQL the listener that keeps its key cache in step
// with the revocations of other servers, and with REDIS_URL the rate
// limiter shared with them and its probe. The handler serves /metrics unless
// Config.MetricsAddr is set, in which case Serve exposes Metrics.Handler
// there instead. Close releases them.
type App struct {
	DB    *bun.DB
	Keys  *apikey.Service
	Orgs  *org.Service
	Audit *audit.Service
	// Webhooks delivers audit events; nil unless WEBHOOK_URL is set. Serve
	// runs it.
	Webhooks *webhook.Dispatcher
	Metrics  *metrics.Metrics
	Handler  http.Handler

	stopListener context.CancelFunc
	listener     sync.WaitGroup      // the revocation listener and the Redis probe
	rateLimits   *redislimit.Limiter // nil without REDIS_URL
	accounts     *account.Service    // nil when built-in accounts are off
	lock         io.Closer           // of a SQLite database file (Open); nil from New
}

// Close stops the revocation listener and the Redis probe, closes the
// connections to Redis, waits for the failed logins still being recorded in
// the background, closes the database and, when Open locked its SQLite
// file, lets another process have it.
func (a *App) Close() error {
	if a.stopListener != nil {
		a.stopListener()
	}
	a.listener.Wait()
	if a.rateLimits != nil {
		a.rateLimits.Close()
	}
	if a.accounts != nil {
		a.accounts.Wait()
	}
	err := a.DB.Close()
	if a.lock != nil {
		a.lock.Close()
	}
	return err
}

// Open opens the database of cfg, migrates it when cfg.Migrate is set, and
// builds the App on it (see New) with deps, whose DB it sets. A SQLite
// database file is the App's alone until Close (store.LockSQLite): a second
// server on the file fails here.
func Open(ctx context.Context, cfg config.Config, deps Deps) (a *App, err error) {
	db, err := store.Open(cfg.DatabaseURL)
	if err != nil {
		return nil, err
	}
	lock, err := store.LockSQLite(cfg.DatabaseURL)
	if err != nil {
		db.Close()
		return nil, err
	}
	defer func() {
		if err != nil {
			db.Close()
			lock.Close()
		}
	}()
	if cfg.Migrate {
		g, err := store.MigrateUp(ctx, db)
		if err != nil {
			return nil, fmt.Errorf("migrate: %w", err)
		}
		if !g.IsZero() {
			deps.Log.Info("migrated", "group", g.ID, "migrations", g.Migrations.String())
		}
	}
	deps.DB = db
	if a, err = New(ctx, cfg, deps); err != nil {
		return nil, err
	}
	a.lock = lock
	return a, nil
}

// Deps are what an App is built around.
type Deps struct {
	// DB is an open and migrated database, which the App takes over
	// (Close closes it).
	DB *bun.DB
	// Keys stores the API keys; nil: the store on DB. Tests give a store
	// of their choosing (one that fails, say) and get the whole handler.
	Keys apikey.Store
	Log  *slog.Logger
	// Now is the clock every deadline is decided by: key expiry, the end
	// of a roll's grace, how long a verification stays cached, login
	// token lifetimes, the last-used interval, audit retention, webhook
	// retries and leases, key-set refreshes. nil: time.Now. Tests pass a
	// clock they advance, to reach a deadline without waiting for it.
	// What paces work in real time keeps the wall clock: the failure
	// limits, how often uses are flushed, events pruned and the webhook
	// queue polled, I/O timeouts, and the latencies measured.
	Now func() time.Time
}

// New wires an App around its dependencies.
func New(ctx context.Context, cfg config.Config, deps Deps) (*App, error) {
	db, log, now := deps.DB, deps.Log, deps.Now
	if now == nil {
		now = time.Now
	}
	secret, err := TokenSecret(cfg)
	if err != nil {
		return nil, err
	}
	jwksURL := ""
	if cfg.JWKSURL != nil {
		jwksURL = cfg.JWKSURL.String()
	}
	verifier, err := auth.NewJWTVerifier(auth.JWTConfig{
		Secret: secret, JWKSURL: jwksURL, Issuer: cfg.JWTIssuer, Audience: cfg.JWTAudience, Logger: log, Now: now,
		OrgClaim: cfg.OrgClaim, OrgRoleClaim: cfg.OrgRoleClaim, OrgRoleMap: cfg.OrgRoleMap,
	})
	if err != nil {
		return nil, err
	}
	leaks, err := leakVerifier(cfg, log, now)
	if err != nil {
		return nil, err
	}
	m := metrics.New(db.DB)
	cacheSize := cfg.CacheSize
	if cacheSize == 0 {
		cacheSize = -1 // off
	}
	// The store queues the events webhooks deliver with the change that
	// records them, and tells the metrics and the dispatcher once it has
	// committed one: deliver it now.
	var hooks *webhook.Dispatcher
	storeCfg := store.Config{OnEvent: func(action string) {
		m.AuditEventWritten(action)
		if hooks != nil && webhook.Delivered(action) {
			hooks.Wake()
		}
	}}
	if cfg.WebhookURL != nil {
		storeCfg.Queue = webhook.Delivered
	}
	st := store.New(db, storeCfg)
	if cfg.WebhookURL != nil {
		hooks = webhook.NewDispatcher(st, webhook.Config{
			URL: cfg.WebhookURL, Key: cfg.WebhookKey, Schedule: cfg.WebhookRetrySchedule, Observer: m, Log: log, Now: now,
		})
	}
	var keyStore apikey.Store = st
	if deps.Keys != nil {
		keyStore = deps.Keys
	}
	rateLimits, err := rateLimiter(cfg, store.IsPostgresDB(db), m, log)
	if err != nil {
		return nil, err
	}
	var limiter apikey.RateLimiter // nil (not a nil *redislimit.Limiter): the service's own
	if rateLimits != nil {
		limiter = rateLimits
	}
	// The organisations' service tells the keys' service who may use an
	// organisation's keys, and the keys' service forgets the keys that
	// deleting an organisation revokes: each needs the other.
	var keys *apikey.Service
	accounts, _ := builtInAccounts(cfg)
	orgs := org.NewService(st, org.Config{
		IdentityProvider: cfg.OrgClaim != nil,
		Accounts:         accounts,
		Now:              now,
		OnKeysRevoked:    func(hashes []string) { keys.ForgetHashes(hashes) },
	})
	keys = apikey.NewService(keyStore, apikey.Config{
		Prefix:           cfg.KeyPrefix,
		MaxKeysPerUser:   cfg.MaxKeysPerUser,
		MaxKeysPerOrg:    cfg.MaxKeysPerOrg,
		LastUsedInterval: cfg.LastUsedInterval,
		CacheSize:        cacheSize,
		CacheTTL:         cfg.CacheTTL,
		Scopes:           cfg.Scopes,
		UsageRetention:   cfg.UsageRetention,
		RateLimiter:      limiter,
		Now:              now,
		Observer:         m,
		Orgs:             orgs,
	})
	events := audit.NewService(st, audit.Config{
		Principal: func(ctx context.Context) (string, error) {
			p, err := apikey.RequireJWT(ctx)
			return p.UserID, err
		},
		Retention: cfg.AuditRetention,
		Now:       now,
	})
	a := &App{DB: db, Keys: keys, Orgs: orgs, Audit: events, Webhooks: hooks, Metrics: m, rateLimits: rateLimits}
	lctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	a.stopListener = stop
	if store.IsPostgresDB(db) && cfg.CacheSize > 0 {
		// Other servers may revoke keys: cache nothing until their
		// revocations reach this one.
		keys.SuspendCache()
		l := &store.RevocationListener{DB: db, Cache: keys, Log: log}
		a.listener.Go(func() { l.Run(lctx) })
	}
	if rateLimits != nil {
		// The probe ends a fallback to this server's buckets once Redis
		// answers again.
		a.listener.Go(func() { rateLimits.Run(lctx) })
	}

	// The failure limits refill in real time, not on now: they pace the
	// attempts of a client, which come in real time, and hold no deadline
	// a test needs to reach.
	failures, client := auth.NewAddressLimiter(cfg.AuthFailBurst, 1), auth.NewClientIP(cfg.TrustedProxies)
	authn := auth.NewAuthenticator(verifier, keys, failures, client, m)
	mux := http.NewServeMux()
	// Each route says how it authenticates. Most verify the credential a
	// request brings, if any, before their handler (authenticated); the
	// leak routes and GET /auth/verify check their own.
	authenticated := rest.Authenticated(authn, log)
	keysAPI := rest.New(keys, authn, log)
	keysAPI.Register(mux)
	rest.NewOrgs(orgs, keysAPI, log).Register(mux)
	rest.NewAudit(events, log).Register(mux, authn)
	a.accounts = mountAccounts(mux, cfg, secret, st, client, failures, authn, log, now)
	rest.NewLeaks(keys, log, leaks, cfg.LeakRevocation, client, failures).Register(mux)
	gql := graph.NewHandler(graph.Options{Keys: keys, Orgs: orgs, Audit: events, Logger: log, Introspection: cfg.Introspection})
	// Every method: gql answers the others 405. A refused GraphQL request
	// is answered in the GraphQL error shape, which its clients read.
	mux.Handle(graphqlPath, httpx.Route(graphqlPath, authn.Optional(gql, func(w http.ResponseWriter, r *http.Request, err error) {
		graph.WriteError(w, r, httpx.Status(apperr.CodeOf(err)), err)
	})))
	web.Register(mux, log, web.Options{Playground: cfg.Introspection, Authenticate: authenticated})
	if cfg.MetricsAddr == "" {
		mountMetrics(mux, m, authenticated, log)
	}
	mux.Handle(notFoundPattern, authenticated(httpx.NotFound(log)))

	h := httpx.CORS(cfg.CORSOrigins, mux)
	h = httpx.NoStore(noStorePaths, h)
	h = httpx.SecurityHeaders(h)
	h = httpx.Recover(log, h)
	a.Handler = httpx.Observe(h, withOrigin(client), m.Request, httpx.AccessLog(log))
	return a, nil
}

// withOrigin records in each request's context where it came from (the
// client address, honouring TRUSTED_PROXIES, and the user agent), for the
// audit log and a key's last use.
func withOrigin(client *auth.ClientIP) func(context.Context, *http.Request) context.Context {
	return func(ctx context.Context, r *http.Request) context.Context {
		return audit.WithOrigin(ctx, audit.Origin{Addr: client.Of(r), RawUserAgent: r.UserAgent()})
	}
}

// noStorePaths are the paths whose answers no cache may keep: they carry
// secrets (a new key) or depend on who asks, and a GraphQL GET is otherwise
// as cacheable as any other.
var noStorePaths = []string{"/auth/", graphqlPath}

// graphqlPath is the GraphQL endpoint.
const graphqlPath = "/graphql"

// notFoundPattern is the catch-all route that answers 404.
const notFoundPattern = "/"

// mountMetrics serves GET /metrics on mux, behind authenticate.
func mountMetrics(mux *http.ServeMux, m *metrics.Metrics, authenticate func(http.Handler) http.Handler, log *slog.Logger) {
	mux.Handle("GET /metrics", httpx.Route("/metrics", authenticate(m.Handler())))
	mux.Handle("/metrics", httpx.Route("/metrics", authenticate(httpx.MethodNotAllowed(log, "GET, HEAD"))))
}

// mountAccounts mounts the built-in accounts when apikeyd is its own token
// issuer: unless ACCOUNTS is false or an identity provider (JWT_JWKS_URL)
// issues the tokens. Failed logins share the per-address budget of failed
// authentications, and each account has its own. It returns the accounts
// service, or nil when accounts are off.
func mountAccounts(mux *http.ServeMux, cfg config.Config, secret []byte, st *store.Store, client *auth.ClientIP, failures *auth.AddressLimiter, authn *auth.Authenticator, log *slog.Logger, now func() time.Time) *account.Service {
	if on, why := builtInAccounts(cfg); !on {
		log.Info(why)
		return nil
	}
	svc := account.NewService(st, account.Config{
		SessionTTL: cfg.SessionTTL,
		Log:        log,
		Now:        now,
		Mint: func(sub string, iat time.Time, ttl time.Duration) (string, error) {
			return auth.MintTokenAt(secret, sub, iat, ttl, cfg.JWTIssuer, cfg.JWTAudience)
		},
	})
	byAccount := auth.NewFailureLimiter[string](cfg.LoginFailBurst, 1.0/60)
	rest.NewAccounts(svc, log, client, failures, byAccount).Register(mux, authn)
	return svc
}

// builtInAccounts reports whether apikeyd has its own accounts: unless
// ACCOUNTS is false or an identity provider (JWT_JWKS_URL) issues the login
// tokens; when not, why says which.
func builtInAccounts(cfg config.Config) (on bool, why string) {
	switch {
	case !cfg.Accounts:
		return false, "built-in accounts are off (ACCOUNTS=false)"
	case cfg.JWKSURL != nil:
		return false, "built-in accounts are off: login tokens come from the identity provider (JWT_JWKS_URL)"
	}
	return true, ""
}

// rateLimiter returns the rate limiter shared through the Redis of
// REDIS_URL, or nil without it: each server then keeps its own buckets,
// which the log says when servers may be several (on PostgreSQL).
func rateLimiter(cfg config.Config, postgres bool, o redislimit.Observer, log *slog.Logger) (*redislimit.Limiter, error) {
	if cfg.RedisURL == nil {
		if postgres {
			log.Info("rate limits: each server keeps its own buckets, so with N servers a key may get up to N times its limit; set REDIS_URL to share them")
		}
		return nil, nil
	}
	l, err := redislimit.New(redislimit.Config{URL: cfg.RedisURL, Timeout: cfg.RedisTimeout, Observer: o, Log: log})
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL: %w", err)
	}
	return l, nil
}

// leakVerifier returns the verifier of leak report signatures, or nil when
// no key set is configured (POST /auth/leaks then answers 404).
func leakVerifier(cfg config.Config, log *slog.Logger, now func() time.Time) (*leak.Verifier, error) {
	switch {
	case cfg.LeakKeysURL != nil:
		return leak.NewVerifier(leak.VerifierConfig{URL: cfg.LeakKeysURL.String(), Log: log, Now: now})
	case cfg.LeakKeysFile != "":
		return leak.NewVerifier(leak.VerifierConfig{File: cfg.LeakKeysFile, Log: log, Now: now})
	}
	return nil, nil
}

// TokenSecret returns the HS256 secret that signs and checks login tokens:
// the configured one; none when an identity provider (JWT_JWKS_URL) issues
// them; on SQLite, one generated once and kept beside the database file
// (see tokensecret.LoadOrCreate). PostgreSQL needs an explicit JWT_SECRET or
// JWT_JWKS_URL: replicas must share the secret, and a generated one would
// differ per machine.
func TokenSecret(cfg config.Config) ([]byte, error) {
	switch {
	case cfg.JWTSecret != "":
		return []byte(cfg.JWTSecret), nil
	case cfg.JWKSURL != nil:
		return nil, nil
	}
	path, _, ok := store.SQLitePath(cfg.DatabaseURL)
	if !ok {
		return nil, fmt.Errorf("with PostgreSQL, set JWT_SECRET (at least %d bytes) or JWT_JWKS_URL", tokensecret.MinBytes)
	}
	return tokensecret.LoadOrCreate(secretPath(path))
}

// secretPath names the generated secret's file beside the SQLite database
// file at dbPath.
func secretPath(dbPath string) string {
	return dbPath[:len(dbPath)-len(filepath.Ext(dbPath))] + ".jwt-secret"
}
