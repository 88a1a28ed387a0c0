package store

import (
	"encoding/json"
	"reflect"
	"testing"
)

// TestDecodeScopes: the hand-written reader of the scopes column agrees with
// encoding/json on what encodeStrings writes and on every other form a
// column may hold, and allocates once for the plain form.
func TestDecodeScopes(t *testing.T) {
	for _, scopes := range [][]string{nil, {}, {"a"}, {"orders:read", "reports:read"}, {"a.b_c-d:e", "z9"}} {
		got, err := decodeScopes(encodeStrings(scopes))
		if err != nil || !reflect.DeepEqual(got, scopes) {
			t.Errorf("%#v: read back %#v, %v", scopes, got, err)
		}
	}
	for _, col := range []string{`[]`, `["a"]`, `[ "a" ]`, `["a", "b"]`, `["a\u0062"]`, `["a\"b"]`, "[\"a\",\n\"b\"]"} {
		want := []string{}
		if err := json.Unmarshal([]byte(col), &want); err != nil {
			t.Fatal(err)
		}
		if got, err := decodeScopes(&col); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %#v, %v; want %#v", col, got, err, want)
		}
	}
	for _, col := range []string{``, `[`, `["a"`, `[1]`, `{"a":1}`, `["a",]`} {
		if got, err := decodeScopes(&col); err == nil {
			t.Errorf("%q accepted as %#v", col, got)
		}
	}
	col := `["orders:read","reports:read"]`
	if n := testing.AllocsPerRun(100, func() { _, _ = decodeScopes(&col) }); n > 1 {
		t.Errorf("%v allocations to read two scopes, want 1", n)
	}
}
