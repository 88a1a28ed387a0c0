package org_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/apikeyd/apikeyd/internal/account"
	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/audit"
	"github.com/apikeyd/apikeyd/internal/clocktest"
	"github.com/apikeyd/apikeyd/internal/dbtest"
	"github.com/apikeyd/apikeyd/internal/org"
	"github.com/apikeyd/apikeyd/internal/store"
	"github.com/apikeyd/apikeyd/internal/webhook"
)

var base = time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)

// fixture is a Service over a real store that queues webhooks, on a
// stopped clock.
type fixture struct {
	svc   *org.Service
	st    *store.Store
	db    *bun.DB
	clock *clocktest.Clock

	mu        sync.Mutex
	forgotten []string // the hashes OnKeysRevoked was told
}

func newFixture(t *testing.T, dsn string, cfg org.Config) *fixture {
	t.Helper()
	db := dbtest.OpenDSN(t, dsn)
	f := &fixture{st: store.New(db, store.Config{Queue: webhook.Delivered}), db: db, clock: clocktest.Stopped(base)}
	cfg.Now = f.clock.Now
	cfg.OnKeysRevoked = func(hashes []string) {
		f.mu.Lock()
		defer f.mu.Unlock()
		f.forgotten = append(f.forgotten, hashes...)
	}
	f.svc = org.NewService(f.st, cfg)
	return f
}

// as is the context of a request signed in as user with a login token.
func as(user string) context.Context {
	return apikey.WithPrincipal(context.Background(), apikey.Principal{UserID: user, Method: apikey.MethodJWT})
}

// claiming is as, in identity-provider mode: the token names orgID, with
// role.
func claiming(user, orgID string, role apikey.Role) context.Context {
	return apikey.WithPrincipal(context.Background(), apikey.Principal{
		UserID: user, Method: apikey.MethodJWT, Org: &apikey.OrgClaim{ID: orgID, Role: role},
	})
}

// byKey is the context of a request authenticated with an API key of user.
func byKey(user string) context.Context {
	return apikey.WithPrincipal(context.Background(), apikey.Principal{UserID: user, Method: apikey.MethodAPIKey, KeyID: uuid.NewString()})
}

func wantCode(t *testing.T, what string, err error, code apperr.Code) {
	t.Helper()
	if apperr.CodeOf(err) != code {
		t.Errorf("%s: err %v, want %s", what, err, code)
	}
}

// wantOrgNotFound checks err is the one answer of every method for an
// organisation the caller may not see: NOT_FOUND "organisation not found".
func wantOrgNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if apperr.CodeOf(err) != apperr.NotFound || apperr.MessageOf(err) != "organisation not found" {
		t.Errorf("%s: err %v, want NOT_FOUND organisation not found", what, err)
	}
}

// same reports whether a and b are the same organisation, seen with the
// same role.
func same(a, b org.Org) bool {
	return a.ID == b.ID && a.Name == b.Name && a.CreatedAt.Equal(b.CreatedAt) && a.MaxKeyLifetime == b.MaxKeyLifetime && a.Role == b.Role
}

