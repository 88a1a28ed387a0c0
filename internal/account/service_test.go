package account

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/audit"
)

// memStore is an in-memory Store.
type memStore struct {
	mu      sync.Mutex
	users   map[string]StoredUser // by EmailNormalized
	lookups int
	err     error // returned by every call when set
}

func newMemStore() *memStore { return &memStore{users: map[string]StoredUser{}} }

func (m *memStore) AddEvent(context.Context, audit.Event) error { return nil }

func (m *memStore) CreateUser(_ context.Context, u StoredUser, _ audit.Event) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.err != nil {
		return m.err
	}
	if _, ok := m.users[u.EmailNormalized]; ok {
		return apperr.New(apperr.EmailTaken, "taken")
	}
	m.users[u.EmailNormalized] = u
	return nil
}

func (m *memStore) FindUserByEmail(_ context.Context, normalized string) (StoredUser, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lookups++
	if m.err != nil {
		return StoredUser{}, m.err
	}
	u, ok := m.users[normalized]
	if !ok {
		return StoredUser{}, apperr.New(apperr.NotFound, "no such user")
	}
	return u, nil
}

// minted records the calls of a MintFunc.
type minted struct {
	userID string
	iat    time.Time
	ttl    time.Duration
}

// verification is one call of Service.verify.
type verification struct{ encoded, password string }

// fixture is a Service on a memStore with cheap hashing, a fixed clock and a
// recording token minter, whose password verifications are recorded.
type fixture struct {
	svc      *Service
	store    *memStore
	now      time.Time
	mints    []minted
	verified []verification
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{store: newMemStore(), now: time.Date(2026, 11, 25, 12, 0, 0, 987_654_321, time.UTC)}
	f.svc = NewService(f.store, Config{
		Params:     cheap,
		SessionTTL: 90*time.Minute + 500*time.Millisecond, // whole seconds are kept
		Now:        func() time.Time { return f.now },
		Mint: func(userID string, iat time.Time, ttl time.Duration) (string, error) {
			f.mints = append(f.mints, minted{userID, iat, ttl})
			return "token-for-" + userID, nil
		},
	})
	f.svc.verify = func(encoded, password string) (bool, error) {
		f.verified = append(f.verified, verification{encoded, password})
		return VerifyPassword(encoded, password)
	}
	return f
}

func TestRegister(t *testing.T) {
	ctx := context.Background()

	t.Run("Created", func(t *testing.T) {
		f := newFixture(t)
		u, err := f.svc.Register(ctx, "  Alice@Example.com ", "correct horse")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := uuid.Parse(u.ID); err != nil || len(u.ID) != 36 {
			t.Errorf("id %q is not a UUID", u.ID)
		}
		if u.Email != "Alice@Example.com" || !u.CreatedAt.Equal(f.now.Truncate(time.Millisecond)) {
			t.Errorf("user %+v", u)
		}
		stored, ok := f.store.users["alice@example.com"]
		if !ok || stored.User != u {
			t.Fatalf("stored %+v, want %+v under alice@example.com", stored, u)
		}
		if ok, err := VerifyPassword(stored.PasswordHash, "correct horse"); !ok || err != nil {
			t.Errorf("stored hash %q does not verify: %v", stored.PasswordHash, err)
		}
		if stored.PasswordHash[:len("$argon2id$v=19$m=64,t=1,p=1$")] != "$argon2id$v=19$m=64,t=1,p=1$" {
			t.Errorf("stored hash %q not made with the configured parameters", stored.PasswordHash)
		}
	})

	t.Run("EmailTakenInAnyCase", func(t *testing.T) {
		f := newFixture(t)
		if _, err := f.svc.Register(ctx, "bob@example.com", "password-1"); err != nil {
			t.Fatal(err)
		}
		_, err := f.svc.Register(ctx, "BOB@Example.COM", "password-2")
		if apperr.CodeOf(err) != apperr.EmailTaken {
			t.Fatalf("err %v, want EMAIL_TAKEN", err)
		}
	})

	t.Run("Invalid", func(t *testing.T) {
		f := newFixture(t)
		for _, c := range []struct{ email, password string }{
			{"not-an-email", "long enough"},
			{"carol@example.com", "short"},
			{"carol@example.com", ""},
		} {
			if _, err := f.svc.Register(ctx, c.email, c.password); apperr.CodeOf(err) != apperr.InvalidRequest {
				t.Errorf("Register(%q, %q): err %v, want INVALID_REQUEST", c.email, c.password, err)
			}
		}
		if len(f.store.users) != 0 {
			t.Errorf("%d users stored", len(f.store.users))
		}
	})

	t.Run("StoreFailure", func(t *testing.T) {
		f := newFixture(t)
		f.store.err = apperr.New(apperr.ServerBusy, "down")
		if _, err := f.svc.Register(ctx, "dave@example.com", "long enough"); apperr.CodeOf(err) != apperr.ServerBusy {
			t.Errorf("err %v, want SERVER_BUSY", err)
		}
	})
}

