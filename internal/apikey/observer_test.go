package apikey_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apikey/apikeytest"
	"github.com/apikeyd/apikeyd/internal/dbtest"
	"github.com/apikeyd/apikeyd/internal/store"
)

// recorder is an Observer that counts what it is told.
type recorder struct {
	apikey.NopObserver
	mu      sync.Mutex
	created int
	revoked int
	flushes []int
}

func (r *recorder) KeyCreated() { r.mu.Lock(); r.created++; r.mu.Unlock() }
func (r *recorder) KeyRevoked() { r.mu.Lock(); r.revoked++; r.mu.Unlock() }
func (r *recorder) UsageFlushed(n int, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if err == nil {
		r.flushes = append(r.flushes, n)
	}
}

// TestVerifyOutcomes checks that each way a key can fail has its own
// outcome, while every caller still gets INVALID_OR_EXPIRED_TOKEN, and that
// the service reports what it does to its observer.
func TestVerifyOutcomes(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		rec := &recorder{}
		now := time.Now().UTC()
		clock := func() time.Time { return now }
		svc := apikey.NewService(store.New(dbtest.OpenDSN(t, dsn), store.Config{}), apikey.Config{Observer: rec, Now: clock})
		ctx := apikey.WithPrincipal(context.Background(), apikey.Principal{UserID: "alice", Method: apikey.MethodJWT})

		good, err := svc.Create(ctx, apikey.CreateInput{})
		if err != nil {
			t.Fatal(err)
		}
		soon := now.Add(time.Minute)
		expiring, err := svc.Create(ctx, apikey.CreateInput{ExpiresAt: &soon})
		if err != nil {
			t.Fatal(err)
		}
		gone, err := svc.Create(ctx, apikey.CreateInput{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := svc.Revoke(ctx, gone.ID); err != nil {
			t.Fatal(err)
		}
		now = now.Add(2 * time.Minute) // expiring has expired

		f := svc.Format()
		badSum := apikeytest.BadChecksum(good.Secret)
		cases := []struct {
			key  string
			want apikey.Outcome
		}{
			{good.Secret, apikey.OutcomeOK},
			{good.Secret[:20], apikey.OutcomeMalformed},
			{badSum, apikey.OutcomeBadChecksum},
			{f.Generate(), apikey.OutcomeUnknown},
			{gone.Secret, apikey.OutcomeRevoked},
			{expiring.Secret, apikey.OutcomeExpired},
		}
		for _, c := range cases {
			v, err := svc.Verify(context.Background(), apikey.VerifyRequest{Key: c.key})
			p, o := v.Principal, v.Outcome
			if c.want == apikey.OutcomeOK {
				if err != nil || p.UserID != "alice" || p.KeyID != good.ID {
					t.Errorf("valid key: %+v %v", p, err)
				}
			} else if err == nil || err.Error() != "INVALID_OR_EXPIRED_TOKEN: invalid or expired token" {
				t.Errorf("%s key: err %v, want INVALID_OR_EXPIRED_TOKEN", c.want, err)
			}
			if o != c.want {
				t.Errorf("%s key: outcome %q", c.want, o)
			}
		}
		if rec.created != 3 || rec.revoked != 1 {
			t.Errorf("created %d, revoked %d; want 3 and 1", rec.created, rec.revoked)
		}

		// One flush writes the one key used; a flush with nothing to
		// write is not a batch.
		if err := svc.FlushUsage(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := svc.FlushUsage(context.Background()); err != nil {
			t.Fatal(err)
		}
		if len(rec.flushes) != 1 || rec.flushes[0] != 1 {
			t.Errorf("flush batches %v, want [1]", rec.flushes)
		}
	})
}