func (f *fixture) create(t *testing.T, owner, name string) org.Org {
	t.Helper()
	o, err := f.svc.Create(as(owner), name)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// invite makes an invitation to orgID with role, by by, and returns it.
func (f *fixture) invite(t *testing.T, orgID, by string, role apikey.Role, email *string) org.CreatedInvitation {
	t.Helper()
	inv, err := f.svc.CreateInvitation(as(by), orgID, org.InvitationInput{Role: role, Email: email})
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

// join makes user a member of orgID with role, invited by by.
func (f *fixture) join(t *testing.T, orgID, by, user string, role apikey.Role) {
	t.Helper()
	inv := f.invite(t, orgID, by, role, nil)
	if _, err := f.svc.AcceptInvitation(as(user), inv.Token); err != nil {
		t.Fatal(err)
	}
}

// roles returns the members of orgID by user id.
func (f *fixture) roles(t *testing.T, orgID string) map[string]apikey.Role {
	t.Helper()
	members, err := f.st.Members(context.Background(), orgID)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]apikey.Role{}
	for _, m := range members {
		out[m.UserID] = m.Role
	}
	return out
}

// events returns the events of orgID's log, newest first.
func (f *fixture) events(t *testing.T, orgID string) []audit.Event {
	t.Helper()
	evs, err := f.st.ListOrgEvents(context.Background(), orgID, "", audit.MaxLimit)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// last returns the newest event of orgID's log, checking its action,
// organisation and actor.
func (f *fixture) last(t *testing.T, orgID, action, by string) audit.Event {
	t.Helper()
	evs := f.events(t, orgID)
	if len(evs) == 0 {
		t.Fatalf("no event in the log of %s, want %s", orgID, action)
	}
	ev := evs[0]
	if ev.Action != action || ev.OrgID != orgID || ev.UserID != by || ev.ActorType != audit.ActorUser || ev.ActorID != by {
		t.Errorf("last event %s org %q user %q actor %s/%s; want %s org %q by %q",
			ev.Action, ev.OrgID, ev.UserID, ev.ActorType, ev.ActorID, action, orgID, by)
	}
	return ev
}

// details returns ev's details as JSON, as the audit log shows them.
func details(t *testing.T, ev audit.Event) string {
	t.Helper()
	b, err := json.Marshal(ev.ToJSON().Details)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// orgKey stores an unrevoked key of orgID made by user, and returns it and
// its hash.
func (f *fixture) key(t *testing.T, user, orgID string) apikey.NewKey {
	t.Helper()
	secret := apikey.NewFormat(apikey.DefaultPrefix).Generate()
	id := uuid.Must(uuid.NewV7()).String()
	k := apikey.NewKey{
		APIKey: apikey.APIKey{
			ID: id, UserID: user, OrgID: orgID, KeyPrefix: apikey.NewFormat(apikey.DefaultPrefix).DisplayPrefix(secret),
			CreatedAt: f.clock.Now().UTC().Truncate(time.Millisecond), Lineage: id,
		},
		Hash: apikey.Hash(secret),
	}
	if err := f.st.CreateKey(context.Background(), k, 100); err != nil {
		t.Fatal(err)
	}
	return k
}

func (f *fixture) revoked(t *testing.T, hash string) bool {
	t.Helper()
	k, err := f.st.FindKeyByHash(context.Background(), hash)
	if err != nil {
		t.Fatal(err)
	}
	return k.RevokedAt != nil
}

// eventCount counts the events recorded, every log included.
func (f *fixture) eventCount(t *testing.T) int64 {
	t.Helper()
	n, err := f.db.NewSelect().Table("audit_events").Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCreateListGet(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		f := newFixture(t, dsn, org.Config{})
		o, err := f.svc.Create(as("alice"), "  Acme Platform  ")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := uuid.Parse(o.ID); err != nil || o.Name != "Acme Platform" || o.Role != apikey.RoleOwner ||
			!o.CreatedAt.Equal(base) || o.MaxKeyLifetime != 0 {
			t.Errorf("created %+v", o)
		}
		if ev := f.last(t, o.ID, audit.OrgCreated, "alice"); details(t, ev) != `{"name":"Acme Platform"}` {
			t.Errorf("org.created details %s", details(t, ev))
		}
		f.clock.Advance(time.Second)
		second := f.create(t, "alice", "Second")

		got, err := f.svc.Get(as("alice"), o.ID)
		if err != nil || !same(got, o) {
			t.Errorf("Get = %+v, %v; want %+v", got, err, o)
		}
		list, err := f.svc.List(as("alice"))
		if err != nil || len(list) != 2 || !same(list[0], o) || !same(list[1], second) {
			t.Errorf("List = %+v, %v; want the two, oldest first", list, err)
		}
		if list, err := f.svc.List(as("bob")); err != nil || len(list) != 0 {
			t.Errorf("List of a user in none = %+v, %v", list, err)
		}

		// No oracle: a non-member, an unknown and a malformed id all read
		// the same.
		for _, id := range []string{o.ID, uuid.NewString(), "", strings.Repeat("a", 256), "a\x00b", "tab\there", "\xff"} {
			_, err := f.svc.Get(as("bob"), id)
			wantOrgNotFound(t, fmt.Sprintf("Get(%q) by a non-member", id), err)
		}
		for _, id := range []string{uuid.NewString(), "", strings.Repeat("a", 256), "a\x00b"} {
			_, err := f.svc.Get(as("alice"), id)
			wantOrgNotFound(t, fmt.Sprintf("Get(%q)", id), err)
		}

		// The webhook queue takes org.* events with their change.
		ds, err := f.st.ClaimDeliveries(context.Background(), f.clock.Now(), time.Minute, 10)
		if err != nil || len(ds) != 2 || !strings.Contains(string(ds[0].Event), `"action":"org.created"`) {
			t.Errorf("queued deliveries %d %v, want the two org.created", len(ds), err)
		}
	})
}

func TestBadInputChangesNothing(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		f := newFixture(t, dsn, org.Config{})
		o := f.create(t, "alice", "Acme")
		inv := f.invite(t, o.ID, "alice", apikey.RoleMember, nil)
		before := f.eventCount(t)
		long := strings.Repeat("é", apikey.MaxNameLen+1)

		for _, name := range []string{"", "   ", long, "a\nb", "nul\x00", "rtl\u202eevil", "\xff"} {
			_, err := f.svc.Create(as("alice"), name)
			wantCode(t, fmt.Sprintf("Create(%q)", name), err, apperr.InvalidRequest)
			if !strings.HasPrefix(apperr.MessageOf(err), "name ") {
				t.Errorf("Create(%q): message %q does not name the field", name, apperr.MessageOf(err))
			}
			_, err = f.svc.Update(as("alice"), o.ID, org.UpdateInput{Name: apikey.Optional[string]{Set: true, Value: name}})
			wantCode(t, fmt.Sprintf("Update(name %q)", name), err, apperr.InvalidRequest)
		}
		if _, err := f.svc.Create(as("carol"), strings.Repeat("é", apikey.MaxNameLen)); err != nil {
			t.Errorf("a name of %d characters: %v", apikey.MaxNameLen, err)
		}
		before++ // its org.created
		for _, d := range []time.Duration{0, -time.Second, time.Millisecond, 1500 * time.Millisecond, org.LongestKeyLifetime + time.Second} {
			_, err := f.svc.Update(as("alice"), o.ID, org.UpdateInput{MaxKeyLifetime: apikey.Optional[*time.Duration]{Set: true, Value: &d}})
			wantCode(t, fmt.Sprintf("Update(max_key_lifetime %v)", d), err, apperr.InvalidRequest)
			if !strings.HasPrefix(apperr.MessageOf(err), "max_key_lifetime_seconds ") {
				t.Errorf("lifetime %v: message %q does not name the field", d, apperr.MessageOf(err))
			}
		}
		for _, role := range []apikey.Role{"", "superuser", "Owner", "admin "} {
			_, err := f.svc.UpdateMember(as("alice"), o.ID, "alice", role)
			wantCode(t, fmt.Sprintf("UpdateMember(role %q)", role), err, apperr.InvalidRequest)
			_, err = f.svc.CreateInvitation(as("alice"), o.ID, org.InvitationInput{Role: role})
			wantCode(t, fmt.Sprintf("CreateInvitation(role %q)", role), err, apperr.InvalidRequest)
			if !strings.HasPrefix(apperr.MessageOf(err), "role ") {
				t.Errorf("role %q: message %q does not name the field", role, apperr.MessageOf(err))
			}
		}
		for _, email := range []string{"bob", "bob@", "@example.com", "bob@example", "b ob@example.com", "bob@exa\x00mple.com"} {
			_, err := f.svc.CreateInvitation(as("alice"), o.ID, org.InvitationInput{Role: apikey.RoleMember, Email: &email})
			wantCode(t, fmt.Sprintf("CreateInvitation(email %q)", email), err, apperr.InvalidRequest)
		}
		for _, token := range []string{"", "inv_", inv.Token[:len(inv.Token)-1], inv.Token + "x", "INV_" + inv.Token[4:],
			inv.Token[:10] + "-" + inv.Token[11:], "atiru_" + inv.Token[4:], inv.Token[:10] + "é" + inv.Token[12:]} {
			_, err := f.svc.AcceptInvitation(as("bob"), token)
			wantCode(t, fmt.Sprintf("AcceptInvitation(%q)", token), err, apperr.InvalidRequest)
			if len(token) > len("inv_") && strings.Contains(err.Error(), token) {
				t.Errorf("AcceptInvitation: the error %q quotes the token", err)
			}
		}
		for _, id := range []string{"", "nope", strings.ToUpper(uuid.NewString()) + "x", uuid.NewString()} {
			wantCode(t, fmt.Sprintf("RevokeInvitation(%q)", id), f.svc.RevokeInvitation(as("alice"), o.ID, id), apperr.NotFound)
		}
		for _, id := range []string{"", strings.Repeat("u", 256), "a\x00b", "nobody"} {
			_, err := f.svc.UpdateMember(as("alice"), o.ID, id, apikey.RoleAdmin)
			wantCode(t, fmt.Sprintf("UpdateMember(%q)", id), err, apperr.NotFound)
			wantCode(t, fmt.Sprintf("RemoveMember(%q)", id), f.svc.RemoveMember(as("alice"), o.ID, id), apperr.NotFound)
		}

		if n := f.eventCount(t); n != before {
			t.Errorf("%d events after bad input, want %d", n, before)
		}
		if got, _ := f.svc.Get(as("alice"), o.ID); !same(got, o) {
			t.Errorf("after bad input: %+v, want %+v", got, o)
		}
		if list, _ := f.svc.List(as("alice")); len(list) != 1 {
			t.Errorf("after bad input alice has %d organisations", len(list))
		}
		if invs, _ := f.svc.Invitations(as("alice"), o.ID); len(invs) != 1 || invs[0].ID != inv.ID {
			t.Errorf("after bad input the invitations are %+v", invs)
		}
		if r := f.roles(t, o.ID); len(r) != 1 || r["alice"] != apikey.RoleOwner {
			t.Errorf("after bad input the members are %v", r)
		}
	})
}

