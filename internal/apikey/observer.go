package apikey

// Outcome is why a verification succeeded or failed, finer than the error a
// client gets: every failed key or token is INVALID_OR_EXPIRED_TOKEN to the
// caller, but an operator needs to tell a mistyped key from a revoked one.
// The set is fixed, so it can label a metric.
type Outcome string

// Verification outcomes.
const (
	OutcomeOK          Outcome = "ok"
	OutcomeMissing     Outcome = "missing"      // no credential where one was required
	OutcomeMalformed   Outcome = "malformed"    // a header or value of the wrong shape
	OutcomeBadChecksum Outcome = "bad_checksum" // an API key whose checksum does not match
	OutcomeUnknown     Outcome = "unknown"      // a well-formed API key that was never issued
	OutcomeRevoked     Outcome = "revoked"
	OutcomeExpired     Outcome = "expired"
	OutcomeInvalid     Outcome = "invalid" // a login token that does not verify (signature, claims)
	// OutcomeAddressLimited is a credential refused before verification:
	// too many failed authentications from its address.
	OutcomeAddressLimited Outcome = "address_limited"
	OutcomeError          Outcome = "error" // could not be decided: database or key set unavailable
	// OutcomeInsufficientScope is a valid key that lacks a scope a
	// forward-authentication request required.
	OutcomeInsufficientScope Outcome = "insufficient_scope"
	// The refusals of a valid key by its usage policy, in the order they
	// are checked (docs/usage-policy.md).
	OutcomeDisabled      Outcome = "disabled"       // its owner disabled it
	OutcomeIPNotAllowed  Outcome = "ip_not_allowed" // from an address outside its allowlist
	OutcomeRateLimited   Outcome = "rate_limited"   // its bucket is empty
	OutcomeUsageExceeded Outcome = "usage_exceeded" // its credits are below the cost
)

// Outcomes lists every Outcome.
var Outcomes = []Outcome{
	OutcomeOK, OutcomeMissing, OutcomeMalformed, OutcomeBadChecksum, OutcomeUnknown,
	OutcomeRevoked, OutcomeExpired, OutcomeInvalid, OutcomeAddressLimited, OutcomeError,
	OutcomeInsufficientScope, OutcomeDisabled, OutcomeIPNotAllowed, OutcomeRateLimited, OutcomeUsageExceeded,
}

// MethodNone labels a verification without a usable credential: none at all,
// or a malformed header whose kind cannot be told.
const MethodNone Method = "none"

// Observer is told what the service does, for metrics. Its methods are called
// on the request path, so they must be fast and must not block; they never
// receive user ids, key ids or secrets. Embed NopObserver to implement only
// some of them. Verifications are counted by the HTTP edge, which sees every
// kind of credential (auth.Authenticator), from the outcome Verify returns.
type Observer interface {
	// KeyCreated is called once per key issued.
	KeyCreated()
	// KeyRevoked is called once per key revoked.
	KeyRevoked()
	// UsageFlushed is called after each last_used_at write of a batch of
	// keys, with the error of the write (nil when it succeeded).
	UsageFlushed(keys int, err error)
	// CacheLookup is called by a verification cache on each lookup.
	CacheLookup(hit bool)
}

// NopObserver is an Observer that does nothing.
type NopObserver struct{}

// KeyCreated implements Observer.
func (NopObserver) KeyCreated() {}

// KeyRevoked implements Observer.
func (NopObserver) KeyRevoked() {}

// UsageFlushed implements Observer.
func (NopObserver) UsageFlushed(int, error) {}

// CacheLookup implements Observer.
func (NopObserver) CacheLookup(bool) {}
