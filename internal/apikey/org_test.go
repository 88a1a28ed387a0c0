package apikey_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/audit"
	"github.com/apikeyd/apikeyd/internal/clocktest"
	"github.com/apikeyd/apikeyd/internal/dbtest"
	"github.com/apikeyd/apikeyd/internal/org"
	"github.com/apikeyd/apikeyd/internal/store"
	"github.com/apikeyd/apikeyd/internal/webhook"
)

// orgFixture is a Service with organisations (the organisations' own
// Service) over a real store that queues webhooks, on a stopped clock:
// acme, whose owner is alice, admin bob and member carol, and other,
// dave's. dave is no member of acme.
type orgFixture struct {
	svc         *apikey.Service
	orgs        *org.Service
	db          *bun.DB
	store       *store.Store
	clock       *clocktest.Clock
	acme, other string
}

func newOrgFixture(t *testing.T, dsn string, cfg apikey.Config) *orgFixture {
	t.Helper()
	db := dbtest.OpenDSN(t, dsn)
	f := &orgFixture{
		db:    db,
		store: store.New(db, store.Config{Queue: webhook.Delivered}),
		clock: clocktest.Stopped(time.Now()),
	}
	f.orgs = org.NewService(f.store, org.Config{Now: f.clock.Now, OnKeysRevoked: func(hashes []string) { f.svc.ForgetHashes(hashes) }})
	cfg.Orgs, cfg.Now = f.orgs, f.clock.Now
	f.svc = apikey.NewService(f.store, cfg)
	f.acme = f.addOrg(t, "alice", map[string]apikey.Role{"bob": apikey.RoleAdmin, "carol": apikey.RoleMember})
	f.other = f.addOrg(t, "dave", nil)
	return f
}

// addOrg makes an organisation of owner, whom members join with their
// roles, and returns its id.
func (f *orgFixture) addOrg(t *testing.T, owner string, members map[string]apikey.Role) string {
	t.Helper()
	o, err := f.orgs.Create(as(owner), "org of "+owner)
	if err != nil {
		t.Fatal(err)
	}
	for user, role := range members {
		inv, err := f.orgs.CreateInvitation(as(owner), o.ID, org.InvitationInput{Role: role})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.orgs.AcceptInvitation(as(user), inv.Token); err != nil {
			t.Fatal(err)
		}
	}
	return o.ID
}

// as is the context of user's login token.
func as(user string) context.Context {
	return apikey.WithPrincipal(context.Background(), apikey.Principal{UserID: user, Method: apikey.MethodJWT})
}

// in is the context of user's login token acting on org's keys.
func in(user, org string) context.Context { return apikey.WithOrg(as(user), org) }

// create makes a key in ctx, or fails the test.
func (f *orgFixture) create(t *testing.T, ctx context.Context) apikey.Created {
	t.Helper()
	k, err := f.svc.Create(ctx, apikey.CreateInput{})
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// ids returns the ids of keys, listed in ctx.
func (f *orgFixture) ids(t *testing.T, ctx context.Context) []string {
	t.Helper()
	keys, err := f.svc.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]string, len(keys))
	for i, k := range keys {
		ids[i] = k.ID
	}
	return ids
}

// wantCode fails the test unless err has code (and, when msg is not empty,
// that message).
func wantCode(t *testing.T, what string, err error, code apperr.Code, msg string) {
	t.Helper()
	if apperr.CodeOf(err) != code || msg != "" && apperr.MessageOf(err) != msg {
		t.Errorf("%s: %v, want %s %s", what, err, code, msg)
	}
}