// TestRoles: what each role may do, and that a non-member learns nothing.
func TestRoles(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		f := newFixture(t, dsn, org.Config{})
		o := f.create(t, "alice", "Acme")
		f.join(t, o.ID, "alice", "bob", apikey.RoleMember)
		f.join(t, o.ID, "alice", "carol", apikey.RoleAdmin)
		f.join(t, o.ID, "alice", "dave", apikey.RoleMember)
		f.join(t, o.ID, "alice", "erin", apikey.RoleOwner)
		lifetime := time.Hour
		ops := []struct {
			name string
			need apikey.Role
			do   func(ctx context.Context) error
			// destructive ones are run only where they are refused.
			destructive bool
		}{
			{"Get", apikey.RoleMember, func(ctx context.Context) error { _, err := f.svc.Get(ctx, o.ID); return err }, false},
			{"Members", apikey.RoleMember, func(ctx context.Context) error { _, err := f.svc.Members(ctx, o.ID); return err }, false},
			{"AuditEvents", apikey.RoleMember, func(ctx context.Context) error { _, err := f.svc.AuditEvents(ctx, o.ID, "", 10); return err }, false},
			{"Authorize member", apikey.RoleMember, func(ctx context.Context) error {
				p, err := apikey.RequireJWT(ctx)
				if err != nil {
					return err
				}
				_, err = f.svc.Authorize(ctx, p, o.ID, apikey.RoleMember)
				return err
			}, false},
			{"Authorize admin", apikey.RoleAdmin, func(ctx context.Context) error {
				p, err := apikey.RequireJWT(ctx)
				if err != nil {
					return err
				}
				_, err = f.svc.Authorize(ctx, p, o.ID, apikey.RoleAdmin)
				return err
			}, false},
			{"Invitations", apikey.RoleAdmin, func(ctx context.Context) error { _, err := f.svc.Invitations(ctx, o.ID); return err }, false},
			{"CreateInvitation", apikey.RoleAdmin, func(ctx context.Context) error {
				_, err := f.svc.CreateInvitation(ctx, o.ID, org.InvitationInput{Role: apikey.RoleAdmin})
				return err
			}, false},
			{"CreateInvitation of an owner", apikey.RoleOwner, func(ctx context.Context) error {
				_, err := f.svc.CreateInvitation(ctx, o.ID, org.InvitationInput{Role: apikey.RoleOwner})
				return err
			}, false},
			{"RevokeInvitation", apikey.RoleAdmin, func(ctx context.Context) error {
				inv := f.invite(t, o.ID, "alice", apikey.RoleMember, nil)
				return f.svc.RevokeInvitation(ctx, o.ID, inv.ID)
			}, false},
			{"Update", apikey.RoleOwner, func(ctx context.Context) error {
				_, err := f.svc.Update(ctx, o.ID, org.UpdateInput{MaxKeyLifetime: apikey.Optional[*time.Duration]{Set: true, Value: &lifetime}})
				return err
			}, false},
			{"UpdateMember", apikey.RoleOwner, func(ctx context.Context) error {
				_, err := f.svc.UpdateMember(ctx, o.ID, "dave", apikey.RoleMember)
				return err
			}, false},
			{"RemoveMember of another", apikey.RoleOwner, func(ctx context.Context) error { return f.svc.RemoveMember(ctx, o.ID, "dave") }, true},
			{"Delete", apikey.RoleOwner, func(ctx context.Context) error { return f.svc.Delete(ctx, o.ID) }, true},
		}
		callers := []struct {
			user string
			role apikey.Role // "": not a member
		}{{"mallory", ""}, {"bob", apikey.RoleMember}, {"carol", apikey.RoleAdmin}, {"alice", apikey.RoleOwner}}
		for _, op := range ops {
			for _, c := range callers {
				what := fmt.Sprintf("%s by %s (%s)", op.name, c.user, c.role)
				allowed := c.role.AtLeast(op.need)
				if allowed && op.destructive {
					continue
				}
				err := op.do(as(c.user))
				switch {
				case c.role == "":
					wantOrgNotFound(t, what, err)
				case !allowed:
					wantCode(t, what, err, apperr.InsufficientRole)
				case err != nil:
					t.Errorf("%s: %v", what, err)
				}
			}
			wantCode(t, op.name+" with an API key", op.do(byKey("alice")), apperr.JWTRequired)
		}
		if r := f.roles(t, o.ID); len(r) != 5 {
			t.Errorf("members after the refusals: %v", r)
		}
		g, err := f.svc.Authorize(as("carol"), apikey.Principal{UserID: "carol", Method: apikey.MethodJWT}, o.ID, apikey.RoleAdmin)
		if err != nil || g != (apikey.OrgGrant{OrgID: o.ID, Role: apikey.RoleAdmin, MaxKeyLifetime: time.Hour}) {
			t.Errorf("Authorize = %+v, %v", g, err)
		}

		// An owner deletes; then the organisation is gone for everyone.
		if err := f.svc.Delete(as("erin"), o.ID); err != nil {
			t.Fatal(err)
		}
		for _, c := range callers {
			_, err := f.svc.Get(as(c.user), o.ID)
			wantOrgNotFound(t, "Get after Delete by "+c.user, err)
		}
	})
}

