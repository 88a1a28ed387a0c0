// Package config reads apikeyd's configuration, once, into a typed Config:
// each setting is an environment variable and a flag of the same meaning
// (the flag wins), with its default and its rule written in one place here.
// A command reads only the settings it uses, so a bad setting of the server
// never stops `apikeyd migrate status`.
package config

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/tokensecret"
	"github.com/apikeyd/apikeyd/internal/webhooksecret"
)

// Config is apikeyd's configuration. Every value is parsed and checked.
type Config struct {
	Addr        string // listen address of the API
	MetricsAddr string // when set, /metrics is served there alone

	DatabaseURL string // postgres://… for PostgreSQL; file:PATH or sqlite:PATH for SQLite
	Migrate     bool   // apply pending migrations on start

	JWTSecret   string   // HS256 secret; empty: a JWKS, or a generated secret on SQLite
	JWKSURL     *url.URL // an identity provider's key set; nil: none
	JWTIssuer   string   // required iss claim, when set
	JWTAudience string   // required aud claim, when set

	// Identity-provider mode (docs/organisations.md): where a login token
	// names the organisation it acts for and the role it has there.
	OrgClaim     []string               // ORG_CLAIM, a path of claim names; nil: no identity-provider mode
	OrgRoleClaim []string               // ORG_ROLE_CLAIM; nil: every token's role is member
	OrgRoleMap   map[string]apikey.Role // ORG_ROLE_MAP, the provider's role → ours; nil: a role already named owner, admin or member

	KeyPrefix        string
	MaxKeysPerUser   int
	MaxKeysPerOrg    int
	LastUsedInterval time.Duration
	CacheSize        int           // verified keys cached; 0 turns the cache off
	CacheTTL         time.Duration // how long a cached verification is trusted
	Scopes           []string      // the scope catalogue, sorted; nil: any well-formed name

	Introspection  bool           // GraphQL introspection and the playground
	TrustedProxies []netip.Prefix // whose X-Forwarded-For is believed
	CORSOrigins    []string       // browser origins allowed to call (exact match)
	AuthFailBurst  int            // failed authentications per address in a burst; 0: no limit

	Accounts       bool          // built-in accounts (register, login)
	SessionTTL     time.Duration // lifetime of the login tokens /auth/login issues
	LoginFailBurst int           // failed logins per account in a burst; 0: no limit

	LeakKeysURL    *url.URL // the key set that signs leak reports (POST /auth/leaks); nil: none
	LeakKeysFile   string   // the same, from a file; empty: none
	LeakRevocation string   // the token a self-managed GitLab presents; empty: no GitLab routes

	AuditRetention time.Duration // how long audit events are kept
	UsageRetention time.Duration // how long hourly usage counts are kept

	WebhookURL           *url.URL        // where api_key.* and org.* events are POSTed; nil: no webhooks
	WebhookKey           []byte          // the HMAC key: the decoded part of WEBHOOK_SECRET
	WebhookRetrySchedule []time.Duration // the wait before each retry

	RedisURL     *url.URL      // Redis or Valkey holding the rate limits' buckets for every server; nil: per-server buckets
	RedisTimeout time.Duration // how long one call to Redis may take before the server falls back to its own buckets
}

// Scope is the set of settings a command reads.
type Scope uint8

// The groups of settings, and the scopes of apikeyd's commands.
const (
	Database  Scope = 1 << iota // where the data is
	Tokens                      // how login tokens are signed and checked
	KeyFormat                   // what a key looks like (its prefix)
	Listen                      // where serve listens
	Server                      // everything else serve needs
	// Arguments is no group of settings: a command of this scope takes
	// arguments after its flags, which the caller reads (fs.Args()).
	Arguments

	Serve       = Database | Tokens | KeyFormat | Listen | Server
	Migrate     = Database
	Token       = Database | Tokens
	Scan        = KeyFormat | Arguments
	Healthcheck = Listen
	Backup      = Database | Arguments
)

// setting is one environment variable and its flag.
type setting struct {
	scope     Scope
	env, flag string
	def       string
	usage     string
	shown     shown // how much of the value help and errors may show
	// set parses and checks v into c; its error says what is expected
	// (Parse names the variable).
	set func(c *Config, v string) error
}

