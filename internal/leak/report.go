package leak

import (
	"bytes"
	"encoding/json"
	"io"
	"unicode/utf8"

	"github.com/apikeyd/apikeyd/internal/apperr"
)

// MaxTokens is the most tokens one report may carry.
const MaxTokens = 1000

// MaxReportBytes caps a report's body.
const MaxReportBytes = 1 << 20

// Token is one token a report says was found in public.
type Token struct {
	Token  string // the string found: a key of this server or not
	Type   string // the reporter's name for its kind (token_type in the feedback)
	URL    string // where it was found; may be empty
	Source string // what kind of place (commit, issue, …; gitlab); may be empty
}

// Feedback is the answer about one token in the secret scanning partner
// program's format.
type Feedback struct {
	TokenHash string `json:"token_hash"` // hex SHA-256 of the token
	TokenType string `json:"token_type"`
	Label     string `json:"label"` // LabelTruePositive or LabelFalsePositive
}

// Feedback labels.
const (
	LabelTruePositive  = "true_positive"
	LabelFalsePositive = "false_positive"
)

// ParseReport parses the body of a GitHub secret scanning report: a JSON
// array of at most MaxTokens objects {"token", "type", "url", "source"},
// all strings, "token" required; other members are ignored.
// Returns INVALID_REQUEST for anything else.
func ParseReport(b []byte) ([]Token, error) {
	return parse(b, "url", "source")
}

// ParseGitLabRequest parses the body of a GitLab token revocation request:
// a JSON array of at most MaxTokens objects {"type", "token", "location"},
// all strings, "token" required. Source is "gitlab" and URL the location.
// Returns INVALID_REQUEST for anything else.
func ParseGitLabRequest(b []byte) ([]Token, error) {
	ts, err := parse(b, "location", "")
	for i := range ts {
		ts[i].Source = "gitlab"
	}
	return ts, err
}

var (
	errNotArray  = apperr.New(apperr.InvalidRequest, "the body must be a JSON array of token objects")
	errMalformed = apperr.New(apperr.InvalidRequest, "the body is not valid JSON")
	errTooMany   = apperr.Errorf(apperr.InvalidRequest, "a report may carry at most %d tokens", MaxTokens)
	errNoToken   = apperr.New(apperr.InvalidRequest, `each entry must be an object with a string "token"`)
	errNotString = apperr.New(apperr.InvalidRequest, `"token", "type" and the location fields must be strings`)
	errUTF8      = apperr.New(apperr.InvalidRequest, "the body is not valid UTF-8")
)

// parse parses a JSON array of token objects; urlField and sourceField name
// the members read into URL and Source ("" for none).
func parse(b []byte, urlField, sourceField string) ([]Token, error) {
	// encoding/json would silently turn invalid UTF-8 into U+FFFD, and the
	// token hashes in the answer would then be of other strings.
	if !utf8.Valid(b) {
		return nil, errUTF8
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if tok, err := dec.Token(); err != nil {
		return nil, errMalformed
	} else if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, errNotArray
	}
	var out []Token
	for dec.More() {
		if len(out) == MaxTokens {
			return nil, errTooMany
		}
		var raw map[string]json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			if _, syntax := err.(*json.SyntaxError); syntax {
				return nil, errMalformed
			}
			return nil, errNoToken
		}
		if raw == nil {
			return nil, errNoToken // null
		}
		var t Token
		fields := []struct {
			name string
			to   *string
		}{{"token", &t.Token}, {"type", &t.Type}, {urlField, &t.URL}, {sourceField, &t.Source}}
		for _, f := range fields {
			v, ok := raw[f.name]
			if f.name == "" || !ok || string(v) == "null" {
				continue
			}
			if err := json.Unmarshal(v, f.to); err != nil {
				return nil, errNotString
			}
		}
		if t.Token == "" {
			return nil, errNoToken
		}
		out = append(out, t)
	}
	if _, err := dec.Token(); err != nil { // the closing ']'
		return nil, errMalformed
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, apperr.New(apperr.InvalidRequest, "unexpected data after the JSON array")
	}
	return out, nil
}
