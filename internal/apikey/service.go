package apikey

import (
	"context"
	"encoding/hex"
	"errors"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/apikeyd/apikeyd/internal/apitime"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/audit"
)

// Config holds the Service's settings.
type Config struct {
	Prefix           string        // key prefix; DefaultPrefix when empty
	MaxKeysPerUser   int           // active personal keys per user; 100 when zero
	MaxKeysPerOrg    int           // active keys per organisation; 1000 when zero
	LastUsedInterval time.Duration // minimum time between last_used_at writes of one key; 60s when zero

	// CacheSize caps the verified keys kept in memory: DefaultCacheSize
	// when zero; a negative size turns the cache off.
	CacheSize int
	// CacheTTL is how long a verification is trusted without asking the
	// database again; DefaultCacheTTL when zero.
	CacheTTL time.Duration
	// NegativeCacheSize caps the remembered unknown keys; a tenth of
	// CacheSize when zero; a negative size remembers none.
	NegativeCacheSize int
	// NegativeCacheTTL is how long an unknown key is remembered;
	// DefaultNegativeCacheTTL when zero.
	NegativeCacheTTL time.Duration

	// Scopes is the catalogue of scopes a key may hold, sorted and
	// deduplicated by NewService; nil accepts any well-formed name.
	Scopes []string

	// RateLimiter keeps the buckets of rate-limited keys; per-server
	// buckets in memory when nil.
	RateLimiter RateLimiter

	// UsageRetention is how long hourly usage counts are kept
	// (USAGE_RETENTION); DefaultUsageRetention when zero.
	UsageRetention time.Duration

	// Orgs decides what a login token may do with an organisation's keys;
	// nil: there are no organisations (every organisation is NOT_FOUND).
	Orgs OrgAccess

	Now      func() time.Time
	Observer Observer // told of keys created and revoked, verifications and flushes; none when nil
}

// Service owns every rule about API keys: who may manage them, what a valid
// name or expiry is, how keys are generated, hashed, limited, revoked and
// verified. Both HTTP edges call it and nothing else.
type Service struct {
	store     Store
	format    Format
	max       int // per user
	maxPerOrg int
	orgs      OrgAccess // nil: no organisations
	now       func() time.Time
	usage     *usage
	counts    *tally
	retention time.Duration // of usage counts
	cache     *cache        // nil when off
	limiter   RateLimiter
	observer  Observer
	catalogue []string // nil: free-form
}

