package account

import (
	"strings"
	"testing"

	"github.com/apikeyd/apikeyd/internal/apperr"
)

func TestNormalizeEmail(t *testing.T) {
	valid := []struct{ in, trimmed, normalized string }{
		{"alice@example.com", "alice@example.com", "alice@example.com"},
		{"  Alice@Example.COM \n", "Alice@Example.COM", "alice@example.com"},
		{"first.last+tag@mail.example.co.uk", "first.last+tag@mail.example.co.uk", "first.last+tag@mail.example.co.uk"},
		{"ÉLODIE@exemple.fr", "ÉLODIE@exemple.fr", "élodie@exemple.fr"},
		{"a@b.c", "a@b.c", "a@b.c"},
		{strings.Repeat("x", 64) + "@example.com", strings.Repeat("x", 64) + "@example.com", strings.Repeat("x", 64) + "@example.com"},
	}
	for _, c := range valid {
		trimmed, normalized, err := NormalizeEmail(c.in)
		if err != nil || trimmed != c.trimmed || normalized != c.normalized {
			t.Errorf("NormalizeEmail(%q) = %q, %q, %v; want %q, %q", c.in, trimmed, normalized, err, c.trimmed, c.normalized)
		}
	}

	long := strings.Repeat("x", 64) + "@" + strings.Repeat("d", 250-64) + ".com" // 255 bytes
	invalid := map[string]string{
		"Empty":           "",
		"Blank":           "   ",
		"NoAt":            "alice.example.com",
		"TwoAts":          "alice@bob@example.com",
		"NoLocalPart":     "@example.com",
		"NoDomain":        "alice@",
		"NoDotInDomain":   "alice@localhost",
		"DomainDotFirst":  "alice@.example.com",
		"DomainDotLast":   "alice@example.com.",
		"DomainDoubleDot": "alice@example..com",
		"InnerSpace":      "alice smith@example.com",
		"Tab":             "alice\t@example.com",
		"NUL":             "alice\x00@example.com",
		"Newline":         "alice@exa\nmple.com",
		"BidiOverride":    "alice\u202e@example.com",
		"ZeroWidthSpace":  "al\u200bice@example.com",
		"InvalidUTF8":     "al\xffice@example.com",
		"LocalPartOver64": strings.Repeat("x", 65) + "@example.com",
		"Over254Bytes":    long,
	}
	for name, in := range invalid {
		t.Run(name, func(t *testing.T) {
			if _, _, err := NormalizeEmail(in); apperr.CodeOf(err) != apperr.InvalidRequest {
				t.Errorf("NormalizeEmail(%q): err %v, want INVALID_REQUEST", in, err)
			}
		})
	}
}

func TestCheckPassword(t *testing.T) {
	for _, ok := range []string{
		"12345678",
		"correct horse battery staple",
		"пароль12", // 8 characters, 14 bytes
		"        ", // spaces count, and are not trimmed
		strings.Repeat("x", MaxPasswordBytes),
	} {
		if err := checkPassword(ok); err != nil {
			t.Errorf("checkPassword(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{
		"",
		"1234567",
		"пароль1", // 7 characters, 13 bytes
		strings.Repeat("x", MaxPasswordBytes+1),
		"abcdefg\xff",
	} {
		if err := checkPassword(bad); apperr.CodeOf(err) != apperr.InvalidRequest {
			t.Errorf("checkPassword(%.20q): err %v, want INVALID_REQUEST", bad, err)
		}
	}
}