// TestOrgKeyRoles: within an organisation's scope, an admin creates, rolls,
// updates and revokes its keys, a member lists them and reads their usage,
// a non-member (or a service without organisations) is NOT_FOUND and a
// member whose role is too low INSUFFICIENT_ROLE; a key of another owner
// is not found in the scope. Without a scope, the same key is reached by
// id under the same rules, a non-member getting the answer of an unknown
// key; listings stay personal. Refusals change nothing.
func TestOrgKeyRoles(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		f := newOrgFixture(t, dsn, apikey.Config{})
		acme := func(user string) context.Context { return in(user, f.acme) }

		byAlice := f.create(t, acme("alice"))
		byBob := f.create(t, acme("bob"))
		personal := f.create(t, as("alice"))
		if byAlice.OrgID != f.acme || byAlice.UserID != "alice" || byBob.OrgID != f.acme || byBob.UserID != "bob" || personal.OrgID != "" {
			t.Fatalf("owners: %+v / %+v / %+v", byAlice.APIKey, byBob.APIKey, personal.APIKey)
		}
		_, err := f.svc.Create(acme("carol"), apikey.CreateInput{})
		wantCode(t, "create by a member", err, apperr.InsufficientRole, "")
		_, err = f.svc.Create(acme("dave"), apikey.CreateInput{})
		wantCode(t, "create by a non-member", err, apperr.NotFound, "organisation not found")
		_, err = f.svc.Create(in("alice", uuid.NewString()), apikey.CreateInput{})
		wantCode(t, "create in an unknown organisation", err, apperr.NotFound, "organisation not found")
		long := strings.Repeat("n", apikey.MaxNameLen+1)
		_, err = f.svc.Create(acme("dave"), apikey.CreateInput{Name: &long})
		wantCode(t, "bad input by a non-member", err, apperr.InvalidRequest, "")
		viaKey := apikey.WithOrg(apikey.WithPrincipal(context.Background(), apikey.Principal{UserID: "alice", Method: apikey.MethodAPIKey, KeyID: personal.ID}), f.acme)
		_, err = f.svc.Create(viaKey, apikey.CreateInput{})
		wantCode(t, "create with an API key", err, apperr.JWTRequired, "")
		noOrgs := apikey.NewService(f.store, apikey.Config{Now: f.clock.Now})
		_, err = noOrgs.Create(acme("alice"), apikey.CreateInput{})
		wantCode(t, "create without organisations", err, apperr.NotFound, "organisation not found")
		_, err = noOrgs.Revoke(as("alice"), byAlice.ID)
		wantCode(t, "revoke without organisations", err, apperr.NotFound, "API key not found")

		// Listings: the organisation's to every member; a user's personal
		// listing never holds the keys they made for an organisation.
		want := []string{byBob.ID, byAlice.ID}
		for _, user := range []string{"alice", "bob", "carol"} {
			if got := f.ids(t, acme(user)); strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("%s lists %v, want %v", user, got, want)
			}
		}
		_, err = f.svc.List(acme("dave"))
		wantCode(t, "list by a non-member", err, apperr.NotFound, "organisation not found")
		if got := f.ids(t, as("alice")); len(got) != 1 || got[0] != personal.ID {
			t.Errorf("alice's personal listing: %v, want only %s", got, personal.ID)
		}
		if got := f.ids(t, as("bob")); len(got) != 0 {
			t.Errorf("bob's personal listing: %v, want none", got)
		}

		name := "renamed"
		rename := apikey.UpdateInput{Name: apikey.Optional[*string]{Set: true, Value: &name}}
		calls := map[string]struct {
			call func(ctx context.Context, id string) error
			need apikey.Role
		}{
			"Update": {func(ctx context.Context, id string) error { _, err := f.svc.Update(ctx, id, rename); return err }, apikey.RoleAdmin},
			"Roll":   {func(ctx context.Context, id string) error { _, err := f.svc.Roll(ctx, id, time.Hour); return err }, apikey.RoleAdmin},
			"Revoke": {func(ctx context.Context, id string) error { _, err := f.svc.Revoke(ctx, id); return err }, apikey.RoleAdmin},
			"KeyUsage": {func(ctx context.Context, id string) error {
				_, err := f.svc.KeyUsage(ctx, id, apikey.UsageRange{})
				return err
			}, apikey.RoleMember},
		}
		for method, c := range calls {
			for _, r := range []struct {
				what string
				ctx  context.Context
				id   string
				code apperr.Code
				msg  string
			}{
				{"a non-member in the scope", acme("dave"), byAlice.ID, apperr.NotFound, "organisation not found"},
				{"a non-member by id", as("dave"), byAlice.ID, apperr.NotFound, "API key not found"},
				{"in another organisation's scope", in("dave", f.other), byAlice.ID, apperr.NotFound, "API key not found"},
				{"a personal key in the scope", acme("alice"), personal.ID, apperr.NotFound, "API key not found"},
				{"another's personal key", as("bob"), personal.ID, apperr.NotFound, "API key not found"},
				{"a malformed id in the scope", acme("alice"), "nope", apperr.NotFound, "API key not found"},
			} {
				wantCode(t, method+" by "+r.what, c.call(r.ctx, r.id), r.code, r.msg)
			}
			if c.need == apikey.RoleAdmin {
				wantCode(t, method+" by a member in the scope", c.call(acme("carol"), byAlice.ID), apperr.InsufficientRole, "")
				wantCode(t, method+" by a member by id", c.call(as("carol"), byAlice.ID), apperr.InsufficientRole, "")
			} else {
				for _, ctx := range []context.Context{acme("carol"), as("carol")} {
					if err := c.call(ctx, byAlice.ID); err != nil {
						t.Errorf("%s by a member: %v", method, err)
					}
				}
			}
		}
		_, err = f.svc.Roll(acme("carol"), "nope", -time.Second)
		wantCode(t, "bad input by a member", err, apperr.InvalidRequest, "")

		// Nothing changed; then an admin acts, in the scope and by id.
		keys, err := f.svc.List(acme("carol"))
		if err != nil || len(keys) != 2 || keys[0].Name != nil || keys[1].Name != nil || keys[0].ReplacedBy != nil || keys[1].ReplacedBy != nil {
			t.Fatalf("after the refusals: %+v, %v", keys, err)
		}
		if k, err := f.svc.Update(as("bob"), byAlice.ID, rename); err != nil || k.Name == nil || *k.Name != name || k.OrgID != f.acme {
			t.Fatalf("update by an admin by id: %+v, %v", k, err)
		}
		if _, err := f.svc.Revoke(acme("bob"), byAlice.ID); err != nil {
			t.Fatalf("revoke by an admin: %v", err)
		}
		if _, err := f.svc.Revoke(as("alice"), byBob.ID); err != nil {
			t.Fatalf("revoke by the owner by id: %v", err)
		}
		if got := f.ids(t, acme("carol")); len(got) != 0 {
			t.Fatalf("left after revoking both: %v", got)
		}
		if _, err := f.svc.KeyUsage(as("carol"), byAlice.ID, apikey.UsageRange{}); err != nil {
			t.Fatalf("the usage of a revoked organisation key: %v", err)
		}
	})
}