func TestLogin(t *testing.T) {
	ctx := context.Background()

	t.Run("Session", func(t *testing.T) {
		f := newFixture(t)
		u, err := f.svc.Register(ctx, "Erin@Example.com", "correct horse")
		if err != nil {
			t.Fatal(err)
		}
		s, err := f.svc.Login(ctx, " erin@EXAMPLE.com", "correct horse")
		if err != nil {
			t.Fatal(err)
		}
		iat := f.now.Truncate(time.Second)
		ttl := 90 * time.Minute
		if s.User != u || s.AccessToken != "token-for-"+u.ID || s.TokenType != "bearer" || s.ExpiresIn != ttl || !s.ExpiresAt.Equal(iat.Add(ttl)) {
			t.Errorf("session %+v", s)
		}
		if len(f.mints) != 1 || f.mints[0] != (minted{u.ID, iat, ttl}) {
			t.Errorf("minted %+v, want one token for %s at %v for %v", f.mints, u.ID, iat, ttl)
		}
		if f.svc.SessionTTL() != ttl {
			t.Errorf("SessionTTL %v", f.svc.SessionTTL())
		}
	})

	// Whatever is wrong, the answer is one error, and one argon2id
	// verification ran: against the user's hash for a wrong password,
	// against the dummy hash for an email that names no account.
	t.Run("OneAnswerOneVerification", func(t *testing.T) {
		f := newFixture(t)
		if _, err := f.svc.Register(ctx, "frank@example.com", "correct horse"); err != nil {
			t.Fatal(err)
		}
		stored := f.store.users["frank@example.com"].PasswordHash
		cases := []struct {
			name, email, password, against string
			lookup                         bool
		}{
			{"WrongPassword", "frank@example.com", "wrong horse", stored, true},
			{"UnknownEmail", "nobody@example.com", "correct horse", f.svc.dummy, true},
			{"MalformedEmail", "frank", "correct horse", f.svc.dummy, false},
			{"EmptyEmail", "", "", f.svc.dummy, false},
			{"PasswordTooLong", "frank@example.com", string(make([]byte, MaxPasswordBytes+1)), f.svc.dummy, false},
		}
		var first error
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				f.verified, f.store.lookups = nil, 0
				_, err := f.svc.Login(ctx, c.email, c.password)
				if err != errInvalidCredentials {
					t.Fatalf("err %v, want INVALID_CREDENTIALS", err)
				}
				if first == nil {
					first = err
				} else if err.Error() != first.Error() {
					t.Errorf("answer %q differs from %q", err, first)
				}
				if len(f.verified) != 1 || f.verified[0] != (verification{c.against, c.password}) {
					t.Errorf("verifications %+v, want one against %.30s…", f.verified, c.against)
				}
				if (f.store.lookups == 1) != c.lookup {
					t.Errorf("%d store lookups", f.store.lookups)
				}
			})
		}
		if len(f.mints) != 0 {
			t.Errorf("a failed login minted a token")
		}
	})

	t.Run("DummyHashHasTheConfiguredCost", func(t *testing.T) {
		f := newFixture(t)
		p, _, _, err := parseHash(f.svc.dummy)
		if err != nil || p != cheap {
			t.Errorf("dummy hash %q: params %+v, err %v; want %+v", f.svc.dummy, p, err, cheap)
		}
		if ok, _ := VerifyPassword(f.svc.dummy, ""); ok {
			t.Error("the dummy hash matches the empty password")
		}
	})

	t.Run("StoreFailure", func(t *testing.T) {
		f := newFixture(t)
		f.store.err = apperr.New(apperr.ServerBusy, "down")
		if _, err := f.svc.Login(ctx, "grace@example.com", "correct horse"); apperr.CodeOf(err) != apperr.ServerBusy {
			t.Errorf("err %v, want SERVER_BUSY", err)
		}
	})

	t.Run("CorruptStoredHash", func(t *testing.T) {
		f := newFixture(t)
		f.store.users["heidi@example.com"] = StoredUser{
			User:            User{ID: "u1", Email: "heidi@example.com"},
			EmailNormalized: "heidi@example.com",
			PasswordHash:    "$2a$10$not-an-argon2id-hash",
		}
		_, err := f.svc.Login(ctx, "heidi@example.com", "correct horse")
		if apperr.CodeOf(err) != apperr.Internal || apperr.MessageOf(err) != "internal error" || !errors.Is(err, ErrMalformedHash) {
			t.Errorf("err %v, want an internal error caused by ErrMalformedHash", err)
		}
	})

	t.Run("MintFailure", func(t *testing.T) {
		f := newFixture(t)
		f.svc.mint = func(string, time.Time, time.Duration) (string, error) { return "", errors.New("no key") }
		if _, err := f.svc.Register(ctx, "ivan@example.com", "correct horse"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Login(ctx, "ivan@example.com", "correct horse"); apperr.CodeOf(err) != apperr.Internal {
			t.Errorf("err %v, want an internal error", err)
		}
	})
}

// TestHashingWaitsForASlot: when every hashing slot is taken, a request
// waits, and gives up with SERVER_BUSY when its context ends.
func TestHashingWaitsForASlot(t *testing.T) {
	f := newFixture(t)
	for range cap(f.svc.slots) {
		f.svc.slots <- struct{}{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := f.svc.Login(ctx, "judy@example.com", "correct horse"); apperr.CodeOf(err) != apperr.ServerBusy {
		t.Errorf("login: err %v, want SERVER_BUSY", err)
	}
	if _, err := f.svc.Register(ctx, "judy@example.com", "correct horse"); apperr.CodeOf(err) != apperr.ServerBusy {
		t.Errorf("register: err %v, want SERVER_BUSY", err)
	}
	<-f.svc.slots
	if _, err := f.svc.Register(context.Background(), "judy@example.com", "correct horse"); err != nil {
		t.Errorf("register with a free slot: %v", err)
	}
}

func TestNewServiceDefaults(t *testing.T) {
	svc := NewService(newMemStore(), Config{Mint: func(string, time.Time, time.Duration) (string, error) { return "", nil }})
	if svc.params != DefaultParams || svc.ttl != DefaultSessionTTL {
		t.Errorf("params %+v, ttl %v; want the OWASP parameters and an hour", svc.params, svc.ttl)
	}
	if p, _, _, err := parseHash(svc.dummy); err != nil || p != DefaultParams {
		t.Errorf("dummy hash %q: %+v %v", svc.dummy, p, err)
	}
}