func TestLastOwner(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		f := newFixture(t, dsn, org.Config{})
		o := f.create(t, "alice", "Acme")
		f.join(t, o.ID, "alice", "bob", apikey.RoleAdmin)
		before := f.eventCount(t)
		wantCode(t, "the last owner leaves", f.svc.RemoveMember(as("alice"), o.ID, "alice"), apperr.LastOwner)
		_, err := f.svc.UpdateMember(as("alice"), o.ID, "alice", apikey.RoleAdmin)
		wantCode(t, "the last owner demotes herself", err, apperr.LastOwner)
		if n := f.eventCount(t); n != before {
			t.Errorf("%d events after refusals, want %d", n, before)
		}
		// Another owner: then either may go.
		m, err := f.svc.UpdateMember(as("alice"), o.ID, "bob", apikey.RoleOwner)
		if err != nil || m.UserID != "bob" || m.Role != apikey.RoleOwner {
			t.Fatalf("promote: %+v, %v", m, err)
		}
		if ev := f.last(t, o.ID, audit.OrgMemberRoleChanged, "alice"); details(t, ev) != `{"role":{"new":"owner","old":"admin"},"user_id":"bob"}` {
			t.Errorf("role_changed details %s", details(t, ev))
		}
		if _, err := f.svc.UpdateMember(as("alice"), o.ID, "alice", apikey.RoleMember); err != nil {
			t.Fatal(err)
		}
		wantCode(t, "bob, now the last owner, leaves", f.svc.RemoveMember(as("bob"), o.ID, "bob"), apperr.LastOwner)
		// The last owner stays whoever asks: LAST_OWNER comes first.
		wantCode(t, "alice, a member, removes bob", f.svc.RemoveMember(as("alice"), o.ID, "bob"), apperr.LastOwner)
		_, err = f.svc.UpdateMember(as("alice"), o.ID, "bob", apikey.RoleMember)
		wantCode(t, "alice, a member, demotes bob", err, apperr.LastOwner)
		if err := f.svc.RemoveMember(as("bob"), o.ID, "alice"); err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.UpdateMember(as("bob"), o.ID, "bob", apikey.RoleAdmin)
		wantCode(t, "bob alone demotes himself", err, apperr.LastOwner)

		// Concurrent demotions of the last two owners, by each other or
		// each of themself: exactly one wins, whichever it is, and the
		// other is LAST_OWNER (even when the winner demoted the loser
		// before the loser's request was authorised).
		for round := range 8 {
			o := f.create(t, "alice", fmt.Sprint("Race ", round))
			f.join(t, o.ID, "alice", "bob", apikey.RoleOwner)
			pairs := [][2]string{{"alice", "bob"}, {"bob", "alice"}}
			if round%2 == 1 {
				pairs = [][2]string{{"alice", "alice"}, {"bob", "bob"}}
			}
			var wg sync.WaitGroup
			start := make(chan struct{})
			errs := make([]error, 2)
			for i, pair := range pairs {
				wg.Go(func() {
					<-start
					_, errs[i] = f.svc.UpdateMember(as(pair[0]), o.ID, pair[1], apikey.RoleAdmin)
				})
			}
			close(start)
			wg.Wait()
			codes := []apperr.Code{apperr.CodeOf(errs[0]), apperr.CodeOf(errs[1])}
			slices.Sort(codes)
			if codes[0] != "" || codes[1] != apperr.LastOwner {
				t.Errorf("round %d (%v): concurrent demotions gave %v and %v; want one success and one LAST_OWNER", round, pairs, errs[0], errs[1])
			}
			owners := 0
			for _, r := range f.roles(t, o.ID) {
				if r == apikey.RoleOwner {
					owners++
				}
			}
			if owners != 1 {
				t.Errorf("round %d: %d owners left, want 1", round, owners)
			}
		}
	})
}