// NewService returns a Service over store. Call Run to write last_used_at.
func NewService(store Store, cfg Config) *Service {
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.MaxKeysPerUser <= 0 {
		cfg.MaxKeysPerUser = 100
	}
	if cfg.MaxKeysPerOrg <= 0 {
		cfg.MaxKeysPerOrg = 1000
	}
	if cfg.LastUsedInterval <= 0 {
		cfg.LastUsedInterval = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Observer == nil {
		cfg.Observer = NopObserver{}
	}
	if cfg.RateLimiter == nil {
		cfg.RateLimiter = NewMemoryLimiter(0)
	}
	if cfg.UsageRetention <= 0 {
		cfg.UsageRetention = DefaultUsageRetention
	}
	s := &Service{
		store:     store,
		format:    NewFormat(cfg.Prefix),
		max:       cfg.MaxKeysPerUser,
		maxPerOrg: cfg.MaxKeysPerOrg,
		orgs:      cfg.Orgs,
		now:       cfg.Now,
		limiter:   cfg.RateLimiter,
		observer:  cfg.Observer,

		retention: cfg.UsageRetention,
	}
	s.usage, s.counts = newUsage(cfg.LastUsedInterval)
	if cfg.Scopes != nil {
		s.catalogue = sortedSet(slices.Clone(cfg.Scopes))
	}
	if cfg.CacheSize == 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.CacheSize > 0 {
		if cfg.CacheTTL <= 0 {
			cfg.CacheTTL = DefaultCacheTTL
		}
		if cfg.NegativeCacheSize == 0 {
			cfg.NegativeCacheSize = cfg.CacheSize / 10
		}
		if cfg.NegativeCacheTTL <= 0 {
			cfg.NegativeCacheTTL = DefaultNegativeCacheTTL
		}
		s.cache = newCache(cfg.CacheSize, cfg.CacheTTL, max(0, cfg.NegativeCacheSize), cfg.NegativeCacheTTL)
	}
	return s
}

// Format returns the key format the service issues and accepts.
func (s *Service) Format() Format { return s.format }

// timestamp returns now in UTC at the millisecond precision the API shows.
func (s *Service) timestamp() time.Time { return s.now().UTC().Truncate(time.Millisecond) }

// Create issues a new key for the JWT principal of ctx and returns it with its
// secret, the only time the secret is ever available. Within an
// organisation's scope (WithOrg) the key is the organisation's, made by the
// principal, who must be one of its admins; with the organisation's
// MaxKeyLifetime, a key asked to expire never expires at the latest it
// allows.
// Returns MISSING_AUTH/INVALID_OR_EXPIRED_TOKEN without a valid principal,
// JWT_REQUIRED for an API-key principal, INVALID_REQUEST for a bad name,
// expiry, scope (naming the scope) or policy field (naming the field),
// then the organisation's NOT_FOUND or INSUFFICIENT_ROLE (OrgAccess),
// INVALID_REQUEST for an expiry beyond its MaxKeyLifetime, and
// KEY_LIMIT_REACHED when the user holds MaxKeysPerUser personal keys, or the
// organisation MaxKeysPerOrg keys.
func (s *Service) Create(ctx context.Context, in CreateInput) (Created, error) {
	p, err := RequireJWT(ctx)
	if err != nil {
		return Created{}, err
	}
	now := s.timestamp()
	name, err := normalizeName(in.Name)
	if err != nil {
		return Created{}, err
	}
	var expires *time.Time
	if in.ExpiresAt != nil {
		t := in.ExpiresAt.UTC().Truncate(time.Millisecond)
		if !t.After(now) {
			return Created{}, apperr.New(apperr.InvalidRequest, "expires_at must be in the future")
		}
		expires = &t
	}
	scopes, err := normalizeScopes(in.Scopes, s.catalogue)
	if err != nil {
		return Created{}, err
	}
	policy, err := newPolicy(in)
	if err != nil {
		return Created{}, err
	}
	owner, grant, err := s.scopeOwner(ctx, p, RoleAdmin)
	if err != nil {
		return Created{}, err
	}
	if expires, err = capExpiry(grant, now, expires); err != nil {
		return Created{}, err
	}
	max := s.max
	var orgID string
	if owner.Type == OwnerOrg {
		max, orgID = s.maxPerOrg, owner.ID
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Created{}, err
	}
	secret := s.format.Generate()
	k := APIKey{
		ID:        id.String(),
		UserID:    p.UserID,
		OrgID:     orgID,
		KeyPrefix: s.format.DisplayPrefix(secret),
		Name:      name,
		CreatedAt: now,
		ExpiresAt: expires,
		Scopes:    scopes,
		Policy:    policy,
		Lineage:   id.String(),
	}
	ev := ownerEvent(ctx, p.UserID, owner, audit.KeyCreated, now)
	ev.KeyID, ev.KeyPrefix = k.ID, k.KeyPrefix
	ev.Details = map[string]any{
		"name": k.Name, "scopes": k.Scopes, "expires_at": apitime.FormatOptional(k.ExpiresAt),
		"enabled": !k.Disabled, "rate_limit": k.RateLimit, "credits": k.Credits, "allowed_ips": k.AllowedIPs, "meta": rawOrNull(k.Meta),
	}
	if err := s.store.CreateKey(ctx, NewKey{APIKey: k, Hash: Hash(secret), Event: ev}, max); err != nil {
		return Created{}, err
	}
	s.observer.KeyCreated()
	return Created{APIKey: k, Secret: secret}, nil
}

// List returns the unrevoked personal keys of the JWT principal of ctx, or
// within an organisation's scope (WithOrg) the organisation's keys, newest
// first, expired ones included.
// Returns MISSING_AUTH/INVALID_OR_EXPIRED_TOKEN/JWT_REQUIRED as Create does,
// and the organisation's NOT_FOUND (OrgAccess; any member may list).
func (s *Service) List(ctx context.Context) ([]APIKey, error) {
	p, err := RequireJWT(ctx)
	if err != nil {
		return nil, err
	}
	owner, _, err := s.scopeOwner(ctx, p, RoleMember)
	if err != nil {
		return nil, err
	}
	return s.list(ctx, owner)
}

// list returns the owner's keys as List does.
func (s *Service) list(ctx context.Context, owner Owner) ([]APIKey, error) {
	keys, err := s.store.ListKeys(ctx, owner)
	if err != nil {
		return nil, err
	}
	now := s.now()
	for i := range keys {
		showBalance(&keys[i], now)
	}
	return dropGone(keys, now), nil
}

// showBalance sets the balance of k, as read from the store, to what it is
// at now: a refill that fell due is applied by the next spend, but shows
// from its time on (Credits.Balance).
func showBalance(k *APIKey, now time.Time) {
	if k.Credits != nil {
		k.Credits.Remaining = k.Credits.Balance(now)
	}
}

// dropGone removes from keys, in place, the rolled keys whose grace ended.
func dropGone(keys []APIKey, now time.Time) []APIKey {
	return slices.DeleteFunc(keys, func(k APIKey) bool { return k.Gone(now) })
}

// Revoke revokes the key id of the JWT principal of ctx: one of its
// personal keys, or a key of an organisation of which it is an admin (see
// ownKey). From the moment it returns, Verify refuses the key: the key is
// evicted from this server's cache before Revoke returns (other servers
// evict it when the store's notification reaches them; see EvictHash).
// Returns NOT_FOUND when id is malformed, unknown, another user's, an
// organisation's the principal is not a member of, or already revoked
// (never saying which), INSUFFICIENT_ROLE for an organisation key of a
// mere member, and the auth errors of Create.
func (s *Service) Revoke(ctx context.Context, id string) (Revoked, error) {
	key, err := s.ownKey(ctx, id, RoleAdmin, nil, errKeyNotFound)
	if err != nil {
		return Revoked{}, err
	}
	at := s.timestamp()
	hash, err := s.store.RevokeKey(ctx, key.owner, key.id, at, key.event(ctx, audit.KeyRevoked, at))
	if err != nil {
		return Revoked{}, notFoundAs(err, errKeyNotFound)
	}
	s.forget(hash)
	s.observer.KeyRevoked()
	return Revoked{ID: key.id, RevokedAt: at}, nil
}

// ForgetHashes drops from this server's verification cache the keys whose
// SHA-256 are hashes (lower-case hex, as stored), which the store has just
// revoked on this server's behalf outside the Service (the keys of a
// deleted organisation), and counts them as revoked. Other servers forget
// them when the store's notifications reach them, as for Revoke.
func (s *Service) ForgetHashes(hashes []string) {
	for _, h := range hashes {
		s.forget(h)
		s.observer.KeyRevoked()
	}
}

// EvictHash drops from the verification cache the key whose SHA-256 is hash
// (lower-case hex, as stored): another server revoked it.
// Returns an error, and drops nothing, when hash is not 64 hex digits.
func (s *Service) EvictHash(hash string) error {
	var d Digest
	if len(hash) != 2*len(d) {
		return errBadHash
	}
	if _, err := hex.Decode(d[:], []byte(hash)); err != nil {
		return errBadHash
	}
	s.cache.evict(d)
	return nil
}

// forget drops from this server's verification cache the key this server
// just changed, whose SHA-256 is hash, as the store returned it; when hash
// cannot be read, every entry, so that no cache serves the key as it was.
func (s *Service) forget(hash string) {
	if err := s.EvictHash(hash); err != nil {
		s.cache.purge()
	}
}

// SuspendCache empties the verification cache and keeps it empty until
// ResumeCache: every verification asks the database meanwhile. Call it while
// revocations made on other servers may not reach this one.
func (s *Service) SuspendCache() { s.cache.suspend() }

// ResumeCache empties the verification cache and starts filling it again:
// call it once revocations made elsewhere reach this server again (whatever
// was revoked before then is no longer cached).
func (s *Service) ResumeCache() { s.cache.resume() }

// Cached reports whether Verify would answer key from the cache now,
// without asking the database.
func (s *Service) Cached(key string) bool {
	if s.cache == nil {
		return false
	}
	_, found, _, _ := s.cache.get(Sum(key), s.now())
	return found == cacheHit
}

// Key returns the principal's own API key when it authenticated with one.
// It is what GraphQL's viewer shows.
func (s *Service) Key(ctx context.Context, p Principal) (*APIKey, error) {
	if p.Method != MethodAPIKey {
		return nil, nil
	}
	owner := UserOwner(p.UserID)
	if p.OrgID != "" {
		owner = OrgOwner(p.OrgID)
	}
	keys, err := s.store.ListKeys(ctx, owner)
	if err != nil {
		return nil, err
	}
	for i := range keys {
		if keys[i].ID == p.KeyID {
			showBalance(&keys[i], s.now())
			return &keys[i], nil
		}
	}
	return nil, nil
}

// Ready reports whether the database answers.
func (s *Service) Ready(ctx context.Context) error { return s.store.Ping(ctx) }

var (
	errKeyNotFound = apperr.New(apperr.NotFound, "API key not found")
	errInvalidKey  = apperr.New(apperr.InvalidToken, "invalid or expired token")
	errBadHash     = errors.New("apikey: a key hash is 64 hex digits")
)

// notFoundAs returns notFound in place of a NOT_FOUND error of the store,
// and err otherwise (nil included).
func notFoundAs(err, notFound error) error {
	if apperr.CodeOf(err) == apperr.NotFound {
		return notFound
	}
	return err
}

// canonicalID returns id as a lower-case hyphenated UUID, or false.
func canonicalID(id string) (string, bool) {
	if len(id) != 36 {
		return "", false
	}
	u, err := uuid.Parse(id)
	if err != nil {
		return "", false
	}
	return u.String(), true
}