// TestOrgKeyLimit: MaxKeysPerOrg caps an organisation's keys whoever makes
// them, apart from each member's personal MaxKeysPerUser.
func TestOrgKeyLimit(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		f := newOrgFixture(t, dsn, apikey.Config{MaxKeysPerOrg: 2, MaxKeysPerUser: 1})
		first := f.create(t, in("alice", f.acme))
		f.create(t, in("bob", f.acme))
		_, err := f.svc.Create(in("alice", f.acme), apikey.CreateInput{})
		wantCode(t, "a third organisation key", err, apperr.KeyLimitReached, "")
		f.create(t, as("alice")) // her one personal key
		_, err = f.svc.Create(as("alice"), apikey.CreateInput{})
		wantCode(t, "a second personal key", err, apperr.KeyLimitReached, "")
		f.create(t, in("dave", f.other)) // another organisation's count
		if _, err := f.svc.Revoke(in("bob", f.acme), first.ID); err != nil {
			t.Fatal(err)
		}
		f.create(t, in("alice", f.acme))
	})
}

// TestOrgKeyLifetime: with the organisation's max key lifetime, a key
// asked to expire never expires at the latest it allows, one asked to
// expire later is refused naming expires_at, and a roll keeps the expiry.
// Personal keys are not limited.
func TestOrgKeyLifetime(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		f := newOrgFixture(t, dsn, apikey.Config{})
		hour := time.Hour
		if _, err := f.orgs.Update(as("alice"), f.acme, org.UpdateInput{MaxKeyLifetime: apikey.Optional[*time.Duration]{Set: true, Value: &hour}}); err != nil {
			t.Fatal(err)
		}
		ctx := in("bob", f.acme)
		k := f.create(t, ctx)
		if k.ExpiresAt == nil || !k.ExpiresAt.Equal(k.CreatedAt.Add(time.Hour)) {
			t.Fatalf("expires_at %v, want created_at %v + 1h", k.ExpiresAt, k.CreatedAt)
		}
		latest := k.CreatedAt.Add(time.Hour)
		if k, err := f.svc.Create(ctx, apikey.CreateInput{ExpiresAt: &latest}); err != nil || !k.ExpiresAt.Equal(latest) {
			t.Fatalf("at the latest: %+v, %v", k.ExpiresAt, err)
		}
		sooner := k.CreatedAt.Add(time.Minute)
		if k, err := f.svc.Create(ctx, apikey.CreateInput{ExpiresAt: &sooner}); err != nil || !k.ExpiresAt.Equal(sooner) {
			t.Fatalf("sooner: %+v, %v", k.ExpiresAt, err)
		}
		beyond := latest.Add(time.Millisecond)
		_, err := f.svc.Create(ctx, apikey.CreateInput{ExpiresAt: &beyond})
		if wantCode(t, "beyond the lifetime", err, apperr.InvalidRequest, ""); !strings.Contains(apperr.MessageOf(err), "expires_at") {
			t.Errorf("the refusal does not name expires_at: %q", apperr.MessageOf(err))
		}
		f.clock.Advance(time.Minute)
		r, err := f.svc.Roll(ctx, k.ID, 0)
		if err != nil || r.ExpiresAt == nil || !r.ExpiresAt.Equal(*k.ExpiresAt) {
			t.Fatalf("rolled: %+v, %v; want the expiry %v", r.ExpiresAt, err, k.ExpiresAt)
		}
		if p := f.create(t, as("bob")); p.ExpiresAt != nil {
			t.Fatalf("a personal key expires: %v", p.ExpiresAt)
		}
		if k := f.create(t, in("dave", f.other)); k.ExpiresAt != nil {
			t.Fatalf("a key of an organisation without a lifetime expires: %v", k.ExpiresAt)
		}
	})
}