// TestRemoveMember: a removed member loses access at once; their keys, and
// the organisation's keys they made, are untouched.
func TestRemoveMember(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		f := newFixture(t, dsn, org.Config{})
		o := f.create(t, "alice", "Acme")
		f.join(t, o.ID, "alice", "bob", apikey.RoleAdmin)
		f.join(t, o.ID, "alice", "carol", apikey.RoleMember)
		f.join(t, o.ID, "alice", "dave", apikey.RoleMember)
		orgKey := f.key(t, "bob", o.ID)
		personal := f.key(t, "bob", "")

		if err := f.svc.RemoveMember(as("alice"), o.ID, "bob"); err != nil {
			t.Fatal(err)
		}
		if ev := f.last(t, o.ID, audit.OrgMemberRemoved, "alice"); details(t, ev) != `{"role":"admin","user_id":"bob"}` {
			t.Errorf("member.removed details %s", details(t, ev))
		}
		_, err := f.svc.Get(as("bob"), o.ID)
		wantOrgNotFound(t, "Get by a removed member", err)
		_, err = f.svc.Authorize(as("bob"), apikey.Principal{UserID: "bob", Method: apikey.MethodJWT}, o.ID, apikey.RoleMember)
		wantOrgNotFound(t, "Authorize of a removed member", err)
		if f.revoked(t, orgKey.Hash) || f.revoked(t, personal.Hash) {
			t.Error("a removal revoked keys")
		}
		keys, err := f.st.ListKeys(context.Background(), apikey.OrgOwner(o.ID))
		if err != nil || len(keys) != 1 || keys[0].ID != orgKey.ID || keys[0].UserID != "bob" {
			t.Errorf("the organisation's keys after the removal: %+v, %v", keys, err)
		}
		wantCode(t, "removing bob again", f.svc.RemoveMember(as("alice"), o.ID, "bob"), apperr.NotFound)
		wantCode(t, "carol, a member, removes dave", f.svc.RemoveMember(as("carol"), o.ID, "dave"), apperr.InsufficientRole)
		wantCode(t, "carol removes alice, the last owner", f.svc.RemoveMember(as("carol"), o.ID, "alice"), apperr.LastOwner)

		// A member leaves by themself.
		if err := f.svc.RemoveMember(as("carol"), o.ID, "carol"); err != nil {
			t.Fatal(err)
		}
		f.last(t, o.ID, audit.OrgMemberRemoved, "carol")
		members, err := f.svc.Members(as("alice"), o.ID)
		if err != nil || len(members) != 2 || members[0].UserID != "alice" || members[1].UserID != "dave" {
			t.Errorf("members left: %+v, %v", members, err)
		}
	})
}

func TestInvitations(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		f := newFixture(t, dsn, org.Config{})
		o := f.create(t, "alice", "Acme")
		f.join(t, o.ID, "alice", "carol", apikey.RoleAdmin)

		email := "  Bob@Example.com "
		inv, err := f.svc.CreateInvitation(as("carol"), o.ID, org.InvitationInput{Role: apikey.RoleMember, Email: &email})
		if err != nil {
			t.Fatal(err)
		}
		if !regexp.MustCompile(`^inv_[0-9A-Za-z]{32}$`).MatchString(inv.Token) {
			t.Errorf("token %q is not inv_ and 32 base62 characters", inv.Token)
		}
		if _, err := uuid.Parse(inv.ID); err != nil || inv.OrgID != o.ID || inv.Role != apikey.RoleMember ||
			inv.Email == nil || *inv.Email != "Bob@Example.com" || inv.CreatedBy != "carol" ||
			!inv.CreatedAt.Equal(base) || !inv.ExpiresAt.Equal(base.Add(7*24*time.Hour)) || inv.AcceptedAt != nil || inv.RevokedAt != nil {
			t.Errorf("invitation %+v", inv.Invitation)
		}
		// Stored as its SHA-256, the token nowhere.
		var stored string
		if err := f.db.NewSelect().Table("org_invitations").Column("token_hash").Where("id = ?", inv.ID).Scan(ctx, &stored); err != nil {
			t.Fatal(err)
		}
		if stored != apikey.Hash(inv.Token) {
			t.Errorf("token_hash %q, want the SHA-256 of the token", stored)
		}
		ev := f.last(t, o.ID, audit.OrgInvitationCreated, "carol")
		want := fmt.Sprintf(`{"email":"Bob@Example.com","expires_at":"2026-12-08T12:00:00.000Z","invitation_id":%q,"role":"member"}`, inv.ID)
		if got := details(t, ev); got != want {
			t.Errorf("invitation.created details %s, want %s", got, want)
		}
		if b, _ := json.Marshal(ev.ToJSON()); strings.Contains(string(b), inv.Token[4:]) || strings.Contains(string(b), stored) {
			t.Error("the event holds the token or its hash")
		}
		list, err := f.svc.Invitations(as("carol"), o.ID)
		if err != nil || len(list) != 1 || list[0].ID != inv.ID || list[0].Role != apikey.RoleMember || *list[0].Email != "Bob@Example.com" {
			t.Errorf("Invitations = %+v, %v", list, err)
		}

		// Without built-in accounts the email binds nobody; single use.
		f.clock.Advance(time.Minute)
		joined, err := f.svc.AcceptInvitation(as("bob"), inv.Token)
		if err != nil || joined.ID != o.ID || joined.Role != apikey.RoleMember || joined.Name != "Acme" {
			t.Fatalf("accept: %+v, %v", joined, err)
		}
		evs := f.events(t, o.ID)
		if evs[0].Action != audit.OrgMemberAdded || evs[1].Action != audit.OrgInvitationAccepted {
			t.Fatalf("events after accept: %s, %s", evs[0].Action, evs[1].Action)
		}
		for _, ev := range evs[:2] {
			if ev.UserID != "bob" || ev.OrgID != o.ID {
				t.Errorf("%s: user %q org %q", ev.Action, ev.UserID, ev.OrgID)
			}
		}
		if got, want := details(t, evs[0]), fmt.Sprintf(`{"invitation_id":%q,"role":"member","user_id":"bob"}`, inv.ID); got != want {
			t.Errorf("member.added details %s, want %s", got, want)
		}
		before := f.eventCount(t)
		_, err = f.svc.AcceptInvitation(as("dave"), inv.Token)
		wantCode(t, "a used invitation", err, apperr.NotFound)
		_, err = f.svc.AcceptInvitation(as("bob"), inv.Token)
		wantCode(t, "a used invitation, by its user", err, apperr.NotFound)
		if list, _ := f.svc.Invitations(as("carol"), o.ID); len(list) != 0 {
			t.Errorf("a used invitation is listed: %+v", list)
		}

		// Expiry, by the app's clock: up to the last millisecond.
		early := f.invite(t, o.ID, "alice", apikey.RoleMember, nil)
		late := f.invite(t, o.ID, "alice", apikey.RoleMember, nil)
		before += 2
		f.clock.Advance(7*24*time.Hour - time.Millisecond)
		if _, err := f.svc.AcceptInvitation(as("erin"), early.Token); err != nil {
			t.Fatalf("accept in the last millisecond: %v", err)
		}
		before += 2
		f.clock.Advance(time.Millisecond)
		_, err = f.svc.AcceptInvitation(as("dave"), late.Token)
		wantCode(t, "an expired invitation", err, apperr.NotFound)
		if list, _ := f.svc.Invitations(as("carol"), o.ID); len(list) != 0 {
			t.Errorf("an expired invitation is listed: %+v", list)
		}

		// Revoked.
		revoked := f.invite(t, o.ID, "carol", apikey.RoleAdmin, nil)
		if err := f.svc.RevokeInvitation(as("carol"), o.ID, revoked.ID); err != nil {
			t.Fatal(err)
		}
		if ev := f.last(t, o.ID, audit.OrgInvitationRevoked, "carol"); details(t, ev) != fmt.Sprintf(`{"invitation_id":%q}`, revoked.ID) {
			t.Errorf("invitation.revoked details %s", details(t, ev))
		}
		before += 2
		wantCode(t, "revoking twice", f.svc.RevokeInvitation(as("carol"), o.ID, revoked.ID), apperr.NotFound)
		_, err = f.svc.AcceptInvitation(as("dave"), revoked.Token)
		wantCode(t, "a revoked invitation", err, apperr.NotFound)
		_, err = f.svc.AcceptInvitation(as("dave"), "inv_"+strings.Repeat("A", 32))
		wantCode(t, "an unknown token", err, apperr.NotFound)
		other := f.create(t, "zoe", "Other")
		before++
		otherInv := f.invite(t, other.ID, "zoe", apikey.RoleMember, nil)
		before++
		wantCode(t, "revoking another organisation's invitation", f.svc.RevokeInvitation(as("alice"), o.ID, otherInv.ID), apperr.NotFound)
		if n := f.eventCount(t); n != before {
			t.Errorf("%d events after the refused accepts, want %d", n, before)
		}
		if r := f.roles(t, o.ID); r["dave"] != "" {
			t.Errorf("a refused accept made dave a member: %v", r)
		}

		// An admin invites admins and members, never owners.
		_, err = f.svc.CreateInvitation(as("carol"), o.ID, org.InvitationInput{Role: apikey.RoleOwner})
		wantCode(t, "an admin invites an owner", err, apperr.InsufficientRole)

		// A member already: the higher role of the two, and the invitation
		// is used up either way.
		up := f.invite(t, o.ID, "alice", apikey.RoleAdmin, nil)
		got, err := f.svc.AcceptInvitation(as("bob"), up.Token)
		if err != nil || got.Role != apikey.RoleAdmin {
			t.Errorf("a member accepts admin: %+v, %v", got, err)
		}
		if ev := f.last(t, o.ID, audit.OrgMemberRoleChanged, "bob"); details(t, ev) !=
			fmt.Sprintf(`{"invitation_id":%q,"role":{"new":"admin","old":"member"},"user_id":"bob"}`, up.ID) {
			t.Errorf("role_changed on accept: %s", details(t, ev))
		}
		down := f.invite(t, o.ID, "alice", apikey.RoleMember, nil)
		got, err = f.svc.AcceptInvitation(as("alice"), down.Token)
		if err != nil || got.Role != apikey.RoleOwner {
			t.Errorf("an owner accepts member: %+v, %v", got, err)
		}
		f.last(t, o.ID, audit.OrgInvitationAccepted, "alice")
		if r := f.roles(t, o.ID); r["alice"] != apikey.RoleOwner || r["bob"] != apikey.RoleAdmin {
			t.Errorf("roles after accepting again: %v", r)
		}
		_, err = f.svc.AcceptInvitation(as("dave"), down.Token)
		wantCode(t, "an invitation a member used", err, apperr.NotFound)

		// Deleted with its organisation.
		gone := f.invite(t, o.ID, "alice", apikey.RoleMember, nil)
		if err := f.svc.Delete(as("alice"), o.ID); err != nil {
			t.Fatal(err)
		}
		_, err = f.svc.AcceptInvitation(as("dave"), gone.Token)
		wantCode(t, "an invitation of a deleted organisation", err, apperr.NotFound)
	})
}

