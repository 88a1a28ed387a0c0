package rest

import (
	"slices"
	"testing"

	"github.com/apikeyd/apikeyd/internal/apperr"
)

func TestScopeParams(t *testing.T) {
	for q, want := range map[string][]string{
		"":                              nil,
		"other=1":                       nil,
		"scope=b":                       {"b"},
		"scope=b,a&scope=a":             {"a", "b"},
		"scope=b&x=%zz&scope=a":         {"a", "b"}, // others are not ours to judge
		"scope=b%2Ca":                   {"a", "b"},
		"sc%6Fpe=orders%3Aread":         {"orders:read"},
		"scope=a,+b":                    {"a", "b"},
		"scopes=Bad&scope=reports:read": {"reports:read"},
	} {
		got, err := scopeParams(nil, q)
		if err != nil || !slices.Equal(got, want) {
			t.Errorf("%q: %q, %v; want %q", q, got, err, want)
		}
	}
	for _, q := range []string{"scope", "scope=", "scope=a&scope=", "scope=A", "scope=a,,b", "scope=%zz", "scope=a%20b", "scope=a;b"} {
		if _, err := scopeParams(nil, q); apperr.CodeOf(err) != apperr.InvalidRequest {
			t.Errorf("%q: %v, want INVALID_REQUEST", q, err)
		}
	}
	// The verification path: a scope or two cost no allocation.
	var buf [8]string
	if n := testing.AllocsPerRun(100, func() { _, _ = scopeParams(buf[:0], "scope=reports:read&scope=orders:read") }); n != 0 {
		t.Errorf("%v allocations per call, want 0", n)
	}
}

// BenchmarkScopeParams is what ?scope= adds to a verification before the
// check itself (a binary search in the key's scopes): compare with
// BenchmarkHandler/*/VerifyAPIKey, the whole request.
func BenchmarkScopeParams(b *testing.B) {
	var buf [8]string
	b.ReportAllocs()
	for b.Loop() {
		if _, err := scopeParams(buf[:0], "scope=reports:read"); err != nil {
			b.Fatal(err)
		}
	}
}
