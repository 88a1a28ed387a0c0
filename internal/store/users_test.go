package store_test

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/apikeyd/apikeyd/internal/account"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/audit"
	"github.com/apikeyd/apikeyd/internal/dbtest"
)

// newUser returns a user to store with email as registered, created at t.
func newUser(tb testing.TB, email string, t time.Time) account.StoredUser {
	tb.Helper()
	id, err := uuid.NewV7()
	if err != nil {
		tb.Fatal(err)
	}
	return account.StoredUser{
		User:            account.User{ID: id.String(), Email: email, CreatedAt: t.UTC().Truncate(time.Millisecond)},
		EmailNormalized: strings.ToLower(email),
		PasswordHash:    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$" + strings.Repeat("A", 43),
	}
}

func TestUsers(t *testing.T) {
	ctx := context.Background()
	base := time.Date(2026, 1, 15, 12, 0, 0, 123_000_000, time.UTC)

	dbtest.Each(t, func(t *testing.T, dsn string) {
		s := mustStore(t, dsn)

		t.Run("CreateAndFind", func(t *testing.T) {
			u := newUser(t, "Alice@Example.com", base)
			if err := s.CreateUser(ctx, u, audit.Event{}); err != nil {
				t.Fatal(err)
			}
			got, err := s.FindUserByEmail(ctx, "alice@example.com")
			if err != nil {
				t.Fatal(err)
			}
			if got.ID != u.ID || got.Email != "Alice@Example.com" || got.EmailNormalized != "alice@example.com" || got.PasswordHash != u.PasswordHash {
				t.Errorf("found %+v, want %+v", got, u)
			}
			if !got.CreatedAt.Equal(base) || got.CreatedAt.Location() != time.UTC {
				t.Errorf("created_at %v, want %v in UTC (millisecond precision kept)", got.CreatedAt, base)
			}
		})

		t.Run("FindByTheNormalizedFormOnly", func(t *testing.T) {
			if err := s.CreateUser(ctx, newUser(t, "Bob@Example.com", base), audit.Event{}); err != nil {
				t.Fatal(err)
			}
			for _, email := range []string{"Bob@Example.com", "nobody@example.com", ""} {
				if _, err := s.FindUserByEmail(ctx, email); apperr.CodeOf(err) != apperr.NotFound {
					t.Errorf("FindUserByEmail(%q): err %v, want NOT_FOUND", email, err)
				}
			}
		})

		t.Run("NonASCIIEmail", func(t *testing.T) {
			u := newUser(t, "ÉLODIE@exemple.fr", base)
			if err := s.CreateUser(ctx, u, audit.Event{}); err != nil {
				t.Fatal(err)
			}
			got, err := s.FindUserByEmail(ctx, "élodie@exemple.fr")
			if err != nil || got.Email != "ÉLODIE@exemple.fr" {
				t.Errorf("found %+v, %v", got, err)
			}
		})

		t.Run("LongestEmail", func(t *testing.T) {
			email := strings.Repeat("x", 64) + "@" + strings.Repeat("d", 185) + ".com" // 254 bytes
			if err := s.CreateUser(ctx, newUser(t, email, base), audit.Event{}); err != nil {
				t.Fatal(err)
			}
		})

		t.Run("EmailTaken", func(t *testing.T) {
			if err := s.CreateUser(ctx, newUser(t, "carol@example.com", base), audit.Event{}); err != nil {
				t.Fatal(err)
			}
			err := s.CreateUser(ctx, newUser(t, "CAROL@example.com", base), audit.Event{})
			if apperr.CodeOf(err) != apperr.EmailTaken {
				t.Fatalf("second user with one normalized email: err %v, want EMAIL_TAKEN", err)
			}
			got, err := s.FindUserByEmail(ctx, "carol@example.com")
			if err != nil || got.Email != "carol@example.com" {
				t.Errorf("the first user was replaced: %+v %v", got, err)
			}
		})

		t.Run("ConcurrentRegistersOneWins", func(t *testing.T) {
			const tries = 12
			var created, taken atomic.Int32
			var wg sync.WaitGroup
			for i := range tries {
				wg.Go(func() {
					email := "Dave@example.com"
					if i%2 == 1 {
						email = "dave@EXAMPLE.com"
					}
					err := s.CreateUser(ctx, newUser(t, email, base), audit.Event{})
					switch apperr.CodeOf(err) {
					case "":
						created.Add(1)
					case apperr.EmailTaken:
						taken.Add(1)
					default:
						t.Errorf("create: %v", err)
					}
				})
			}
			wg.Wait()
			if created.Load() != 1 || taken.Load() != tries-1 {
				t.Errorf("%d created and %d taken; want 1 and %d", created.Load(), taken.Load(), tries-1)
			}
		})
	})
}