var settings = []setting{
	{Listen, "ADDR", "addr", "127.0.0.1:8080", "listen address of the API", plain,
		func(c *Config, v string) error { c.Addr = v; return nil }},
	{Server, "METRICS_ADDR", "metrics-addr", "", "serve /metrics only on this address, such as 127.0.0.1:9090; unset, /metrics is served on ADDR", plain,
		func(c *Config, v string) error {
			if v != "" {
				if _, _, err := net.SplitHostPort(v); err != nil {
					return errors.New("must be host:port such as 127.0.0.1:9090")
				}
			}
			c.MetricsAddr = v
			return nil
		}},
	{Database, "DATABASE_URL", "database-url", "file:apikeyd.db", "the database: postgres://user:password@host:5432/db?sslmode=… for PostgreSQL, file:PATH or sqlite:PATH for SQLite (a relative PATH is in the working directory)", redacted,
		func(c *Config, v string) error {
			if strings.TrimSpace(v) == "" {
				return errors.New("must name a database")
			}
			c.DatabaseURL = v
			return nil
		}},
	{Server, "AUTO_MIGRATE", "migrate", "true", "apply pending migrations when serve starts", plain,
		boolSetting(func(c *Config) *bool { return &c.Migrate })},
	{Tokens, "JWT_SECRET", "jwt-secret", "", "the HS256 secret of login tokens, at least 32 bytes; required with PostgreSQL unless JWT_JWKS_URL is set; unset on SQLite, one is generated once and kept beside the database file (apikeyd.jwt-secret for apikeyd.db); prefer the variable to the flag", secret,
		func(c *Config, v string) error {
			if v != "" {
				if err := tokensecret.Check([]byte(v)); err != nil {
					return err
				}
			}
			c.JWTSecret = v
			return nil
		}},
	{Tokens, "JWT_JWKS_URL", "jwt-jwks-url", "", "an identity provider's JSON Web Key Set (RS256, ES256, EdDSA keys), instead of JWT_SECRET: fetched on first use, cached, refetched at most once a minute for an unknown kid (and when an hour old); while it cannot be fetched, keys already fetched keep serving and a token that needs a new one gets 503 SERVER_BUSY", secret,
		func(c *Config, v string) (err error) {
			c.JWKSURL, err = httpURL(v)
			return err
		}},
	{Tokens, "JWT_ISSUER", "jwt-issuer", "", "when set, login tokens must carry this iss claim", plain,
		func(c *Config, v string) error { c.JWTIssuer = v; return nil }},
	{Tokens, "JWT_AUDIENCE", "jwt-audience", "", "when set, login tokens must carry this aud claim", plain,
		func(c *Config, v string) error { c.JWTAudience = v; return nil }},
	{Server, "ORG_CLAIM", "org-claim", "", "identity-provider mode: the claim of login tokens naming the organisation they act for, a dot path into nested objects such as org_id or o.id (a string of 1 to 255 bytes without control characters or surrounding spaces; otherwise the token acts for no organisation); organisations are then the provider's, created on first sight, and their members and invitations routes answer 404", plain,
		func(c *Config, v string) (err error) {
			c.OrgClaim, err = claimPath(v)
			return err
		}},
	{Server, "ORG_ROLE_CLAIM", "org-role-claim", "", "with ORG_CLAIM: the claim of the token's role in its organisation, a dot path such as org_role or o.rol; unset or absent from a token, the role is member", plain,
		func(c *Config, v string) (err error) {
			c.OrgRoleClaim, err = claimPath(v)
			return err
		}},
	{Server, "ORG_ROLE_MAP", "org-role-map", "", "with ORG_ROLE_CLAIM: the provider's roles as ours, provider_role=role comma-separated (roles owner, admin, member), such as org:admin=admin,org:member=member; exact matches, anything unmapped is member; unset, a role claim of owner, admin or member is taken as is and anything else is member", plain,
		func(c *Config, v string) (err error) {
			c.OrgRoleMap, err = parseRoleMap(v)
			return err
		}},
	{KeyFormat, "API_KEY_PREFIX", "api-key-prefix", apikey.DefaultPrefix, "the prefix of every key: lower-case letters and digits, ending in _ (at most 32 bytes)", plain,
		func(c *Config, v string) error {
			if !apikey.ValidPrefix(v) {
				return errors.New("must be lower-case letters and digits ending in _ (at most 32 bytes)")
			}
			c.KeyPrefix = v
			return nil
		}},
	{Server, "MAX_KEYS_PER_USER", "max-keys-per-user", "100", "active keys a user may hold (expired keys count until revoked)", plain,
		intSetting(1, func(c *Config) *int { return &c.MaxKeysPerUser })},
	{Server, "MAX_KEYS_PER_ORG", "max-keys-per-org", "1000", "active keys an organisation may hold (expired keys count until revoked)", plain,
		intSetting(1, func(c *Config) *int { return &c.MaxKeysPerOrg })},
	{Server, "LAST_USED_INTERVAL", "last-used-interval", "60s", "how often one key's last_used_at may be written", plain,
		durationSetting(time.Nanosecond, func(c *Config) *time.Duration { return &c.LastUsedInterval })},
	{Server, "VERIFY_CACHE_SIZE", "verify-cache-size", strconv.Itoa(apikey.DefaultCacheSize), "verified API keys kept in memory (about 200 bytes each); 0 turns the cache off", plain,
		intSetting(0, func(c *Config) *int { return &c.CacheSize })},
	{Server, "VERIFY_CACHE_TTL", "verify-cache-ttl", apikey.DefaultCacheTTL.String(), "how long a cached verification is trusted without asking the database", plain,
		durationSetting(time.Nanosecond, func(c *Config) *time.Duration { return &c.CacheTTL })},
	{Server, "SCOPES", "scopes", "", "the scope catalogue keys may draw from, comma-separated; unset, any well-formed name", plain,
		func(c *Config, v string) (err error) {
			if c.Scopes, err = apikey.ParseScopeList(v); err != nil {
				return errors.New(apperr.MessageOf(err))
			}
			return nil
		}},
	{Server, "GRAPHQL_INTROSPECTION", "graphql-introspection", "true", "GraphQL introspection, field suggestions and the playground", plain,
		boolSetting(func(c *Config) *bool { return &c.Introspection })},
	{Server, "TRUSTED_PROXIES", "trusted-proxies", "", "comma-separated addresses or CIDRs whose X-Forwarded-For is believed", plain,
		func(c *Config, v string) (err error) {
			c.TrustedProxies, err = parsePrefixes(v)
			return err
		}},
	{Server, "CORS_ORIGINS", "cors-origins", "", "comma-separated origins allowed to call from a browser, exactly as browsers send them (https://app.example.com)", plain,
		func(c *Config, v string) (err error) {
			c.CORSOrigins, err = parseOrigins(v)
			return err
		}},
	{Server, "AUTH_FAIL_BURST", "auth-fail-burst", "30", "failed authentications allowed per client address in a burst, refilling at one a second; 0 disables", plain,
		intSetting(0, func(c *Config) *int { return &c.AuthFailBurst })},
	{Server, "ACCOUNTS", "accounts", "true", "built-in accounts (POST /auth/register, /auth/login); always off when JWT_JWKS_URL is set", plain,
		boolSetting(func(c *Config) *bool { return &c.Accounts })},
	{Server, "SESSION_TTL", "session-ttl", "1h", "lifetime of the login tokens /auth/login issues (whole seconds)", plain,
		func(c *Config, v string) error {
			d, err := time.ParseDuration(v)
			if err != nil || d < time.Second || d%time.Second != 0 {
				return errors.New("must be a duration of whole seconds such as 1h")
			}
			c.SessionTTL = d
			return nil
		}},
	{Server, "LOGIN_FAIL_BURST", "login-fail-burst", "10", "failed logins allowed per account in a burst, refilling at one a minute; 0 disables", plain,
		intSetting(0, func(c *Config) *int { return &c.LoginFailBurst })},
	{Server, "LEAK_REPORT_KEYS_URL", "leak-report-keys-url", "", "URL of the public keys that sign leak reports (GitHub's: https://api.github.com/meta/public_keys/secret_scanning), fetched when first needed and again, at most once a minute, for an unknown key identifier; enables POST /auth/leaks", secret,
		func(c *Config, v string) (err error) {
			c.LeakKeysURL, err = httpURL(v)
			return err
		}},
	{Server, "LEAK_REPORT_KEYS_FILE", "leak-report-keys-file", "", "file of the public keys that sign leak reports, read at start, instead of LEAK_REPORT_KEYS_URL; enables POST /auth/leaks", plain,
		func(c *Config, v string) error { c.LeakKeysFile = v; return nil }},
	{Server, "LEAK_REVOCATION_TOKEN", "leak-revocation-token", "", "the token a self-managed GitLab presents to apikeyd's token revocation service (/auth/leaks/gitlab/), at least 16 characters of a long random value; prefer the variable to the flag", secret,
		func(c *Config, v string) error {
			if v != "" && len(v) < 16 {
				return errors.New("must be at least 16 characters (a random value)")
			}
			c.LeakRevocation = v
			return nil
		}},
	{Server, "AUDIT_RETENTION", "audit-retention", "2160h", "how long audit events are kept before they are deleted (at least 1h)", plain,
		retentionSetting(func(c *Config) *time.Duration { return &c.AuditRetention })},
	{Server, "USAGE_RETENTION", "usage-retention", "2160h", "how long hourly usage counts are kept before they are deleted (at least 1h)", plain,
		retentionSetting(func(c *Config) *time.Duration { return &c.UsageRetention })},
	{Server, "WEBHOOK_URL", "webhook-url", "", "POST every api_key.* and org.* audit event to this http(s) URL (Standard Webhooks); needs WEBHOOK_SECRET", secret,
		func(c *Config, v string) (err error) {
			c.WebhookURL, err = httpURL(v)
			return err
		}},
	{Server, "WEBHOOK_SECRET", "webhook-secret", "", "the webhook signing secret, whsec_ + base64 of at least 24 bytes; needs WEBHOOK_URL; prefer the variable to the flag", secret,
		func(c *Config, v string) error {
			if v == "" {
				c.WebhookKey = nil
				return nil
			}
			key, err := webhooksecret.Parse(v)
			c.WebhookKey = key
			return err
		}},
	{Server, "WEBHOOK_RETRY_SCHEDULE", "webhook-retry-schedule", "5s,5m,30m,2h,5h,10h,10h", "the waits before each webhook retry, comma-separated; after the last the event is given up", plain,
		func(c *Config, v string) error {
			var sched []time.Duration
			for _, f := range strings.Split(v, ",") {
				d, err := time.ParseDuration(strings.TrimSpace(f))
				if err != nil || d <= 0 {
					return errors.New("must be comma-separated positive durations such as 5s,5m,30m")
				}
				sched = append(sched, d)
			}
			if len(sched) > 50 {
				return errors.New("must list at most 50 retries")
			}
			c.WebhookRetrySchedule = sched
			return nil
		}},
	{Server, "REDIS_URL", "redis-url", "", "Redis or Valkey shared by every server for the keys' rate limits, redis://[user:password@]host:6379[/db] (rediss:// for TLS); unset, each server keeps its own buckets (with N servers a key may get up to N times its limit)", redacted,
		func(c *Config, v string) (err error) {
			c.RedisURL, err = redisURL(v)
			return err
		}},
	{Server, "REDIS_TIMEOUT", "redis-timeout", "100ms", "how long one call to Redis (REDIS_URL) may take: past it, and while Redis cannot be reached, the server answers from its own buckets, trying Redis again every second to go back", plain,
		durationSetting(time.Millisecond, func(c *Config) *time.Duration { return &c.RedisTimeout })},
}