// TestOrgKeyRollAndVerify: a roll by another admin keeps the key the
// organisation's and records who made the new one; an organisation key
// verifies as its organisation, with who made it and no user.
func TestOrgKeyRollAndVerify(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		f := newOrgFixture(t, dsn, apikey.Config{})
		old := f.create(t, in("alice", f.acme))
		r, err := f.svc.Roll(as("bob"), old.ID, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if r.OrgID != f.acme || r.UserID != "bob" || r.Previous.OrgID != f.acme || r.Previous.UserID != "alice" {
			t.Fatalf("rolled %+v from %+v", r.APIKey, r.Previous)
		}
		if got := f.ids(t, in("carol", f.acme)); len(got) != 2 || got[0] != r.ID {
			t.Fatalf("the organisation lists %v", got)
		}
		for _, c := range []struct {
			key       string
			createdBy string
		}{{r.Secret, "bob"}, {old.Secret, "alice"}} {
			v, err := f.svc.Verify(context.Background(), apikey.VerifyRequest{Key: c.key})
			p := v.Principal
			if err != nil || p.UserID != "" || p.OrgID != f.acme || p.CreatedBy != c.createdBy || p.Method != apikey.MethodAPIKey {
				t.Fatalf("verified as %+v, %v; want org %s made by %s", p, err, f.acme, c.createdBy)
			}
			k, err := f.svc.Key(context.Background(), p)
			if err != nil || k == nil || k.ID != p.KeyID {
				t.Fatalf("the principal's key: %+v, %v", k, err)
			}
		}
	})
}

