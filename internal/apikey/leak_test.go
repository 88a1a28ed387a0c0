package apikey_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apikey/apikeytest"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/dbtest"
)

// TestRevokeLeaked checks what a leak report does to keys on each
// database: an active key is revoked (and refused at once, cache or not)
// with where it was found; a replay changes nothing and gets the same
// answer; keys that are not active are left alone; and the owner, alone,
// sees the notice until they dismiss it.
func TestRevokeLeaked(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		f := newFixture(t, dsn, apikey.Config{})
		ctx := context.Background()
		leaked, kept, own := f.create(t, nil), f.create(t, nil), f.create(t, nil)
		soon := f.clock.Now().Add(time.Minute)
		expired := f.create(t, &soon)
		if _, err := f.svc.Revoke(f.jwt, own.ID); err != nil {
			t.Fatal(err)
		}
		if c := f.verify(t, leaked.Secret); c != "" { // cached now
			t.Fatalf("verify: %s", c)
		}
		f.clock.Advance(2 * time.Minute)

		where := apikey.Leak{URL: "https://github.com/o/r/blob/abc/.env\x00", Source: "Commit"}
		for name, key := range map[string]string{"OwnerRevoked": own.Secret, "Expired": expired.Secret, "Unknown": f.svc.Format().Generate()} {
			if ok, err := f.svc.RevokeLeaked(ctx, key, where); ok || err != nil {
				t.Fatalf("%s: %v, %v; want false", name, ok, err)
			}
		}
		if ok, err := f.svc.RevokeLeaked(ctx, leaked.Secret, where); !ok || err != nil {
			t.Fatalf("leaked key: %v, %v", ok, err)
		}
		if c := f.verify(t, leaked.Secret); c != apperr.InvalidToken {
			t.Fatalf("the leaked key verifies: %q", c)
		}
		if c := f.verify(t, kept.Secret); c != "" {
			t.Fatalf("another key was revoked: %q", c)
		}

		notices, err := f.svc.LeakNotices(f.jwt)
		if err != nil || len(notices) != 1 {
			t.Fatalf("notices: %+v, %v", notices, err)
		}
		n := notices[0]
		if n.ID != leaked.ID || n.RevokedAt == nil || !n.LeakedAt.Equal(*n.RevokedAt) ||
			n.URL == nil || *n.URL != "https://github.com/o/r/blob/abc/.env" || n.Source == nil || *n.Source != "commit" {
			t.Fatalf("notice %+v", n)
		}

		// A replay: the same answer, nothing else changes.
		f.clock.Advance(time.Minute)
		if ok, err := f.svc.RevokeLeaked(ctx, leaked.Secret, apikey.Leak{URL: "https://elsewhere", Source: "issue"}); !ok || err != nil {
			t.Fatalf("replay: %v, %v", ok, err)
		}
		again, _ := f.svc.LeakNotices(f.jwt)
		if len(again) != 1 || !again[0].LeakedAt.Equal(n.LeakedAt) || *again[0].URL != *n.URL {
			t.Fatalf("a replay changed the notice: %+v", again)
		}

		bob := apikey.WithPrincipal(ctx, apikey.Principal{UserID: "bob", Method: apikey.MethodJWT})
		if ns, err := f.svc.LeakNotices(bob); err != nil || len(ns) != 0 {
			t.Fatalf("bob sees %+v, %v", ns, err)
		}
		for name, tc := range map[string]struct {
			ctx context.Context
			id  string
		}{
			"OtherUser": {bob, leaked.ID}, "NotLeaked": {f.jwt, kept.ID}, "Malformed": {f.jwt, "x"},
			"OwnerRevoked": {f.jwt, own.ID},
		} {
			if err := f.svc.DismissLeakNotice(tc.ctx, tc.id); apperr.CodeOf(err) != apperr.NotFound {
				t.Errorf("%s: %v, want NOT_FOUND", name, err)
			}
		}
		viaKey := apikey.WithPrincipal(ctx, apikey.Principal{UserID: "alice", Method: apikey.MethodAPIKey, KeyID: kept.ID})
		if err := f.svc.DismissLeakNotice(viaKey, leaked.ID); apperr.CodeOf(err) != apperr.JWTRequired {
			t.Fatalf("with an API key: %v", err)
		}
		if _, err := f.svc.LeakNotices(viaKey); apperr.CodeOf(err) != apperr.JWTRequired {
			t.Fatalf("with an API key: %v", err)
		}
		if err := f.svc.DismissLeakNotice(f.jwt, strings.ToUpper(leaked.ID)); err != nil {
			t.Fatal(err)
		}
		if ns, _ := f.svc.LeakNotices(f.jwt); len(ns) != 0 {
			t.Fatalf("dismissed, still listed: %+v", ns)
		}
		if err := f.svc.DismissLeakNotice(f.jwt, leaked.ID); apperr.CodeOf(err) != apperr.NotFound {
			t.Fatalf("dismissed twice: %v", err)
		}
	})
}

// TestRevokeLeakedChecksTheKeyBeforeTheStore: strings that are not
// well-formed keys of this server cost no query.
func TestRevokeLeakedChecksTheKeyBeforeTheStore(t *testing.T) {
	st := &recordingStore{}
	svc := apikey.NewService(st, apikey.Config{})
	good := svc.Format().Generate()
	for _, s := range []string{"", "ghp_abc", apikeytest.BadChecksum(good), apikey.NewFormat("other_").Generate(), good + "0"} {
		if ok, err := svc.RevokeLeaked(context.Background(), s, apikey.Leak{}); ok || err != nil {
			t.Fatalf("%q: %v %v", s, ok, err)
		}
	}
	if len(st.calls) != 0 {
		t.Fatalf("store calls: %v", st.calls)
	}
	_, _ = svc.RevokeLeaked(context.Background(), good, apikey.Leak{})
	if len(st.calls) != 1 || st.calls[0] != "RevokeLeakedKey" {
		t.Fatalf("store calls: %v", st.calls)
	}
}
