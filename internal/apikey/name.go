package apikey

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/apikeyd/apikeyd/internal/apperr"
)

// MaxNameLen is the longest name (NormalizeName), in Unicode code points.
const MaxNameLen = 100

// normalizeName trims a key's name and checks it (NormalizeName); an empty
// name is no name.
func normalizeName(name *string) (*string, error) {
	if name == nil {
		return nil, nil
	}
	n, err := NormalizeName(*name)
	if err != nil || n == "" {
		return nil, err
	}
	return &n, nil
}

// NormalizeName returns name trimmed of surrounding white space, or an
// INVALID_REQUEST about the field "name" when it is not a name a person can
// read as it is: valid UTF-8 of at most MaxNameLen code points, without
// control or bidirectional formatting characters. It is the rule of every
// name the API shows (a key's, an organisation's); an empty result is no
// name, which the caller accepts or refuses.
func NormalizeName(name string) (string, error) {
	if !utf8.ValidString(name) {
		return "", apperr.New(apperr.InvalidRequest, "name must be valid UTF-8")
	}
	n := strings.TrimSpace(name)
	if utf8.RuneCountInString(n) > MaxNameLen {
		return "", apperr.Errorf(apperr.InvalidRequest, "name must be at most %d characters", MaxNameLen)
	}
	for _, r := range n {
		if unicode.IsControl(r) || isBidiControl(r) {
			return "", apperr.New(apperr.InvalidRequest, "name must not contain control or bidirectional formatting characters")
		}
	}
	return n, nil
}

// isBidiControl reports whether r reorders text: such characters let a name
// display differently from what it is (Trojan Source).
func isBidiControl(r rune) bool {
	switch {
	case r == '\u061c', r == '\u200e', r == '\u200f':
		return true
	case r >= '\u202a' && r <= '\u202e':
		return true
	case r >= '\u2066' && r <= '\u2069':
		return true
	}
	return false
}
