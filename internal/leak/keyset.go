// Package leak checks leak reports: the signed reports a code host's secret
// scanning sends when it finds one of apikeyd's keys in public (GitHub's
// secret scanning partner format), and the token-revocation requests of a
// self-managed GitLab. It verifies and parses them; apikey.Service revokes.
package leak

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/keyset"
)

// KeySet is what signs leak reports:
//
//	{"public_keys": [{"key_identifier": "…", "key": "-----BEGIN PUBLIC KEY-----…", "is_current": true}]}
//
// GitHub serves its own at https://api.github.com/meta/public_keys/secret_scanning.
// Only ECDSA P-256 keys are used; entries of another kind are ignored, so
// that a key set may grow other kinds without breaking verification.
type KeySet map[string]*ecdsa.PublicKey

// maxKeySetBytes caps a key set document.
const maxKeySetBytes = 1 << 20

// ParseKeySet parses a key set document. It fails when the document is
// malformed or holds no usable key.
func ParseKeySet(b []byte) (KeySet, error) {
	var doc struct {
		PublicKeys []struct {
			KeyIdentifier string `json:"key_identifier"`
			Key           string `json:"key"`
		} `json:"public_keys"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("leak key set: %w", err)
	}
	ks := KeySet{}
	for _, k := range doc.PublicKeys {
		block, _ := pem.Decode([]byte(k.Key))
		if k.KeyIdentifier == "" || block == nil {
			continue
		}
		pub, err := x509.ParsePKIXPublicKey(block.Bytes)
		if err != nil {
			continue
		}
		if ec, ok := pub.(*ecdsa.PublicKey); ok && ec.Curve == elliptic.P256() {
			ks[k.KeyIdentifier] = ec
		}
	}
	if len(ks) == 0 {
		return nil, errors.New("leak key set: no ECDSA P-256 public key in public_keys")
	}
	return ks, nil
}

// Errors of Verifier.Verify.
var (
	ErrInvalidSignature = apperr.New(apperr.InvalidSignature, "the report's signature does not verify")
	errKeySetDown       = apperr.New(apperr.ServerBusy, "the key set that signs leak reports cannot be fetched; try again later")
)

// Verifier checks report signatures against a key set from a file (read
// once, at start) or a URL, kept by the rule of every key set (see package
// keyset): fetched on first need, and again when a report names an
// identifier it lacks, at most once a RefetchEvery.
type Verifier struct {
	keys KeySet                // from the file
	url  *keyset.Cache[KeySet] // from the URL; nil with a file
}

// VerifierConfig configures a Verifier: exactly one of File and URL.
type VerifierConfig struct {
	File string
	URL  string
	// Client fetches URL; http.DefaultClient when nil. A fetch is bounded
	// by a 10 s time-out whatever the client.
	Client *http.Client
	Log    *slog.Logger // slog.Default() when nil
	// RefetchEvery is the least time between two fetches; a minute when zero.
	RefetchEvery time.Duration
	Now          func() time.Time // time.Now when nil
}

// NewVerifier returns a Verifier. A File is read and parsed now, and its
// errors returned; a URL is fetched on first need.
func NewVerifier(cfg VerifierConfig) (*Verifier, error) {
	if (cfg.File == "") == (cfg.URL == "") {
		return nil, errors.New("leak reports: set one of LEAK_REPORT_KEYS_FILE and LEAK_REPORT_KEYS_URL")
	}
	if cfg.URL != "" {
		if cfg.RefetchEvery <= 0 {
			cfg.RefetchEvery = time.Minute
		}
		return &Verifier{url: keyset.New(keyset.Config{
			Name:         "leak report key set",
			URL:          cfg.URL,
			Accept:       "application/json",
			Client:       cfg.Client,
			FetchTimeout: 10 * time.Second,
			MaxBytes:     maxKeySetBytes,
			MinRefetch:   cfg.RefetchEvery,
			Now:          cfg.Now,
			Log:          cfg.Log,
		}, func(_ context.Context, b []byte) (KeySet, error) { return ParseKeySet(b) })}, nil
	}
	b, err := os.ReadFile(cfg.File)
	if err != nil {
		return nil, fmt.Errorf("LEAK_REPORT_KEYS_FILE: %w", err)
	}
	keys, err := ParseKeySet(b)
	if err != nil {
		return nil, fmt.Errorf("LEAK_REPORT_KEYS_FILE %s: %w", cfg.File, err)
	}
	return &Verifier{keys: keys}, nil
}

// Verify checks that sig (base64 of an ASN.1 DER ECDSA signature) signs
// body (SHA-256) with the key named id. It looks at nothing else, and
// should be called before anything reads the body.
// Returns INVALID_SIGNATURE for a missing or wrong signature or an unknown
// identifier, SERVER_BUSY when the identifier is unknown and the key set
// cannot be fetched (or the fetch outlasts ctx).
func (v *Verifier) Verify(ctx context.Context, id, sig string, body []byte) error {
	if id == "" || sig == "" {
		return ErrInvalidSignature
	}
	der, err := base64.StdEncoding.DecodeString(sig)
	if err != nil {
		return ErrInvalidSignature
	}
	pub, err := v.key(ctx, id)
	if err != nil {
		return err
	}
	sum := sha256.Sum256(body)
	if !ecdsa.VerifyASN1(pub, sum[:], der) {
		return ErrInvalidSignature
	}
	return nil
}

// key returns the public key named id, fetching the key set when it lacks
// it and may fetch. An unknown identifier while the key set cannot be
// fetched is SERVER_BUSY: it may be a new key of the code host.
func (v *Verifier) key(ctx context.Context, id string) (*ecdsa.PublicKey, error) {
	keys := v.keys
	if v.url != nil {
		var err error
		keys, err = v.url.Get(ctx, func(ks KeySet) bool { return ks[id] != nil })
		if err != nil {
			return nil, errKeySetDown
		}
	}
	pub, ok := keys[id]
	if !ok {
		return nil, ErrInvalidSignature
	}
	return pub, nil
}
