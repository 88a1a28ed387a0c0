package apikey

import (
	"context"
	"encoding/json"
	"net/netip"
	"time"

	"github.com/apikeyd/apikeyd/internal/apperr"
)

// VerifyRequest is one authentication by an API key: the key and what the
// request asks of it.
type VerifyRequest struct {
	Key string
	// Required are the scopes the request requires, a sorted set (as
	// RequiredScopes returns); nil requires none.
	Required []string
	// Addr is the client's address (after TRUSTED_PROXIES); the zero Addr
	// when unknown, which no allowlist holds.
	Addr netip.Addr
	// Cost is what a success spends from a credited key, 0…MaxCost; 0
	// checks the balance without spending.
	Cost int64
}

// Verification is what Verify found of a key.
type Verification struct {
	// Principal is the key's, when the key is valid (also when its policy
	// or its scopes refuse the request); the zero Principal otherwise.
	Principal Principal
	// Outcome tells, for metrics, how the verification ended.
	Outcome Outcome
	// Quota is the key's rate limit once the request took (or failed to
	// take) a token; its Limit is 0 when the key has no rate limit or the
	// request was refused before the rate limit was checked.
	Quota Quota
	// Credits is the key's balance after the request, when Credited (the
	// key has a balance and the request reached it).
	Credits  int64
	Credited bool
	// Meta is the key's metadata for the protected service; nil: none.
	Meta json.RawMessage
	// RetryAfter is how long the client should wait before trying again,
	// for a refusal that waiting cures (a rate limit, or credits that a
	// refill brings back); 0 otherwise.
	RetryAfter time.Duration
}

// Verify authenticates an API key and checks the request against it: the
// key's usage policy, the scopes the request requires, its rate limit and
// its credits, in that order (docs/usage-policy.md). The first check that
// fails answers, and nothing later in the list is spent: a refusal before
// the rate limit takes no token, and only a success spends credits and
// records the use (written later, in the background: see
// RunUsageFlusher). Every verification of a known key is counted under its
// outcome (see Counts). A malformed key is refused without a lookup; a known
// one is answered from the cache when it can be, policy included, so only
// a credited key costs a query on every verification.
// Returns, in the order checked: INVALID_OR_EXPIRED_TOKEN for a malformed,
// unknown, revoked or expired key; KEY_DISABLED; IP_NOT_ALLOWED;
// INSUFFICIENT_SCOPE naming the scopes the key lacks; RATE_LIMITED;
// USAGE_EXCEEDED; and SERVER_BUSY when the database cannot be reached.
func (s *Service) Verify(ctx context.Context, req VerifyRequest) (Verification, error) {
	p, now, o, err := s.authenticate(ctx, req.Key)
	if err != nil {
		return Verification{Outcome: o}, err
	}
	v := Verification{Principal: p, Outcome: OutcomeOK}
	if p.Policy != nil {
		v, err = s.enforce(ctx, req, v, now)
	} else if err = CheckScopes(p, req.Required); err != nil {
		v.Outcome = OutcomeInsufficientScope
	}
	var spent int64
	if err == nil && v.Credited {
		spent = req.Cost
	}
	s.record(ctx, p.KeyID, v.Outcome, spent, now)
	return v, err
}

// record ends the verification of the known key id, in outcome o at now:
// it counts it (with the credits a success spent) and marks a success as a
// use of the key (last_used_at), in one lookup of the key. An outcome that
// decided nothing (OutcomeError) is neither.
func (s *Service) record(ctx context.Context, id string, o Outcome, spent int64, now time.Time) {
	if col, ok := countedOutcome(o); ok {
		s.counts.add(ctx, id, col, spent, now, o == OutcomeOK)
	}
}

// authenticate finds the valid key whose secret is key: from the cache
// when it can, else from the database (caching what it finds). It returns
// the key's principal and the time of the verification.
func (s *Service) authenticate(ctx context.Context, key string) (Principal, time.Time, Outcome, error) {
	if o := s.format.Check(key); o != OutcomeOK {
		return Principal{}, time.Time{}, o, errInvalidKey
	}
	d := Sum(key)
	start := s.now()
	var gen uint64
	if s.cache != nil {
		p, found, g, why := s.cache.get(d, start)
		s.observer.CacheLookup(found != cacheMiss)
		switch found {
		case cacheHit:
			return p, start, OutcomeOK, nil
		case cacheUnknown:
			return Principal{}, start, why, errInvalidKey
		}
		gen = g
	}
	k, err := s.store.FindKeyByHash(ctx, d.Hex())
	if err != nil {
		if apperr.CodeOf(err) == apperr.NotFound {
			s.cache.putUnknown(d, gen, start, OutcomeUnknown)
			return Principal{}, start, OutcomeUnknown, errInvalidKey
		}
		return Principal{}, start, OutcomeError, err
	}
	if k.RevokedAt != nil {
		s.cache.putUnknown(d, gen, start, OutcomeRevoked) // a revocation is final
		return Principal{}, start, OutcomeRevoked, errInvalidKey
	}
	now := s.now()
	if k.ExpiresAt != nil && !now.Before(*k.ExpiresAt) {
		s.cache.putUnknown(d, gen, start, OutcomeExpired) // an expiry never moves
		return Principal{}, now, OutcomeExpired, errInvalidKey
	}
	p := principalOf(k)
	// The entry's lifetime counts from before the query: never longer
	// than the TTL past what the database said.
	s.cache.put(d, gen, p, start, k.ExpiresAt)
	return p, now, OutcomeOK, nil
}

