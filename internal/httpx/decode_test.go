package httpx_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/httpx"
)

// onlyReader is a reader of unknown length, as a chunked body is.
type onlyReader struct{ io.Reader }

func TestReadBody(t *testing.T) {
	const limit = 16
	for _, tc := range []struct {
		name        string
		body        string
		chunked     bool // no Content-Length
		contentType string
		want        string // the body read, when no error
		code        apperr.Code
	}{
		{name: "json", body: `{"a":1}`, contentType: "application/json", want: `{"a":1}`},
		{name: "charset allowed", body: `{}`, contentType: "application/json; charset=utf-8", want: `{}`},
		{name: "empty is nil", body: "", contentType: "text/plain"},
		{name: "blank is nil", body: " \n\t", contentType: ""},
		{name: "at the cap", body: `{"a":"123456789"}`[:limit], contentType: "application/json", want: `{"a":"123456789"}`[:limit]},
		{name: "past the cap", body: strings.Repeat(" ", limit+1), contentType: "application/json", code: apperr.PayloadTooLarge},
		{name: "past the cap, chunked", body: strings.Repeat(" ", limit+1), chunked: true, contentType: "application/json", code: apperr.PayloadTooLarge},
		{name: "text/plain", body: `{}`, contentType: "text/plain", code: apperr.UnsupportedMediaType},
		{name: "no content type", body: `{}`, code: apperr.UnsupportedMediaType},
		{name: "json suffix is not json", body: `{}`, contentType: "application/problem+json", code: apperr.UnsupportedMediaType},
		{name: "malformed content type", body: `{}`, contentType: "application/json; =", code: apperr.UnsupportedMediaType},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader = strings.NewReader(tc.body)
			if tc.chunked {
				body = onlyReader{body}
			}
			r := httptest.NewRequest(http.MethodPost, "/", body)
			if tc.contentType != "" {
				r.Header.Set("Content-Type", tc.contentType)
			}
			b, err := httpx.ReadBody(httptest.NewRecorder(), r, limit)
			if code := apperr.CodeOf(err); err != nil && code != tc.code || err == nil && tc.code != "" {
				t.Fatalf("err = %v (%s), want code %q", err, code, tc.code)
			}
			if err == nil && string(b) != tc.want {
				t.Errorf("body = %q, want %q", b, tc.want)
			}
			if tc.want == "" && b != nil {
				t.Errorf("body = %q, want nil", b)
			}
		})
	}
}

func TestReadCappedKeepsAnyContentType(t *testing.T) {
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader("token=abc"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	b, err := httpx.ReadCapped(httptest.NewRecorder(), r, 64)
	if err != nil || string(b) != "token=abc" {
		t.Fatalf("ReadCapped = %q, %v", b, err)
	}
}

func TestDecodeObject(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		want map[string]string // the members seen, decoded as raw JSON
		code apperr.Code       // empty: no error
		msg  string            // part of the message, when an error
	}{
		{name: "object", body: `{"a":"x","b":[1,2],"c":null}`, want: map[string]string{"a": `"x"`, "b": `[1,2]`, "c": `null`}},
		{name: "empty object", body: `{}`, want: map[string]string{}},
		{name: "whitespace around", body: " \n{\"a\":1}\n ", want: map[string]string{"a": `1`}},
		{name: "array", body: `[{"a":1}]`, code: apperr.InvalidRequest, msg: "one JSON object"},
		{name: "string", body: `"a"`, code: apperr.InvalidRequest, msg: "one JSON object"},
		{name: "null", body: `null`, code: apperr.InvalidRequest, msg: "one JSON object"},
		{name: "two objects", body: `{}{}`, code: apperr.InvalidRequest, msg: "after the JSON object"},
		{name: "trailing garbage", body: `{} x`, code: apperr.InvalidRequest},
		{name: "duplicate member", body: `{"a":1,"a":2}`, code: apperr.InvalidRequest, msg: `duplicate field "a"`},
		{name: "unterminated", body: `{"a":1`, code: apperr.InvalidRequest, msg: "not valid JSON"},
		{name: "not json", body: `{a:1}`, code: apperr.InvalidRequest, msg: "not valid JSON"},
		{name: "empty", body: ``, code: apperr.InvalidRequest, msg: "not valid JSON"},
		{name: "invalid UTF-8", body: "{\"a\":\"\xff\"}", code: apperr.InvalidRequest, msg: "UTF-8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]string{}
			err := httpx.DecodeObject([]byte(tc.body), func(name string, dec *json.Decoder) error {
				raw, err := httpx.DecodeRaw(dec)
				got[name] = string(raw)
				return err
			})
			if tc.code != "" {
				if apperr.CodeOf(err) != tc.code || !strings.Contains(apperr.MessageOf(err), tc.msg) {
					t.Fatalf("err = %v, want %s containing %q", err, tc.code, tc.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("members = %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("member %q = %s, want %s", k, got[k], v)
				}
			}
		})
	}
}

func TestDecodeObjectSkipsAndStops(t *testing.T) {
	var seen []string
	err := httpx.DecodeObject([]byte(`{"skip":{"x":[1,{"y":2}]},"keep":"v"}`), func(name string, dec *json.Decoder) error {
		seen = append(seen, name)
		return httpx.SkipValue(dec)
	})
	if err != nil || strings.Join(seen, ",") != "skip,keep" {
		t.Fatalf("seen %v, err %v", seen, err)
	}

	stop := apperr.New(apperr.InvalidRequest, "name must be a string")
	err = httpx.DecodeObject([]byte(`{"name":1,"other":2}`), func(string, *json.Decoder) error { return stop })
	if err != stop {
		t.Fatalf("err = %v, want the field's own error", err)
	}
}

func TestDecodeNullableString(t *testing.T) {
	for _, tc := range []struct {
		body string
		want *string
		code apperr.Code
	}{
		{body: `{"name":"x"}`, want: ptr("x")},
		{body: `{"name":""}`, want: ptr("")},
		{body: `{"name":null}`},
		{body: `{"name":1}`, code: apperr.InvalidRequest},
		{body: `{"name":["x"]}`, code: apperr.InvalidRequest},
	} {
		t.Run(tc.body, func(t *testing.T) {
			var got *string
			err := httpx.DecodeObject([]byte(tc.body), func(name string, dec *json.Decoder) (err error) {
				got, err = httpx.DecodeNullableString(name, dec)
				return err
			})
			if apperr.CodeOf(err) != tc.code && (err != nil || tc.code != "") {
				t.Fatalf("err = %v, want %q", err, tc.code)
			}
			if tc.code != "" {
				if !strings.Contains(apperr.MessageOf(err), "name must be a string") {
					t.Errorf("message %q does not name the field", apperr.MessageOf(err))
				}
				return
			}
			if (got == nil) != (tc.want == nil) || got != nil && *got != *tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestIsJSON(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/json":                true,
		"Application/JSON":                true,
		"application/json;charset=utf-8":  true,
		"application/json; charset=UTF-8": true,
		"":                                false,
		"text/json":                       false,
		"application/jsonx":               false,
		"application/json; charset":       false,
	} {
		if got := httpx.IsJSON(ct); got != want {
			t.Errorf("IsJSON(%q) = %v, want %v", ct, got, want)
		}
	}
}

func ptr(s string) *string { return &s }