// TestOrgKeyEvents: every event of an organisation key is in the log of the
// member who acted (a leak: who made the key) and carries the
// organisation, as the webhooks it queues do; a personal key's carry none.
func TestOrgKeyEvents(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		f := newOrgFixture(t, dsn, apikey.Config{})
		k := f.create(t, in("alice", f.acme))
		name := "ci"
		if _, err := f.svc.Update(as("bob"), k.ID, apikey.UpdateInput{Name: apikey.Optional[*string]{Set: true, Value: &name}}); err != nil {
			t.Fatal(err)
		}
		r, err := f.svc.Roll(in("bob", f.acme), k.ID, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.svc.Revoke(as("alice"), r.ID); err != nil {
			t.Fatal(err)
		}
		leaked := f.create(t, in("bob", f.acme))
		if ok, err := f.svc.RevokeLeaked(context.Background(), leaked.Secret, apikey.Leak{}); !ok || err != nil {
			t.Fatalf("leak: %v, %v", ok, err)
		}
		personal := f.create(t, as("alice"))

		type row struct {
			ID     string  `bun:"id"`
			Action string  `bun:"action"`
			KeyID  string  `bun:"key_id"`
			UserID string  `bun:"user_id"`
			OrgID  *string `bun:"org_id"`
		}
		var rows []row
		if err := f.db.NewSelect().TableExpr("audit_events").Column("id", "action", "key_id", "user_id", "org_id").
			Where("action LIKE 'api_key.%'").OrderExpr("id").Scan(context.Background(), &rows); err != nil {
			t.Fatal(err)
		}
		acme := f.acme
		want := []struct {
			action, key, user string
			org               *string
		}{
			{audit.KeyCreated, k.ID, "alice", &acme},
			{audit.KeyUpdated, k.ID, "bob", &acme},
			{audit.KeyRolled, k.ID, "bob", &acme},
			{audit.KeyRevoked, k.ID, "bob", &acme}, // a roll without grace
			{audit.KeyRevoked, r.ID, "alice", &acme},
			{audit.KeyCreated, leaked.ID, "bob", &acme},
			{audit.KeyLeaked, leaked.ID, "bob", &acme},
			{audit.KeyCreated, personal.ID, "alice", nil},
		}
		if len(rows) != len(want) {
			t.Fatalf("%d events, want %d: %+v", len(rows), len(want), rows)
		}
		payloads := f.queued(t)
		for i, w := range want {
			got := rows[i]
			if got.Action != w.action || got.KeyID != w.key || got.UserID != w.user || (got.OrgID == nil) != (w.org == nil) || got.OrgID != nil && *got.OrgID != *w.org {
				t.Errorf("event %d: %s of %s by %s in org %v; want %s of %s by %s in org %v",
					i, got.Action, got.KeyID, got.UserID, deref(got.OrgID), w.action, w.key, w.user, deref(w.org))
			}
			var queued map[string]any
			if err := json.Unmarshal([]byte(payloads[got.ID]), &queued); err != nil {
				t.Fatalf("event %d queued as %q: %v", i, payloads[got.ID], err)
			}
			orgID, has := queued["org_id"]
			if w.org == nil && has || w.org != nil && orgID != *w.org {
				t.Errorf("event %d (%s) queued with org_id %v (present: %v), want %v", i, w.action, orgID, has, deref(w.org))
			}
		}
	})
}

// queued returns the payload of every event queued for webhooks, by event
// id.
func (f *orgFixture) queued(t *testing.T) map[string]string {
	t.Helper()
	var rows []struct {
		EventID string `bun:"event_id"`
		Payload string `bun:"payload"`
	}
	if err := f.db.NewSelect().TableExpr("webhook_outbox").Column("event_id", "payload").Scan(context.Background(), &rows); err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, r := range rows {
		m[r.EventID] = r.Payload
	}
	return m
}

func deref(s *string) string {
	if s == nil {
		return "<nil>"
	}
	return *s
}

