package account

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/apikeyd/apikeyd/internal/apperr"
)

// Limits on what a user may register with.
const (
	// MaxEmailBytes is the longest email address (RFC 5321's path limit
	// less the angle brackets).
	MaxEmailBytes = 254
	// maxLocalPartBytes is the longest part before the @ (RFC 5321).
	maxLocalPartBytes = 64
	// MinPasswordChars is the shortest password, in Unicode code points.
	MinPasswordChars = 8
	// MaxPasswordBytes is the longest password. It bounds the work a login
	// asks for; no real password is longer.
	MaxPasswordBytes = 1024
)

var (
	errBadEmail         = apperr.New(apperr.InvalidRequest, "email must be an email address such as alice@example.com")
	errShortPassword    = apperr.Errorf(apperr.InvalidRequest, "password must be at least %d characters", MinPasswordChars)
	errLongPassword     = apperr.Errorf(apperr.InvalidRequest, "password must be at most %d bytes", MaxPasswordBytes)
	errPasswordEncoding = apperr.New(apperr.InvalidRequest, "password must be valid UTF-8")
)

// NormalizeEmail checks that email looks like an email address and returns
// it trimmed (as stored and shown) and lower-cased (as compared: two
// addresses that differ only in case are one account).
//
// The check is syntactic and deliberately loose, since only a mail could
// prove an address: exactly one @, a local part of 1 to 64 bytes, a domain
// with a dot inside it, at most 254 bytes, and no spaces, control or
// formatting characters (which would let two addresses look alike).
// Returns INVALID_REQUEST otherwise.
func NormalizeEmail(email string) (trimmed, normalized string, err error) {
	e := strings.TrimSpace(email)
	if !utf8.ValidString(e) || e == "" || len(e) > MaxEmailBytes {
		return "", "", errBadEmail
	}
	for _, r := range e {
		if unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return "", "", errBadEmail
		}
	}
	local, domain, ok := strings.Cut(e, "@")
	if !ok || local == "" || len(local) > maxLocalPartBytes || strings.Contains(domain, "@") {
		return "", "", errBadEmail
	}
	if dot := strings.Index(domain, "."); dot <= 0 || strings.HasSuffix(domain, ".") || strings.Contains(domain, "..") {
		return "", "", errBadEmail
	}
	n := strings.ToLower(e)
	if len(n) > MaxEmailBytes { // a few characters grow when lower-cased
		return "", "", errBadEmail
	}
	return e, n, nil
}

// checkPassword enforces the password policy at registration: at least
// MinPasswordChars characters and at most MaxPasswordBytes bytes. Nothing
// else is imposed (NIST SP 800-63B): spaces and any character are allowed,
// and the password is used exactly as sent.
func checkPassword(password string) error {
	switch {
	case !utf8.ValidString(password):
		return errPasswordEncoding
	case len(password) > MaxPasswordBytes:
		return errLongPassword
	case utf8.RuneCountInString(password) < MinPasswordChars:
		return errShortPassword
	}
	return nil
}
