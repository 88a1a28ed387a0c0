package tokensecret

import (
	"os"
	"path/filepath"
	"sync"
	"testing"
)

// TestLoadOrCreateSecretConcurrently: processes starting at once on a fresh
// directory all get the one secret the first of them created, never an
// empty or half-written file.
func TestLoadOrCreateSecretConcurrently(t *testing.T) {
	for round := range 50 {
		path := filepath.Join(t.TempDir(), "apikeyd.jwt-secret")
		const n = 8
		secrets := make([]string, n)
		errs := make([]error, n)
		var start, done sync.WaitGroup
		start.Add(1)
		for i := range n {
			done.Go(func() {
				start.Wait()
				b, err := LoadOrCreate(path)
				secrets[i], errs[i] = string(b), err
			})
		}
		start.Done()
		done.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("round %d: %v", round, errs[i])
			}
			if secrets[i] != secrets[0] {
				t.Fatalf("round %d: two secrets for one file", round)
			}
		}
		b, err := os.ReadFile(path)
		if err != nil || string(b) != secrets[0]+"\n" {
			t.Fatalf("round %d: the file holds another secret (%v)", round, err)
		}
		if fi, err := os.Stat(path); err != nil {
			t.Fatalf("round %d: %v", round, err)
		} else if fi.Mode().Perm() != 0o600 {
			t.Fatalf("round %d: mode %v, want 0600", round, fi.Mode())
		}
		if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
			t.Fatalf("round %d: %d files left beside the secret", round, len(entries)-1)
		}
	}
}

func TestLoadOrCreateSecretRefusesShortFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "apikeyd.jwt-secret")
	if err := os.WriteFile(path, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadOrCreate(path); err == nil {
		t.Error("a secret file shorter than 32 bytes accepted")
	}
}