// shown is how much of a setting's value help and error messages may show,
// whether the value came from the environment, a flag or the default.
type shown uint8

const (
	plain    shown = iota // all of it
	redacted              // a URL, with its password replaced (url.URL.Redacted)
	secret                // nothing: a secret, or a URL that may carry one in its path or query
)

// show returns what may be shown of the value v, or ok=false for nothing.
func (s shown) show(v string) (_ string, ok bool) {
	switch s {
	case plain:
		return v, true
	case redacted:
		u, err := url.Parse(v)
		if err != nil {
			return "", false // no telling where a password would be
		}
		if _, has := u.User.Password(); has {
			return u.Redacted(), true
		}
		return v, true
	}
	return "", false
}

// httpURL parses an optional absolute http or https URL; empty is nil.
func httpURL(v string) (*url.URL, error) {
	if v == "" {
		return nil, nil
	}
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
		// The URL is not echoed: it may carry credentials.
		return nil, errors.New("must be an absolute http or https URL")
	}
	return u, nil
}

// redisURL parses an optional redis:// or rediss:// URL naming a host and
// at most a database number; empty is nil. Its query, options of the Redis
// client, is checked when the client is made.
func redisURL(v string) (*url.URL, error) {
	if v == "" {
		return nil, nil
	}
	u, err := url.Parse(v)
	if err != nil || u.Scheme != "redis" && u.Scheme != "rediss" || u.Hostname() == "" || u.Opaque != "" {
		// The URL is not echoed: it may carry a password.
		return nil, errors.New("must be a redis:// or rediss:// URL such as redis://redis:6379/0")
	}
	if db := strings.TrimPrefix(u.Path, "/"); db != "" {
		if n, err := strconv.Atoi(db); err != nil || n < 0 {
			return nil, errors.New("must name a database by its number, as in redis://redis:6379/0")
		}
	}
	return u, nil
}

