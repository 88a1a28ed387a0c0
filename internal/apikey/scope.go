package apikey

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/apikeyd/apikeyd/internal/apperr"
)

// Scope limits, part of the public contract (docs/scopes.md, OpenAPI).
const (
	MaxScopeLen    = 64 // characters of one scope name
	MaxScopesOfKey = 50 // distinct scopes one key may hold
)

// ValidScope reports whether s is a well-formed scope name: 1 to 64
// characters of a-z 0-9 _ . : -, starting with a letter.
func ValidScope(s string) bool {
	if len(s) == 0 || len(s) > MaxScopeLen || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c == '_', c == '.', c == ':', c == '-':
		default:
			return false
		}
	}
	return true
}

// ParseScopeList reads a comma-separated list of scope names (the SCOPES
// setting), blanks around names allowed, and returns it deduplicated and
// sorted; an empty or blank list is nil.
// Returns INVALID_REQUEST naming the first malformed name (an empty one
// between commas included).
func ParseScopeList(list string) ([]string, error) {
	if strings.TrimSpace(list) == "" {
		return nil, nil
	}
	out, err := AppendScopeList(nil, list)
	if err != nil {
		return nil, err
	}
	return sortedSet(out), nil
}

// AppendScopeList appends to dst the names of a comma-separated list, blanks
// around names allowed, as they come; RequiredScopes makes a set of them.
// It is the parser of one ?scope= value, which allocates nothing when dst
// has room.
// Returns INVALID_REQUEST naming the first malformed name; an empty value,
// or an empty name between commas, is malformed too, so that a proxy whose
// scope variable came out empty is told rather than let through.
func AppendScopeList(dst []string, list string) ([]string, error) {
	for {
		name, rest, more := strings.Cut(list, ",")
		name = strings.TrimSpace(name)
		if !ValidScope(name) {
			return dst, errMalformedScope(name)
		}
		dst = append(dst, name)
		if !more {
			return dst, nil
		}
		list = rest
	}
}

// RequiredScopes turns the names AppendScopeList collected into the sorted
// set CheckScopes takes, in place.
func RequiredScopes(names []string) []string { return sortedSet(names) }

// normalizeScopes checks the scopes a new key asks for against the
// catalogue (nil: any well-formed name) and returns them deduplicated and
// sorted. nil stays nil (unrestricted); an empty list stays empty, not nil.
func normalizeScopes(scopes, catalogue []string) ([]string, error) {
	if scopes == nil {
		return nil, nil
	}
	for _, s := range scopes {
		if !ValidScope(s) {
			return nil, errMalformedScope(s)
		}
		if catalogue != nil && !hasScope(catalogue, s) {
			return nil, apperr.Errorf(apperr.InvalidRequest, "scope %s is not in this server's catalogue (GET /auth/scopes lists it)", quoteScope(s))
		}
	}
	out := sortedSet(slices.Clone(scopes))
	if len(out) > MaxScopesOfKey {
		return nil, apperr.Errorf(apperr.InvalidRequest, "a key holds at most %d scopes, not %d (scope %s is one too many)", MaxScopesOfKey, len(out), quoteScope(out[MaxScopesOfKey]))
	}
	return out, nil
}

// sortedSet sorts s and drops duplicates, in place. It never returns nil
// for a non-nil s.
func sortedSet(s []string) []string {
	slices.Sort(s)
	return slices.Compact(s)
}

// hasScope reports whether the sorted set holds s.
func hasScope(set []string, s string) bool {
	_, ok := slices.BinarySearch(set, s)
	return ok
}

// Unrestricted reports whether the principal passes every scope check: a
// login token (the user themself) or a key created without scopes.
func (p Principal) Unrestricted() bool { return p.Method != MethodAPIKey || p.Scopes == nil }

// CheckScopes decides whether p holds every scope in required (a sorted
// set, as ParseScopeList returns). Unrestricted keys and login tokens hold
// every scope.
// Returns INSUFFICIENT_SCOPE, naming the missing scopes, when an API key
// lacks any.
func CheckScopes(p Principal, required []string) error {
	if p.Unrestricted() {
		return nil
	}
	var missing []string
	for _, r := range required {
		if !hasScope(p.Scopes, r) {
			missing = append(missing, r)
		}
	}
	if missing == nil {
		return nil
	}
	noun := "scope"
	if len(missing) > 1 {
		noun = "scopes"
	}
	return apperr.Errorf(apperr.InsufficientScope, "this API key lacks the %s %s", noun, strings.Join(missing, ", "))
}

// AvailableScopes returns the scope catalogue, nil when any well-formed
// name is accepted.
// Returns MISSING_AUTH/INVALID_OR_EXPIRED_TOKEN/JWT_REQUIRED as Create does.
func (s *Service) AvailableScopes(ctx context.Context) ([]string, error) {
	if _, err := RequireJWT(ctx); err != nil {
		return nil, err
	}
	return s.catalogue, nil
}

func errMalformedScope(s string) error {
	return apperr.Errorf(apperr.InvalidRequest, "scope %s is malformed: a scope is 1 to %d characters of a-z 0-9 _ . : -, starting with a letter", quoteScope(s), MaxScopeLen)
}

// quoteScope quotes a scope for an error message, escaped and cut short so
// that a hostile name can neither forge nor flood the message.
func quoteScope(s string) string { return quoteCut(s, MaxScopeLen+8) }

// quoteCut quotes s, escaped, cut to its first show bytes (on a character
// boundary) followed by an ellipsis when it is longer.
func quoteCut(s string, show int) string {
	if len(s) > show {
		cut := show
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return strconv.Quote(s[:cut]) + "…"
	}
	return strconv.Quote(s)
}
