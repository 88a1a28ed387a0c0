// Package tokensecret is the HS256 secret that signs login tokens: the
// rule it must meet, shared by the configuration that reads JWT_SECRET and
// the code that signs and checks tokens, and the secret generated once
// beside a SQLite database. It is a leaf: it needs no JWT library.
package tokensecret

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// MinBytes is the shortest HS256 secret apikeyd accepts: a secret
// shorter than the hash output makes HMAC-SHA256 weaker than it should be.
const MinBytes = 32

var errShortSecret = fmt.Errorf("a JWT secret must be at least %d bytes", MinBytes)

// Check returns an error when secret is too short to sign login tokens.
func Check(secret []byte) error {
	if len(secret) < MinBytes {
		return errShortSecret
	}
	return nil
}

// LoadOrCreate returns the HS256 secret kept in the file at path,
// creating the file (mode 0600, 48 random bytes, base64) when it does not
// exist. Processes that start at once on a fresh directory all end up with
// the one secret that was created first: the file appears under its name
// only once it is complete (written under a temporary name, then linked,
// which fails rather than replace a file another process linked first), so
// no process can read it half written.
func LoadOrCreate(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		s := strings.TrimSpace(string(b))
		if err := Check([]byte(s)); err != nil {
			return nil, fmt.Errorf("the JWT secret in %s: %w", path, err)
		}
		return []byte(s), nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read JWT secret: %w", err)
	}
	raw := make([]byte, 48)
	_, _ = rand.Read(raw)
	secret := base64.RawURLEncoding.EncodeToString(raw)
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return nil, fmt.Errorf("create JWT secret: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.WriteString(secret + "\n"); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write JWT secret: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("write JWT secret: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("write JWT secret: %w", err)
	}
	// CreateTemp made the file 0600; Link publishes it whole, or not at all.
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return LoadOrCreate(path) // another process was first: use its secret
		}
		return nil, fmt.Errorf("create JWT secret: %w", err)
	}
	return []byte(secret), nil
}