// principalOf is the principal of the valid key k, with its policy when it
// has one.
func principalOf(k APIKey) Principal {
	p := Principal{UserID: k.UserID, Method: MethodAPIKey, KeyID: k.ID, Scopes: k.Scopes}
	if k.OrgID != "" {
		p.UserID, p.OrgID, p.CreatedBy = "", k.OrgID, k.UserID
	}
	if !k.Policy.isZero() {
		p.Policy = &KeyPolicy{Policy: k.Policy, Lineage: k.Lineage}
	}
	return p
}

// isZero reports whether p is the policy of an enabled key without limits
// or meta.
func (p *Policy) isZero() bool {
	return !p.Disabled && p.RateLimit == nil && p.Credits == nil && p.AllowedIPs == nil && len(p.Meta) == 0
}

// enforce ends the verification v of a key that has a policy, at now: the
// checks after the key's validity, in their documented order.
func (s *Service) enforce(ctx context.Context, req VerifyRequest, v Verification, now time.Time) (Verification, error) {
	pol, p := v.Principal.Policy, v.Principal
	v.Meta = pol.Meta
	if pol.Disabled {
		v.Outcome = OutcomeDisabled
		return v, errKeyDisabled
	}
	if pol.AllowedIPs != nil && !allowedFrom(pol.AllowedIPs, req.Addr) {
		v.Outcome = OutcomeIPNotAllowed
		return v, errIPNotAllowed
	}
	if err := CheckScopes(p, req.Required); err != nil {
		v.Outcome = OutcomeInsufficientScope
		return v, err
	}
	if l := pol.RateLimit; l != nil {
		v.Quota = s.limiter.Take(ctx, pol.Lineage, *l, now)
		if !v.Quota.Allowed {
			v.Outcome, v.RetryAfter = OutcomeRateLimited, v.Quota.RetryAfter
			return v, errKeyRateLimited
		}
	}
	if c := pol.Credits; c != nil {
		remaining, ok, err := s.store.SpendCredits(ctx, pol.Lineage, req.Cost, now)
		switch {
		case apperr.CodeOf(err) == apperr.NotFound:
			// The balance was removed (the key is unlimited now) after
			// this server cached the key: nothing to spend.
		case err != nil:
			v.Outcome = OutcomeError
			return v, err
		case !ok:
			v.Credits, v.Credited = remaining, true
			v.Outcome = OutcomeUsageExceeded
			if c.Refill != nil {
				v.RetryAfter = c.Refill.Next(now).Sub(now)
			}
			return v, errUsageExceeded
		default:
			v.Credits, v.Credited = remaining, true
		}
	}
	return v, nil
}

// allowedFrom reports whether addr is within one of the prefixes (canonical,
// as ParseAllowedIPs returns them). An IPv4-mapped address is its IPv4
// address; an unknown (zero) address is within none.
func allowedFrom(prefixes []netip.Prefix, addr netip.Addr) bool {
	addr = addr.Unmap().WithZone("")
	for _, p := range prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// ResetSeconds is how long until the bucket is full again, in whole
// seconds, rounded up: what the API shows.
func (q Quota) ResetSeconds() int64 { return int64((q.Reset + time.Second - 1) / time.Second) }

// The refusals of a valid key by its policy. Their messages name no key.
var (
	errKeyDisabled    = apperr.New(apperr.KeyDisabled, "this API key is disabled")
	errIPNotAllowed   = apperr.New(apperr.IPNotAllowed, "this API key may not be used from this address")
	errKeyRateLimited = apperr.New(apperr.RateLimited, "this API key's rate limit is reached; retry later")
	errUsageExceeded  = apperr.New(apperr.UsageExceeded, "this API key's credits are below the cost of the request")
)
