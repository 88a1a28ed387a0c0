package apikey_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apikey/apikeytest"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/audit"
)

// recordingStore is an apikey.Store that records every call and knows one key.
type recordingStore struct {
	mu     sync.Mutex
	calls  []string
	hashes []string
	known  apikey.APIKey
	hash   string
}

func (s *recordingStore) record(call string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, call)
}

func (s *recordingStore) CreateKey(context.Context, apikey.NewKey, int) error {
	s.record("CreateKey")
	return nil
}

func (s *recordingStore) ListKeys(context.Context, apikey.Owner) ([]apikey.APIKey, error) {
	s.record("ListKeys")
	return nil, nil
}

func (s *recordingStore) RevokeKey(context.Context, apikey.Owner, string, time.Time, audit.Event) (string, error) {
	s.record("RevokeKey")
	return "", nil
}

func (s *recordingStore) RollKey(context.Context, apikey.Owner, string, apikey.NewKey, time.Time, time.Time, []audit.Event) (apikey.APIKey, apikey.APIKey, string, error) {
	s.record("RollKey")
	return apikey.APIKey{}, apikey.APIKey{}, "", nil
}

func (s *recordingStore) UpdateKey(context.Context, apikey.Owner, string, time.Time, func(apikey.APIKey) (apikey.KeyUpdate, error)) (apikey.APIKey, string, error) {
	s.record("UpdateKey")
	return apikey.APIKey{}, "", nil
}

func (s *recordingStore) SpendCredits(context.Context, string, int64, time.Time) (int64, bool, error) {
	s.record("SpendCredits")
	return 0, true, nil
}

func (s *recordingStore) FindKeyByHash(_ context.Context, hash string) (apikey.APIKey, error) {
	s.record("FindKeyByHash")
	s.mu.Lock()
	s.hashes = append(s.hashes, hash)
	s.mu.Unlock()
	if hash == s.hash {
		return s.known, nil
	}
	return apikey.APIKey{}, apperr.New(apperr.NotFound, "API key not found")
}

func (s *recordingStore) TouchKeys(context.Context, []apikey.Use, time.Time) error {
	s.record("TouchKeys")
	return nil
}

func (s *recordingStore) Ping(context.Context) error {
	s.record("Ping")
	return nil
}

func (s *recordingStore) RevokeLeakedKey(context.Context, string, time.Time, apikey.Leak, audit.Event) (apikey.LeakOutcome, error) {
	s.record("RevokeLeakedKey")
	return apikey.LeakNotActive, nil
}

func (s *recordingStore) ListLeakNotices(context.Context, string, []string) ([]apikey.LeakNotice, error) {
	s.record("ListLeakNotices")
	return nil, nil
}

func (s *recordingStore) DismissLeakNotice(context.Context, apikey.Owner, string, time.Time) error {
	s.record("DismissLeakNotice")
	return nil
}

// TestVerifyChecksTheKeyBeforeTheStore: a key with the wrong prefix, length,
// alphabet or checksum is refused without any store call; a well-formed key
// is looked up once, by its SHA-256, and never by scanning keys.
func TestVerifyChecksTheKeyBeforeTheStore(t *testing.T) {
	f := apikey.NewFormat(apikey.DefaultPrefix)
	good := f.Generate()
	st := &recordingStore{hash: apikey.Hash(good), known: apikey.APIKey{ID: "k1", UserID: "alice"}}
	svc := apikey.NewService(st, apikey.Config{})
	ctx := context.Background()

	for _, bad := range []string{
		"", "atiru_", "garbage", good[:len(good)-1], good + "0", strings.ToUpper(good[:6]) + good[6:],
		"other_" + good[6:], apikeytest.Typo(good, len(good)-1), apikeytest.Typo(good, 6), apikeytest.Typo(good, 20),
		good[:10] + "-" + good[11:], good[:10] + "é" + good[12:], good[:len(good)-6] + "000000",
		"eyJhbGciOiJIUzI1NiJ9.e30.sig", strings.Repeat("a", 1<<20),
	} {
		if _, err := svc.Verify(ctx, apikey.VerifyRequest{Key: bad}); apperr.CodeOf(err) != apperr.InvalidToken {
			t.Errorf("Verify(%.20q…) = %v, want INVALID_OR_EXPIRED_TOKEN", bad, err)
		}
	}
	if len(st.calls) != 0 {
		t.Fatalf("malformed keys reached the store: %v", st.calls)
	}

	unknown := f.Generate()
	if _, err := svc.Verify(ctx, apikey.VerifyRequest{Key: unknown}); apperr.CodeOf(err) != apperr.InvalidToken {
		t.Errorf("unknown key: %v", err)
	}
	v, err := svc.Verify(ctx, apikey.VerifyRequest{Key: good})
	p := v.Principal
	if err != nil || p.UserID != "alice" || p.KeyID != "k1" || p.Method != apikey.MethodAPIKey {
		t.Fatalf("Verify(good) = %+v, %v", p, err)
	}
	want := []string{"FindKeyByHash", "FindKeyByHash"}
	if strings.Join(st.calls, ",") != strings.Join(want, ",") {
		t.Errorf("store calls %v, want %v (one indexed lookup per key)", st.calls, want)
	}
	if len(st.hashes) != 2 || st.hashes[0] != apikey.Hash(unknown) || st.hashes[1] != apikey.Hash(good) {
		t.Errorf("looked up %v, want the SHA-256 of each key", st.hashes)
	}
	for _, h := range st.hashes {
		if strings.Contains(h, unknown[6:]) || strings.Contains(h, good[6:]) {
			t.Error("the store was given the key itself")
		}
	}
}

func (s *recordingStore) KeyOwner(context.Context, string) (apikey.Owner, error) {
	s.record("KeyOwner")
	return apikey.Owner{}, apperr.New(apperr.NotFound, "no key")
}
