package rest

import (
	"slices"
	"testing"

	"github.com/apikeyd/apikeyd/internal/apperr"
)

func TestVerifyParams(t *testing.T) {
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
		got, cost, err := verifyParams(nil, q)
		if err != nil || !slices.Equal(got, want) || cost != 1 {
			t.Errorf("%q: %q, %v; want %q", q, got, err, want)
		}
	}
	for _, q := range []string{"scope", "scope=", "scope=a&scope=", "scope=A", "scope=a,,b", "scope=%zz", "scope=a%20b", "scope=a;b"} {
		if _, _, err := verifyParams(nil, q); apperr.CodeOf(err) != apperr.InvalidRequest {
			t.Errorf("%q: %v, want INVALID_REQUEST", q, err)
		}
	}
	for q, want := range map[string]int64{"cost=0": 0, "cost=7": 7, "cost=1000": 1000, "scope=a&cost=010": 10, "co%73t=2": 2} {
		if _, cost, err := verifyParams(nil, q); err != nil || cost != want {
			t.Errorf("%q: cost %d, %v; want %d", q, cost, err, want)
		}
	}
	for _, q := range []string{"cost=", "cost", "cost=-1", "cost=1001", "cost=1.5", "cost=1e3", "cost=+1", "cost=%2B1", "cost= 1", "cost=abc", "cost=99999999999999999999", "cost=1&cost=1"} {
		if _, _, err := verifyParams(nil, q); apperr.CodeOf(err) != apperr.InvalidRequest {
			t.Errorf("%q: %v, want INVALID_REQUEST", q, err)
		}
	}
	// The verification path: a scope or two cost no allocation.
	var buf [8]string
	if n := testing.AllocsPerRun(100, func() { _, _, _ = verifyParams(buf[:0], "scope=reports:read&scope=orders:read") }); n != 0 {
		t.Errorf("%v allocations per call, want 0", n)
	}
}

// BenchmarkVerifyParams is what ?scope= adds to a verification before the
// check itself (a binary search in the key's scopes): compare with
// BenchmarkHandler/*/VerifyAPIKey, the whole request.
func BenchmarkVerifyParams(b *testing.B) {
	var buf [8]string
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := verifyParams(buf[:0], "scope=reports:read"); err != nil {
			b.Fatal(err)
		}
	}
}