// TestInvitationEmail: with built-in accounts, an invitation that names an
// email is for that account only.
func TestInvitationEmail(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		ctx := context.Background()
		f := newFixture(t, dsn, org.Config{Accounts: true})
		user := func(email string) string {
			trimmed, normalized, err := account.NormalizeEmail(email)
			if err != nil {
				t.Fatal(err)
			}
			id := uuid.Must(uuid.NewV7()).String()
			if err := f.st.CreateUser(ctx, account.StoredUser{
				User:            account.User{ID: id, Email: trimmed, CreatedAt: base},
				EmailNormalized: normalized,
				PasswordHash:    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$" + strings.Repeat("A", 43),
			}, audit.Event{}); err != nil {
				t.Fatal(err)
			}
			return id
		}
		alice, bob, carol := user("alice@example.com"), user("Bob@Example.COM"), user("carol@example.com")
		o := f.create(t, alice, "Acme")
		email := "bob@example.com"
		inv := f.invite(t, o.ID, alice, apikey.RoleMember, &email)
		before := f.eventCount(t)
		for who, id := range map[string]string{"carol": carol, "a user without an account": "ext|1234"} {
			_, err := f.svc.AcceptInvitation(as(id), inv.Token)
			wantCode(t, "accepted by "+who, err, apperr.InvitationEmailMismatch)
			if strings.Contains(err.Error(), "example.com") {
				t.Errorf("the refusal %q names an email", err)
			}
		}
		if n := f.eventCount(t); n != before {
			t.Errorf("%d events after refusals, want %d", n, before)
		}
		if list, _ := f.svc.Invitations(as(alice), o.ID); len(list) != 1 {
			t.Errorf("a refused accept used the invitation up: %+v", list)
		}
		if got, err := f.svc.AcceptInvitation(as(bob), inv.Token); err != nil || got.Role != apikey.RoleMember {
			t.Errorf("accepted by bob, whatever the case: %+v, %v", got, err)
		}
		members, err := f.svc.Members(as(bob), o.ID)
		if err != nil || len(members) != 2 {
			t.Fatalf("Members = %+v, %v", members, err)
		}
		for _, m := range members {
			if m.Email == nil || (m.UserID == bob) != (*m.Email == "Bob@Example.COM") {
				t.Errorf("member %s has the email %v", m.UserID, m.Email)
			}
		}
		// Without an email: anyone with the token.
		open := f.invite(t, o.ID, alice, apikey.RoleMember, nil)
		if _, err := f.svc.AcceptInvitation(as(carol), open.Token); err != nil {
			t.Errorf("an invitation naming no email: %v", err)
		}
	})
}

