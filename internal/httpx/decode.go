package httpx

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"unicode/utf8"

	"github.com/apikeyd/apikeyd/internal/apperr"
)

// MaxBodyBytes is the cap of a request body, unless a route says otherwise.
const MaxBodyBytes = 64 << 10

var (
	errMediaType    = apperr.New(apperr.UnsupportedMediaType, "request body must be application/json")
	errNotAnObject  = apperr.New(apperr.InvalidRequest, "request body must be one JSON object")
	errMalformedDoc = apperr.New(apperr.InvalidRequest, "request body is not valid JSON")
)

// ReadBody reads a JSON request body of at most limit bytes, however it is
// framed (chunked bodies without a length are capped too). An empty body is
// returned as nil. Returns UNSUPPORTED_MEDIA_TYPE for a non-empty body that
// is not application/json and PAYLOAD_TOO_LARGE past the cap.
func ReadBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	b, err := ReadCapped(w, r, limit)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, nil
	}
	if !IsJSON(r.Header.Get("Content-Type")) {
		return nil, errMediaType
	}
	return b, nil
}

// ReadCapped reads a request body of at most limit bytes, as it is,
// however it is framed (chunked bodies without a length are capped too).
// Returns PAYLOAD_TOO_LARGE past the cap.
func ReadCapped(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	b, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	if err != nil {
		if errors.As(err, new(*http.MaxBytesError)) {
			return nil, tooLarge(limit)
		}
		return nil, apperr.Wrap(apperr.InvalidRequest, "could not read the request body", err)
	}
	return b, nil
}

func tooLarge(limit int64) error {
	return apperr.Errorf(apperr.PayloadTooLarge, "request body is larger than %d bytes", limit)
}

// IsJSON reports whether a Content-Type is application/json, parameters
// such as charset=utf-8 allowed.
func IsJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

// DecodeObject decodes b, which must be exactly one JSON object with nothing
// after it, calling field for each member. Duplicate member names are
// refused, since parsers disagree on which one wins. field decodes the value
// of the members it knows through dec; others are skipped.
func DecodeObject(b []byte, field func(name string, dec *json.Decoder) error) error {
	// encoding/json would silently turn invalid UTF-8 into U+FFFD.
	if !utf8.Valid(b) {
		return apperr.New(apperr.InvalidRequest, "request body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil {
		return errMalformedDoc
	} else if d, ok := tok.(json.Delim); !ok || d != '{' {
		return errNotAnObject
	}
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return errMalformedDoc
		}
		name, ok := tok.(string)
		if !ok {
			return errMalformedDoc
		}
		if seen[name] {
			return apperr.Errorf(apperr.InvalidRequest, "duplicate field %q", name)
		}
		seen[name] = true
		if err := field(name, dec); err != nil {
			return err
		}
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return errMalformedDoc
	}
	if _, err := dec.Token(); err != io.EOF {
		return apperr.New(apperr.InvalidRequest, "unexpected data after the JSON object")
	}
	return nil
}

// SkipValue consumes one JSON value of any type.
func SkipValue(dec *json.Decoder) error {
	_, err := DecodeRaw(dec)
	return err
}

// DecodeRaw reads one JSON value of any type, undecoded.
func DecodeRaw(dec *json.Decoder) (json.RawMessage, error) {
	var raw json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return nil, errMalformedDoc
	}
	return raw, nil
}

// DecodeNullableString decodes a string or null into *string.
func DecodeNullableString(name string, dec *json.Decoder) (*string, error) {
	raw, err := DecodeRaw(dec)
	if err != nil {
		return nil, err
	}
	if string(raw) == "null" {
		return nil, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, apperr.Errorf(apperr.InvalidRequest, "%s must be a string", name)
	}
	return &s, nil
}
