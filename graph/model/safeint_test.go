package model

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/apikeyd/apikeyd/internal/apperr"
)

func TestSafeInt(t *testing.T) {
	for _, n := range []int64{0, 1, -1, 1_000_000_000_000, maxSafeInt, -maxSafeInt} {
		var b bytes.Buffer
		MarshalSafeInt(n).MarshalGQL(&b)
		var back json.Number
		if err := json.Unmarshal(b.Bytes(), &back); err != nil {
			t.Fatalf("MarshalSafeInt(%d) = %s, not a JSON number: %v", n, b.Bytes(), err)
		}
		got, err := UnmarshalSafeInt(back)
		if err != nil || got != n {
			t.Errorf("UnmarshalSafeInt(%s) = %d, %v; want %d", back, got, err, n)
		}
	}
	for _, v := range []any{int64(7), 7} {
		if got, err := UnmarshalSafeInt(v); got != 7 || err != nil {
			t.Errorf("UnmarshalSafeInt(%T 7) = %d, %v", v, got, err)
		}
	}
	for _, v := range []any{
		json.Number("9007199254740992"), json.Number("-9007199254740992"), int64(maxSafeInt + 1),
		json.Number("1.5"), json.Number("1e3"), json.Number("99999999999999999999"),
		"12", 1.0, true, nil, map[string]any{},
	} {
		if got, err := UnmarshalSafeInt(v); apperr.CodeOf(err) != apperr.InvalidRequest {
			t.Errorf("UnmarshalSafeInt(%T %v) = %d, %v; want INVALID_REQUEST", v, v, got, err)
		}
	}
}
