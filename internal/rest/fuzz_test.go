package rest

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/httpx"
)

// createStore is an apikey.Store that keeps the last key created.
type createStore struct {
	apikey.Store
	created *apikey.NewKey
}

func (s *createStore) CreateKey(_ context.Context, k apikey.NewKey, _ int) error {
	s.created = &k
	return nil
}

// FuzzDecodeObject: the create body decoder, on any body, never panics; it
// either refuses with INVALID_REQUEST (PAYLOAD_TOO_LARGE past the cap), or
// returns what encoding/json reads from the same body; and a name the
// service then accepts is trimmed, 1 to 100 code points of valid UTF-8
// without control or bidirectional formatting characters.
// Seeds: f.Add below and testdata/fuzz/FuzzDecodeObject.
func FuzzDecodeObject(f *testing.F) {
	for _, s := range []string{
		``, `{}`, ` {"name":"Production server"} `, `{"name":null}`, `{"name":42}`, `{"name":"a","name":"b"}`,
		`{"name":"a","n\u0061me":"b"}`, `{"expires_at":"2099-01-01T00:00:00Z"}`, `{"name":"x"} {}`, `[{"name":"x"}]`,
		`{"name":"invoice\u202egpj.exe"}`, "{\"name\":\"caf\xe9\"}", `{"name":"  padded\t"}`, `{"name":"\u0000"}`,
		`{"id":"x","key":"atiru_x","user_id":"bob","name":"n"}`, `{"meta":{"name":[1,{"name":2}]},"name":"ok"}`,
		`{"scopes":null}`, `{"scopes":[]}`, `{"scopes":["b","a","b"]}`, `{"scopes":["A"]}`, `{"scopes":[1]}`, `{"scopes":"a"}`,
		`{"name":"` + strings.Repeat("é", 101) + `"}`, `{"name":"\ud800"}`, `{"name":"a"`, `{"name":"a",}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req := httptest.NewRequest("POST", "/auth/api-keys", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		in, err := decodeCreate(httptest.NewRecorder(), req)
		if err != nil {
			code := apperr.CodeOf(err)
			if code != apperr.InvalidRequest && !(code == apperr.PayloadTooLarge && len(body) > httpx.MaxBodyBytes) {
				t.Fatalf("refused with %v", err)
			}
			return
		}
		if len(body) > httpx.MaxBodyBytes {
			t.Fatalf("accepted a %d-byte body", len(body))
		}
		if len(bytes.TrimSpace(body)) == 0 {
			if in.Name != nil || in.ExpiresAt != nil || in.Scopes != nil {
				t.Fatalf("an empty body decoded as %+v", in)
			}
			return
		}
		// What is accepted is one JSON object, read as encoding/json reads it.
		if !utf8.Valid(body) || !json.Valid(body) {
			t.Fatalf("accepted invalid UTF-8 or JSON %q", body)
		}
		if name, ok := duplicateMember(body); ok {
			t.Fatalf("accepted %q with %q twice", body, name)
		}
		var ref struct {
			Name      *string    `json:"name"`
			ExpiresAt *time.Time `json:"expires_at"`
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(body, &obj); err != nil {
			t.Fatalf("accepted %q, which is not an object: %v", body, err)
		}
		name, hasName := obj["name"]
		switch {
		case !hasName || string(name) == "null":
			if in.Name != nil {
				t.Fatalf("name %q from %q", *in.Name, body)
			}
		default:
			if err := json.Unmarshal(name, &ref.Name); err != nil || in.Name == nil || *in.Name != *ref.Name {
				t.Fatalf("name %v, encoding/json reads %s", in.Name, name)
			}
		}
		if exp, ok := obj["expires_at"]; ok && string(exp) != "null" && in.ExpiresAt == nil {
			t.Fatalf("expires_at %s dropped", exp)
		}

		// Through the service: accepted names obey the name rules.
		st := &createStore{}
		svc := apikey.NewService(st, apikey.Config{})
		ctx := apikey.WithPrincipal(context.Background(), apikey.Principal{UserID: "fuzz", Method: apikey.MethodJWT})
		if _, err := svc.Create(ctx, in); err != nil {
			if apperr.CodeOf(err) != apperr.InvalidRequest {
				t.Fatalf("Create refused with %v", err)
			}
			return
		}
		if sc, ok := obj["scopes"]; (!ok || string(sc) == "null") != (st.created.Scopes == nil) {
			t.Fatalf("scopes %#v from %q", st.created.Scopes, body)
		}
		if sc := st.created.Scopes; len(sc) > apikey.MaxScopesOfKey || !slices.IsSorted(sc) || len(slices.Compact(slices.Clone(sc))) != len(sc) ||
			slices.ContainsFunc(sc, func(s string) bool { return !apikey.ValidScope(s) }) {
			t.Fatalf("accepted scopes %q", sc)
		}
		if n := st.created.Name; n != nil {
			if !utf8.ValidString(*n) || *n == "" || strings.TrimSpace(*n) != *n || utf8.RuneCountInString(*n) > apikey.MaxNameLen ||
				strings.ContainsFunc(*n, func(r rune) bool { return unicode.IsControl(r) || unicode.Is(unicode.Bidi_Control, r) }) {
				t.Fatalf("accepted name %q", *n)
			}
		}
	})
}

// duplicateMember reports a member name that occurs twice at the top level
// of the JSON object b.
func duplicateMember(b []byte) (string, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	if _, err := dec.Token(); err != nil {
		return "", false
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return "", false
		}
		name, _ := tok.(string)
		if seen[name] {
			return name, true
		}
		seen[name] = true
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return "", false
		}
	}
	return "", false
}

// TestDecodeObjectNeverReadsPastTheCap: however the body is framed, no more
// than httpx.MaxBodyBytes is read.
func TestDecodeObjectNeverReadsPastTheCap(t *testing.T) {
	body := strings.NewReader(`{"name":"` + strings.Repeat("a", 10<<20) + `"}`)
	req := httptest.NewRequest("POST", "/auth/api-keys", body)
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/json")
	_, err := decodeCreate(httptest.NewRecorder(), req)
	if apperr.CodeOf(err) != apperr.PayloadTooLarge {
		t.Fatalf("err %v, want PAYLOAD_TOO_LARGE", err)
	}
	if read := 10<<20 + 11 - body.Len(); read > httpx.MaxBodyBytes+4096 {
		t.Fatalf("read %d bytes of a body over the cap", read)
	}
}
