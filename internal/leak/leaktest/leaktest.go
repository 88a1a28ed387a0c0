// Package leaktest signs leak reports as a code host does, for tests: a
// P-256 key under an identifier, and the key set document that publishes
// it in the format GitHub serves.
package leaktest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
)

// Signer is a P-256 key that signs reports under the identifier ID.
type Signer struct {
	ID  string
	key *ecdsa.PrivateKey
}

// NewSigner returns a new signer with identifier id.
func NewSigner(t testing.TB, id string) Signer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return Signer{id, k}
}

// Sign returns the base64 ASN.1 ECDSA signature of SHA-256(body), as the
// Github-Public-Key-Signature header carries it.
func (s Signer) Sign(t testing.TB, body []byte) string {
	t.Helper()
	sum := sha256.Sum256(body)
	sig, err := ecdsa.SignASN1(rand.Reader, s.key, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(sig)
}

// KeySet returns the key set document that lists signers.
func KeySet(t testing.TB, signers ...Signer) []byte {
	t.Helper()
	type entry struct {
		ID      string `json:"key_identifier"`
		Key     string `json:"key"`
		Current bool   `json:"is_current"`
	}
	var doc struct {
		Keys []entry `json:"public_keys"`
	}
	for _, s := range signers {
		der, err := x509.MarshalPKIXPublicKey(&s.key.PublicKey)
		if err != nil {
			t.Fatal(err)
		}
		doc.Keys = append(doc.Keys, entry{s.ID, string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})), true})
	}
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// KeySetFile writes the key set document that lists signers to a file in a
// temporary directory of t and returns its path.
func KeySetFile(t testing.TB, signers ...Signer) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "leak-keys.json")
	if err := os.WriteFile(path, KeySet(t, signers...), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