func TestUpdate(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		f := newFixture(t, dsn, org.Config{})
		o := f.create(t, "alice", "Acme")
		day := 24 * time.Hour
		got, err := f.svc.Update(as("alice"), o.ID, org.UpdateInput{
			Name:           apikey.Optional[string]{Set: true, Value: " Acme Inc. "},
			MaxKeyLifetime: apikey.Optional[*time.Duration]{Set: true, Value: &day},
		})
		if err != nil || got.Name != "Acme Inc." || got.MaxKeyLifetime != day || got.Role != apikey.RoleOwner || !got.CreatedAt.Equal(o.CreatedAt) {
			t.Fatalf("Update = %+v, %v", got, err)
		}
		if ev := f.last(t, o.ID, audit.OrgUpdated, "alice"); details(t, ev) !=
			`{"max_key_lifetime_seconds":{"new":86400,"old":null},"name":{"new":"Acme Inc.","old":"Acme"}}` {
			t.Errorf("org.updated details %s", details(t, ev))
		}
		if g, _ := f.svc.Get(as("alice"), o.ID); !same(g, got) {
			t.Errorf("Get after Update = %+v, want %+v", g, got)
		}
		// Nothing changed, nothing recorded; an absent field stays.
		before := f.eventCount(t)
		if g, err := f.svc.Update(as("alice"), o.ID, org.UpdateInput{Name: apikey.Optional[string]{Set: true, Value: "Acme Inc."}}); err != nil || !same(g, got) {
			t.Errorf("a change to the same = %+v, %v", g, err)
		}
		if g, err := f.svc.Update(as("alice"), o.ID, org.UpdateInput{}); err != nil || !same(g, got) {
			t.Errorf("an empty change = %+v, %v", g, err)
		}
		if n := f.eventCount(t); n != before {
			t.Errorf("%d events after changes of nothing, want %d", n, before)
		}
		// null lifts the limit; the longest is allowed.
		g, err := f.svc.Update(as("alice"), o.ID, org.UpdateInput{MaxKeyLifetime: apikey.Optional[*time.Duration]{Set: true}})
		if err != nil || g.MaxKeyLifetime != 0 || g.Name != "Acme Inc." {
			t.Errorf("null lifetime = %+v, %v", g, err)
		}
		if ev := f.last(t, o.ID, audit.OrgUpdated, "alice"); details(t, ev) != `{"max_key_lifetime_seconds":{"new":null,"old":86400}}` {
			t.Errorf("org.updated details %s", details(t, ev))
		}
		longest := org.LongestKeyLifetime
		if g, err := f.svc.Update(as("alice"), o.ID, org.UpdateInput{MaxKeyLifetime: apikey.Optional[*time.Duration]{Set: true, Value: &longest}}); err != nil || g.MaxKeyLifetime != longest {
			t.Errorf("the longest lifetime = %+v, %v", g, err)
		}
	})
}

// TestDelete: deleting an organisation revokes its keys, and tells this
// server's cache their hashes; other keys are untouched.
func TestDelete(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		f := newFixture(t, dsn, org.Config{})
		o := f.create(t, "alice", "Acme")
		f.join(t, o.ID, "alice", "bob", apikey.RoleAdmin)
		k1, k2 := f.key(t, "alice", o.ID), f.key(t, "bob", o.ID)
		personal := f.key(t, "alice", "")
		other := f.create(t, "alice", "Other")
		otherKey := f.key(t, "alice", other.ID)

		wantCode(t, "an admin deletes", f.svc.Delete(as("bob"), o.ID), apperr.InsufficientRole)
		f.clock.Advance(time.Second)
		if err := f.svc.Delete(as("alice"), o.ID); err != nil {
			t.Fatal(err)
		}
		f.mu.Lock()
		forgotten := slices.Sorted(slices.Values(f.forgotten))
		f.mu.Unlock()
		if want := slices.Sorted(slices.Values([]string{k1.Hash, k2.Hash})); !slices.Equal(forgotten, want) {
			t.Errorf("OnKeysRevoked got %d hashes, want the organisation's two", len(forgotten))
		}
		if !f.revoked(t, k1.Hash) || !f.revoked(t, k2.Hash) {
			t.Error("an organisation key survived its organisation")
		}
		if f.revoked(t, personal.Hash) || f.revoked(t, otherKey.Hash) {
			t.Error("a deletion revoked another owner's key")
		}
		evs, err := f.st.ListEvents(context.Background(), "alice", "", 1)
		if err != nil || len(evs) != 1 || evs[0].Action != audit.OrgDeleted || evs[0].OrgID != o.ID ||
			details(t, evs[0]) != `{"keys_revoked":2}` {
			t.Errorf("alice's last event: %+v, %v", evs, err)
		}
		for _, user := range []string{"alice", "bob"} {
			_, err := f.svc.Get(as(user), o.ID)
			wantOrgNotFound(t, "Get of a deleted organisation by "+user, err)
		}
		wantOrgNotFound(t, "deleting twice", f.svc.Delete(as("alice"), o.ID))
		if list, err := f.svc.List(as("bob")); err != nil || len(list) != 0 {
			t.Errorf("bob's organisations after the deletion: %+v, %v", list, err)
		}
	})
}

