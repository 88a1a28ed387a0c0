package apikey_test

import (
	"strings"
	"testing"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apperr"
)

func TestNormalizeName(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"  Production  ":                     "Production",
		"":                                   "",
		" \t ":                               "",
		"Équipe données 🚀":                   "Équipe données 🚀",
		strings.Repeat("é", 100):             strings.Repeat("é", 100),
		" " + strings.Repeat("n", 100) + " ": strings.Repeat("n", 100),
	} {
		if got, err := apikey.NormalizeName(in); got != want || err != nil {
			t.Errorf("NormalizeName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		strings.Repeat("é", 101),
		"a\x00b", "line\nbreak", "tab\tinside", "bell\x07",
		"evil\u202egnp.exe", "iso\u2066late", "mark\u200f",
		"bad \xff utf-8",
	} {
		got, err := apikey.NormalizeName(in)
		if apperr.CodeOf(err) != apperr.InvalidRequest || got != "" {
			t.Errorf("NormalizeName(%q) = %q, %v; want INVALID_REQUEST", in, got, err)
			continue
		}
		if msg := apperr.MessageOf(err); !strings.HasPrefix(msg, "name ") || strings.Contains(msg, in) {
			t.Errorf("NormalizeName(%q): message %q does not name the field, or repeats the input", in, msg)
		}
	}
}