// TestOrgLeakNotices: the notice of a leaked organisation key shows to the
// organisation's admins and owners (from their membership, or, in
// identity-provider mode, from their token), not to its members or anyone
// else; an admin dismisses it for all of them, a member may not, a
// non-member is told there is no such notice. A personal notice stays its
// owner's.
func TestOrgLeakNotices(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		f := newOrgFixture(t, dsn, apikey.Config{})
		ctx := context.Background()
		acmeKey := f.create(t, in("bob", f.acme))
		personal := f.create(t, as("alice"))
		// Identity-provider mode: the token names the organisation and the
		// role; there is no membership.
		idp := apikey.NewService(f.store, apikey.Config{Now: f.clock.Now, Orgs: org.NewService(f.store, org.Config{IdentityProvider: true, Now: f.clock.Now})})
		idpOrg := uuid.NewString()
		idpAdmin := apikey.WithPrincipal(ctx, apikey.Principal{UserID: "erin", Method: apikey.MethodJWT, Org: &apikey.OrgClaim{ID: idpOrg, Role: apikey.RoleAdmin}})
		idpMember := apikey.WithPrincipal(ctx, apikey.Principal{UserID: "frank", Method: apikey.MethodJWT, Org: &apikey.OrgClaim{ID: idpOrg, Role: apikey.RoleMember}})
		idpKey, err := idp.Create(apikey.WithOrg(idpAdmin, idpOrg), apikey.CreateInput{})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range []apikey.Created{acmeKey, personal, idpKey} {
			if ok, err := f.svc.RevokeLeaked(ctx, k.Secret, apikey.Leak{Source: "commit"}); !ok || err != nil {
				t.Fatalf("leak: %v, %v", ok, err)
			}
		}
		notices := func(svc *apikey.Service, ctx context.Context) []string {
			t.Helper()
			ns, err := svc.LeakNotices(ctx)
			if err != nil {
				t.Fatal(err)
			}
			ids := make([]string, len(ns))
			for i, n := range ns {
				ids[i] = n.ID
			}
			return ids
		}
		for who, want := range map[string]struct {
			svc *apikey.Service
			ctx context.Context
			ids []string
		}{
			"alice (owner)":               {f.svc, as("alice"), []string{personal.ID, acmeKey.ID}},
			"bob (admin)":                 {f.svc, as("bob"), []string{acmeKey.ID}},
			"carol (member)":              {f.svc, as("carol"), nil},
			"dave":                        {f.svc, as("dave"), nil},
			"erin (admin by her token)":   {idp, idpAdmin, []string{idpKey.ID}},
			"frank (member by his token)": {idp, idpMember, nil},
			"bob in acme's scope":         {f.svc, in("bob", f.acme), []string{acmeKey.ID}},
			"alice in another's scope":    {f.svc, apikey.WithOrg(as("alice"), f.other), []string{personal.ID, acmeKey.ID}},
		} {
			if got := notices(want.svc, want.ctx); strings.Join(got, ",") != strings.Join(want.ids, ",") {
				t.Errorf("%s sees %v, want %v", who, got, want.ids)
			}
		}

		wantCode(t, "dismissed by a member", f.svc.DismissLeakNotice(as("carol"), acmeKey.ID), apperr.InsufficientRole, "")
		wantCode(t, "dismissed by a non-member", f.svc.DismissLeakNotice(as("dave"), acmeKey.ID), apperr.NotFound, "no such leak notice")
		wantCode(t, "dismissed by another user", f.svc.DismissLeakNotice(as("bob"), personal.ID), apperr.NotFound, "no such leak notice")
		wantCode(t, "dismissed by a member by token", idp.DismissLeakNotice(idpMember, idpKey.ID), apperr.InsufficientRole, "")
		if err := f.svc.DismissLeakNotice(as("bob"), acmeKey.ID); err != nil {
			t.Fatalf("dismissed by an admin: %v", err)
		}
		if err := idp.DismissLeakNotice(idpAdmin, idpKey.ID); err != nil {
			t.Fatalf("dismissed by an idp admin: %v", err)
		}
		if got := notices(f.svc, as("alice")); len(got) != 1 || got[0] != personal.ID {
			t.Fatalf("alice sees %v after bob dismissed the organisation's", got)
		}
		if got := notices(idp, idpAdmin); len(got) != 0 {
			t.Fatalf("erin sees %v after dismissing", got)
		}
	})
}