func TestIdentityProvider(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		f := newFixture(t, dsn, org.Config{IdentityProvider: true})
		if !f.svc.IdentityProvider() {
			t.Fatal("IdentityProvider() = false")
		}
		admin := claiming("alice", "org_2abc", apikey.RoleAdmin)

		// Created on first sight, named after its id, once.
		o, err := f.svc.Get(admin, "org_2abc")
		if err != nil || o.ID != "org_2abc" || o.Name != "org_2abc" || o.Role != apikey.RoleAdmin || !o.CreatedAt.Equal(base) {
			t.Fatalf("Get = %+v, %v", o, err)
		}
		if ev := f.last(t, o.ID, audit.OrgCreated, "alice"); details(t, ev) != `{"name":"org_2abc"}` {
			t.Errorf("org.created details %s", details(t, ev))
		}
		list, err := f.svc.List(claiming("bob", "org_2abc", apikey.RoleMember))
		if err != nil || len(list) != 1 || list[0].ID != "org_2abc" || list[0].Role != apikey.RoleMember {
			t.Errorf("List = %+v, %v", list, err)
		}
		if n := len(f.events(t, o.ID)); n != 1 {
			t.Errorf("%d events after two sights, want one org.created", n)
		}
		if list, err := f.svc.List(as("carol")); err != nil || len(list) != 0 {
			t.Errorf("List without an organisation in the token = %+v, %v", list, err)
		}
		// The role is the token's; a token acts for its organisation only.
		p, _ := apikey.RequireJWT(admin)
		if g, err := f.svc.Authorize(admin, p, "org_2abc", apikey.RoleAdmin); err != nil || g.Role != apikey.RoleAdmin {
			t.Errorf("Authorize admin = %+v, %v", g, err)
		}
		_, err = f.svc.Authorize(admin, p, "org_2abc", apikey.RoleOwner)
		wantCode(t, "Authorize owner with an admin claim", err, apperr.InsufficientRole)
		for _, ctx := range []context.Context{as("alice"), claiming("alice", "org_other", apikey.RoleOwner)} {
			_, err := f.svc.Get(ctx, "org_2abc")
			wantOrgNotFound(t, "Get of another organisation than the token's", err)
		}
		if g, err := f.svc.Get(claiming("zed", "org_2abc", ""), "org_2abc"); err != nil || g.Role != apikey.RoleMember {
			t.Errorf("a claim without a role: %+v, %v", g, err)
		}
		// An owner's claim renames it; a deleted one comes back on sight.
		owner := claiming("olga", "org_2abc", apikey.RoleOwner)
		if g, err := f.svc.Update(owner, "org_2abc", org.UpdateInput{Name: apikey.Optional[string]{Set: true, Value: "Acme"}}); err != nil || g.Name != "Acme" {
			t.Errorf("Update by an owner's claim = %+v, %v", g, err)
		}
		// The provider owns membership: those routes, and Create, are 404.
		refused := map[string]error{}
		_, refused["Create"] = f.svc.Create(owner, "New")
		_, refused["Members"] = f.svc.Members(owner, "org_2abc")
		_, refused["UpdateMember"] = f.svc.UpdateMember(owner, "org_2abc", "alice", apikey.RoleMember)
		refused["RemoveMember"] = f.svc.RemoveMember(owner, "org_2abc", "olga")
		_, refused["Invitations"] = f.svc.Invitations(owner, "org_2abc")
		_, refused["CreateInvitation"] = f.svc.CreateInvitation(owner, "org_2abc", org.InvitationInput{Role: apikey.RoleMember})
		_, refused["CreateInvitation with a bad role"] = f.svc.CreateInvitation(owner, "org_2abc", org.InvitationInput{Role: "boss"})
		refused["RevokeInvitation"] = f.svc.RevokeInvitation(owner, "org_2abc", uuid.NewString())
		_, refused["AcceptInvitation"] = f.svc.AcceptInvitation(owner, "inv_"+strings.Repeat("a", 32))
		for name, err := range refused {
			wantCode(t, name+" in identity-provider mode", err, apperr.NotFound)
		}
		if page, err := f.svc.AuditEvents(claiming("bob", "org_2abc", apikey.RoleMember), "org_2abc", "", 10); err != nil || len(page.Events) != 2 {
			t.Errorf("AuditEvents = %d events, %v; want org.created and org.updated", len(page.Events), err)
		}
		if err := f.svc.Delete(owner, "org_2abc"); err != nil {
			t.Fatal(err)
		}
		if g, err := f.svc.Get(admin, "org_2abc"); err != nil || g.Name != "org_2abc" {
			t.Errorf("seen again after its deletion: %+v, %v", g, err)
		}
	})
}

func TestAuditEvents(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		f := newFixture(t, dsn, org.Config{})
		o := f.create(t, "alice", "Acme")
		f.join(t, o.ID, "alice", "bob", apikey.RoleMember) // invitation.created, invitation.accepted, member.added
		f.create(t, "alice", "Another")                    // not in o's log

		var got []string
		cursor := ""
		for range 5 {
			page, err := f.svc.AuditEvents(as("bob"), o.ID, cursor, 2)
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range page.Events {
				if ev.OrgID != o.ID {
					t.Errorf("%s of another organisation in the log", ev.Action)
				}
				got = append(got, ev.Action)
			}
			if cursor = page.Next; cursor == "" {
				break
			}
		}
		want := []string{audit.OrgMemberAdded, audit.OrgInvitationAccepted, audit.OrgInvitationCreated, audit.OrgCreated}
		if !slices.Equal(got, want) {
			t.Errorf("the log, page by page: %v, want %v", got, want)
		}
		for _, first := range []int{0, -1, audit.MaxLimit + 1} {
			_, err := f.svc.AuditEvents(as("bob"), o.ID, "", first)
			wantCode(t, fmt.Sprintf("first %d", first), err, apperr.InvalidRequest)
		}
		_, err := f.svc.AuditEvents(as("bob"), o.ID, "bogus", 10)
		wantCode(t, "a bad cursor", err, apperr.InvalidRequest)
		_, err = f.svc.AuditEvents(as("mallory"), o.ID, "", 10)
		wantOrgNotFound(t, "the log read by a non-member", err)
	})
}