func intSetting(min int, field func(*Config) *int) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil || n < min {
			if min == 0 {
				return errors.New("must be a non-negative integer")
			}
			return fmt.Errorf("must be an integer of at least %d", min)
		}
		*field(c) = n
		return nil
	}
}

func durationSetting(min time.Duration, field func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < min {
			return errors.New("must be a positive duration such as 30s")
		}
		*field(c) = d
		return nil
	}
}

// retentionSetting reads how long some data is kept: at least an hour.
func retentionSetting(field func(*Config) *time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Hour {
			return errors.New("must be a duration of at least 1h such as 2160h")
		}
		*field(c) = d
		return nil
	}
}

func boolSetting(field func(*Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return errors.New("must be true or false")
		}
		*field(c) = b
		return nil
	}
}

// Parse reads the settings of scope into a Config: each from its flag in
// args when given there, else from its environment variable (lookup, such as
// os.LookupEnv), else its default. fs may hold flags of the caller's own,
// which it reads after Parse; each setting's flag is added to it, its
// default in help being only what may be shown of the value (see shown).
// Returns flag.ErrHelp for -h, and an error naming the variable for a bad
// value or for arguments that are not flags (unless scope has Arguments).
func Parse(fs *flag.FlagSet, scope Scope, args []string, lookup func(string) (string, bool)) (Config, error) {
	var c Config
	values := make([]*string, len(settings))
	for i, s := range settings {
		if s.scope&scope == 0 {
			continue
		}
		v, ok := lookup(s.env)
		if !ok {
			v = s.def
		}
		values[i] = &v
		// The flag's default is what help prints: only what may be shown
		// of v, which stays the value unless the flag is given.
		usage := s.usage + " (" + s.env + ")"
		def, ok := s.shown.show(v)
		if !ok && v != "" {
			usage = s.usage + " (" + s.env + "; set, not shown)"
		}
		fs.String(s.flag, def, usage)
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 && scope&Arguments == 0 {
		return c, fmt.Errorf("unexpected arguments: %s", strings.Join(fs.Args(), " "))
	}
	fs.Visit(func(f *flag.Flag) {
		for i, s := range settings {
			if values[i] != nil && s.flag == f.Name {
				*values[i] = f.Value.String()
			}
		}
	})
	for i, s := range settings {
		if values[i] == nil {
			continue
		}
		if err := s.set(&c, *values[i]); err != nil {
			if v, ok := s.shown.show(*values[i]); ok {
				return c, fmt.Errorf("%s=%q: %w", s.env, v, err)
			}
			return c, fmt.Errorf("%s: %w", s.env, err)
		}
	}
	if c.JWTSecret != "" && c.JWKSURL != nil {
		return c, errors.New("set JWT_SECRET or JWT_JWKS_URL, not both")
	}
	if c.OrgRoleClaim != nil && c.OrgClaim == nil {
		return c, errors.New("ORG_ROLE_CLAIM needs ORG_CLAIM: set both, or neither")
	}
	if c.OrgRoleMap != nil && c.OrgRoleClaim == nil {
		return c, errors.New("ORG_ROLE_MAP needs ORG_ROLE_CLAIM: set both, or neither")
	}
	if c.LeakKeysURL != nil && c.LeakKeysFile != "" {
		return c, errors.New("set LEAK_REPORT_KEYS_URL or LEAK_REPORT_KEYS_FILE, not both")
	}
	if (c.WebhookURL == nil) != (c.WebhookKey == nil) && scope&Server != 0 {
		return c, errors.New("set both WEBHOOK_URL and WEBHOOK_SECRET, or neither")
	}
	return c, nil
}