// TestOrgKeyUsage: the usage summary in an organisation's scope is its
// keys', without a scope the user's personal keys'; one request listing
// both with their usage gets each key's own counts.
func TestOrgKeyUsage(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		f := newOrgFixture(t, dsn, apikey.Config{})
		orgKey := f.create(t, in("bob", f.acme))
		personal := f.create(t, as("bob"))
		now := f.clock.Now()
		for range 3 {
			f.svc.Count(orgKey.ID, apikey.OutcomeOK, 0, now)
		}
		f.svc.Count(personal.ID, apikey.OutcomeOK, 0, now)
		if err := f.svc.FlushCounts(context.Background()); err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			ctx   context.Context
			key   string
			valid int64
		}{{in("carol", f.acme), orgKey.ID, 3}, {as("bob"), personal.ID, 1}} {
			u, err := f.svc.UsageSummary(c.ctx, apikey.UsageRange{})
			if err != nil || len(u.Keys) != 1 || u.Keys[0].KeyID != c.key || u.Keys[0].Valid != c.valid {
				t.Fatalf("summary: %+v, %v; want %s with %d", u.Keys, err, c.key, c.valid)
			}
		}
		_, err := f.svc.UsageSummary(in("dave", f.acme), apikey.UsageRange{})
		wantCode(t, "summary by a non-member", err, apperr.NotFound, "organisation not found")

		batch := apikey.WithUsageBatch(as("bob"))
		sum := func(ctx context.Context, id string) (n int64) {
			t.Helper()
			buckets, err := f.svc.ListedKeyUsage(ctx, id, apikey.UsageRange{})
			if err != nil {
				t.Fatal(err)
			}
			for _, b := range buckets {
				n += b.Valid
			}
			return n
		}
		if p, o := sum(batch, personal.ID), sum(apikey.WithOrg(batch, f.acme), orgKey.ID); p != 1 || o != 3 {
			t.Fatalf("one request's listings: personal %d, organisation %d; want 1 and 3", p, o)
		}
		_, err = f.svc.ListedKeyUsage(apikey.WithOrg(apikey.WithUsageBatch(as("dave")), f.acme), orgKey.ID, apikey.UsageRange{})
		wantCode(t, "listed usage by a non-member", err, apperr.NotFound, "organisation not found")
	})
}

// TestOrgDeletedAndMemberRemoved: deleting an organisation makes this
// server forget its keys at once (ForgetHashes), cached or not, and every
// use of it NOT_FOUND; a removed member loses access to its keys at once,
// and the keys they made keep working.
func TestOrgDeletedAndMemberRemoved(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		f := newOrgFixture(t, dsn, apikey.Config{})
		ctx := context.Background()
		byBob, other := f.create(t, in("bob", f.acme)), f.create(t, in("dave", f.other))
		for _, k := range []apikey.Created{byBob, other} {
			if _, err := f.svc.Verify(ctx, apikey.VerifyRequest{Key: k.Secret}); err != nil {
				t.Fatal(err)
			}
		}

		if err := f.orgs.RemoveMember(as("alice"), f.acme, "bob"); err != nil {
			t.Fatal(err)
		}
		_, err := f.svc.Revoke(as("bob"), byBob.ID)
		wantCode(t, "revoke by a removed member", err, apperr.NotFound, "API key not found")
		_, err = f.svc.List(in("bob", f.acme))
		wantCode(t, "list by a removed member", err, apperr.NotFound, "organisation not found")
		if v, err := f.svc.Verify(ctx, apikey.VerifyRequest{Key: byBob.Secret}); err != nil || v.Principal.CreatedBy != "bob" {
			t.Fatalf("the removed member's key: %+v, %v", v.Principal, err)
		}

		if err := f.orgs.Delete(as("alice"), f.acme); err != nil {
			t.Fatal(err)
		}
		if f.svc.Cached(byBob.Secret) || !f.svc.Cached(other.Secret) {
			t.Fatalf("after the deletion: its key cached %v, another organisation's %v", f.svc.Cached(byBob.Secret), f.svc.Cached(other.Secret))
		}
		if _, err := f.svc.Verify(ctx, apikey.VerifyRequest{Key: byBob.Secret}); apperr.CodeOf(err) != apperr.InvalidToken {
			t.Fatalf("a deleted organisation's key verifies: %v", err)
		}
		_, err = f.svc.Create(in("alice", f.acme), apikey.CreateInput{})
		wantCode(t, "create in a deleted organisation", err, apperr.NotFound, "organisation not found")
		_, err = f.svc.KeyUsage(as("alice"), byBob.ID, apikey.UsageRange{})
		wantCode(t, "usage of a deleted organisation's key", err, apperr.NotFound, "API key not found")
	})
}
