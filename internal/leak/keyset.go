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
	"io"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/outbound"
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
// once, at start) or a URL (fetched on first need, kept, and fetched again
// when a report names an identifier it lacks, at most once a RefetchEvery).
type Verifier struct {
	url    string
	client *http.Client
	log    *slog.Logger
	now    func() time.Time
	every  time.Duration

	mu        sync.RWMutex
	keys      KeySet
	fetchMu   sync.Mutex // one fetch at a time
	fetchedAt time.Time  // last attempt; zero before the first
}

// VerifierConfig configures a Verifier: exactly one of File and URL.
type VerifierConfig struct {
	File string
	URL  string
	// Client fetches URL; one with a 10 s time-out when nil.
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
	v := &Verifier{url: cfg.URL, client: cfg.Client, log: cfg.Log, now: cfg.Now, every: cfg.RefetchEvery}
	if v.client == nil {
		v.client = &http.Client{Timeout: 10 * time.Second}
	}
	if v.log == nil {
		v.log = slog.Default()
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.every <= 0 {
		v.every = time.Minute
	}
	if cfg.File != "" {
		b, err := os.ReadFile(cfg.File)
		if err != nil {
			return nil, fmt.Errorf("LEAK_REPORT_KEYS_FILE: %w", err)
		}
		if v.keys, err = ParseKeySet(b); err != nil {
			return nil, fmt.Errorf("LEAK_REPORT_KEYS_FILE %s: %w", cfg.File, err)
		}
	}
	return v, nil
}

// Verify checks that sig (base64 of an ASN.1 DER ECDSA signature) signs
// body (SHA-256) with the key named id. It looks at nothing else, and
// should be called before anything reads the body.
// Returns INVALID_SIGNATURE for a missing or wrong signature or an unknown
// identifier, SERVER_BUSY when the identifier is unknown and the key set
// cannot be fetched.
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
// it and may fetch.
func (v *Verifier) key(ctx context.Context, id string) (*ecdsa.PublicKey, error) {
	if pub, ok := v.known(id); ok {
		return pub, nil
	}
	if v.url == "" {
		return nil, ErrInvalidSignature
	}
	v.fetchMu.Lock()
	defer v.fetchMu.Unlock()
	if pub, ok := v.known(id); ok { // fetched while this call waited
		return pub, nil
	}
	if v.fetchedAt.IsZero() || v.now().Sub(v.fetchedAt) >= v.every {
		v.fetchedAt = v.now()
		ks, err := v.fetch(ctx)
		if err != nil {
			// Keys fetched before keep serving. The URL is not logged:
			// it may carry credentials.
			v.log.Warn("leak report key set fetch failed", "err", err.Error())
		} else {
			v.mu.Lock()
			v.keys = ks
			v.mu.Unlock()
		}
	}
	if pub, ok := v.known(id); ok {
		return pub, nil
	}
	v.mu.RLock()
	never := v.keys == nil
	v.mu.RUnlock()
	if never {
		return nil, errKeySetDown
	}
	return nil, ErrInvalidSignature
}

// known returns the key named id if the key set holds it.
func (v *Verifier) known(id string) (*ecdsa.PublicKey, bool) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	pub, ok := v.keys[id]
	return pub, ok
}

// fetch gets and parses the key set at the URL.
func (v *Verifier) fetch(ctx context.Context) (KeySet, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	res, err := v.client.Do(req)
	if err != nil {
		return nil, outbound.WithoutURL(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", res.StatusCode)
	}
	b, err := io.ReadAll(io.LimitReader(res.Body, maxKeySetBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxKeySetBytes {
		return nil, fmt.Errorf("larger than %d bytes", maxKeySetBytes)
	}
	return ParseKeySet(b)
}
