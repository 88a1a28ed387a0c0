package store_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/audit"
	"github.com/apikeyd/apikeyd/internal/dbtest"
	"github.com/apikeyd/apikeyd/internal/org"
	"github.com/apikeyd/apikeyd/internal/store"
)

// orgEvent returns an event of action in the organisation orgID's log, by
// user at t.
func orgEvent(orgID, user, action string, t time.Time) audit.Event {
	ev := eventOf(user, action, t)
	ev.OrgID = orgID
	return ev
}

// newOrg stores a new organisation named name, created at t with owner as
// its owner, and returns it (without a role).
func newOrg(t *testing.T, s *store.Store, name, owner string, at time.Time) org.Org {
	t.Helper()
	o := org.Org{ID: uuid.NewString(), Name: name, CreatedAt: at.UTC().Truncate(time.Millisecond)}
	m := org.Member{UserID: owner, Role: apikey.RoleOwner, JoinedAt: o.CreatedAt}
	if err := s.CreateOrg(context.Background(), o, m, orgEvent(o.ID, owner, "org.created", at)); err != nil {
		t.Fatal(err)
	}
	return o
}

// invite stores a pending invitation to o with role, made by by at t and
// expiring a week later, and returns it and its token's hash.
func invite(t *testing.T, s *store.Store, orgID, by string, role apikey.Role, at time.Time) (org.Invitation, string) {
	t.Helper()
	at = at.UTC().Truncate(time.Millisecond)
	inv := org.NewInvitation{
		Invitation: org.Invitation{
			ID: uuid.NewString(), OrgID: orgID, Role: role, CreatedBy: by,
			CreatedAt: at, ExpiresAt: at.Add(7 * 24 * time.Hour),
		},
		TokenHash: tokenHash(uuid.NewString()),
		Event:     orgEvent(orgID, by, "org.invitation.created", at),
	}
	if err := s.CreateInvitation(context.Background(), inv); err != nil {
		t.Fatal(err)
	}
	return inv.Invitation, inv.TokenHash
}

func tokenHash(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// join accepts the invitation whose token hashes to hash for user at t,
// making user a member with the invitation's role.
func join(s *store.Store, hash, user string, at time.Time) (org.Org, error) {
	return s.AcceptInvitation(context.Background(), hash, user, at, func(inv org.Invitation, o org.Org, current *org.Member) (*org.Member, []audit.Event, error) {
		if inv.AcceptedAt != nil || inv.RevokedAt != nil || !at.Before(inv.ExpiresAt) {
			return nil, nil, apperr.New(apperr.NotFound, "invitation not found")
		}
		if current != nil && current.Role.AtLeast(inv.Role) {
			return nil, []audit.Event{orgEvent(o.ID, user, "org.invitation.accepted", at)}, nil
		}
		m := &org.Member{UserID: user, Role: inv.Role, JoinedAt: at.UTC().Truncate(time.Millisecond)}
		return m, []audit.Event{orgEvent(o.ID, user, "org.member.added", at), orgEvent(o.ID, user, "org.invitation.accepted", at)}, nil
	})
}

// addMember makes user a member of orgID with role, through an invitation.
func addMember(t *testing.T, s *store.Store, orgID, by, user string, role apikey.Role, at time.Time) {
	t.Helper()
	_, hash := invite(t, s, orgID, by, role, at)
	if _, err := join(s, hash, user, at); err != nil {
		t.Fatal(err)
	}
}

// orgEvents returns every event of the organisation, newest first.
func orgEvents(t *testing.T, s *store.Store, orgID string) []audit.Event {
	t.Helper()
	evs, err := s.ListOrgEvents(context.Background(), orgID, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func actions(evs []audit.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Action
	}
	return out
}

func wantNotFound(t *testing.T, what string, err error) {
	t.Helper()
	if apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("%s: err %v, want NOT_FOUND", what, err)
	}
}

// setRole is an UpdateMember change that sets role, refusing to demote
// the last owner with errLastOwner.
func setRole(role apikey.Role, seen *[]int, mu *sync.Mutex) func(m org.Member, owners int) (org.Member, audit.Event, error) {
	return func(m org.Member, owners int) (org.Member, audit.Event, error) {
		if mu != nil {
			mu.Lock()
			*seen = append(*seen, owners)
			mu.Unlock()
		}
		if m.Role == apikey.RoleOwner && role != apikey.RoleOwner && owners <= 1 {
			return org.Member{}, audit.Event{}, errLastOwner
		}
		m.Role = role
		return m, audit.Event{}, nil
	}
}

var errLastOwner = errors.New("the last owner")

func TestOrgs(t *testing.T) {
	ctx := context.Background()
	base := time.Date(2026, 1, 15, 12, 0, 0, 123_000_000, time.UTC)

	dbtest.Each(t, func(t *testing.T, dsn string) {
		s := mustStore(t, dsn)

		t.Run("CreateGetList", func(t *testing.T) {
			first := newOrg(t, s, "Acme", "alice", base)
			second := newOrg(t, s, "Globex", "alice", base.Add(time.Second))
			newOrg(t, s, "Initech", "bob", base)

			got, err := s.GetOrg(ctx, first.ID)
			if err != nil || got != first {
				t.Errorf("GetOrg = %+v, %v; want %+v", got, err, first)
			}
			if got.CreatedAt.Location() != time.UTC {
				t.Errorf("created_at %v not in UTC", got.CreatedAt)
			}
			m, err := s.Membership(ctx, first.ID, "alice")
			want := first
			want.Role = apikey.RoleOwner
			if err != nil || m != want {
				t.Errorf("Membership = %+v, %v; want %+v", m, err, want)
			}
			_, err = s.Membership(ctx, first.ID, "bob")
			wantNotFound(t, "Membership of a non-member", err)
			_, err = s.Membership(ctx, uuid.NewString(), "alice")
			wantNotFound(t, "Membership of no organisation", err)
			_, err = s.GetOrg(ctx, "no such org")
			wantNotFound(t, "GetOrg of no organisation", err)

			list, err := s.ListOrgs(ctx, "alice")
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 2 || list[0].ID != first.ID || list[1].ID != second.ID || list[0].Role != apikey.RoleOwner || list[1].Name != "Globex" {
				t.Errorf("ListOrgs(alice) = %+v, want Acme then Globex as owner", list)
			}
			if list, err := s.ListOrgs(ctx, "carol"); err != nil || len(list) != 0 {
				t.Errorf("ListOrgs(carol) = %+v, %v; want none", list, err)
			}
			evs := orgEvents(t, s, first.ID)
			if len(evs) != 1 || evs[0].Action != "org.created" || evs[0].OrgID != first.ID || evs[0].UserID != "alice" {
				t.Errorf("events %+v, want the one org.created", evs)
			}
		})

		t.Run("UpdateOrg", func(t *testing.T) {
			o := newOrg(t, s, "Acme", "alice", base)
			at := base.Add(time.Minute)
			got, err := s.UpdateOrg(ctx, o.ID, func(old org.Org) (org.Org, audit.Event, error) {
				if old != o {
					t.Errorf("change saw %+v, want %+v", old, o)
				}
				old.Name, old.MaxKeyLifetime = "Acme Corp", 90*24*time.Hour
				old.CreatedAt = at // not written
				return old, orgEvent(o.ID, "alice", "org.updated", at), nil
			})
			want := o
			want.Name, want.MaxKeyLifetime = "Acme Corp", 90*24*time.Hour
			if err != nil || got != want {
				t.Errorf("UpdateOrg = %+v, %v; want %+v", got, err, want)
			}
			if got, err := s.GetOrg(ctx, o.ID); err != nil || got != want {
				t.Errorf("GetOrg after update = %+v, %v; want %+v", got, err, want)
			}

			refused := errors.New("refused")
			_, err = s.UpdateOrg(ctx, o.ID, func(old org.Org) (org.Org, audit.Event, error) {
				old.Name = "Nope"
				return old, orgEvent(o.ID, "alice", "org.updated", at), refused
			})
			if !errors.Is(err, refused) {
				t.Errorf("a refusing change: err %v, want it as is", err)
			}
			// A limit removed is NULL again.
			got, err = s.UpdateOrg(ctx, o.ID, func(old org.Org) (org.Org, audit.Event, error) {
				old.MaxKeyLifetime = 0
				return old, audit.Event{}, nil
			})
			want.MaxKeyLifetime = 0
			if err != nil || got != want {
				t.Errorf("UpdateOrg removing the limit = %+v, %v; want %+v", got, err, want)
			}
			if got := actions(orgEvents(t, s, o.ID)); !slices.Equal(got, []string{"org.updated", "org.created"}) {
				t.Errorf("events %v: the refused change recorded something", got)
			}
			_, err = s.UpdateOrg(ctx, uuid.NewString(), func(old org.Org) (org.Org, audit.Event, error) {
				t.Error("change called for no organisation")
				return old, audit.Event{}, nil
			})
			wantNotFound(t, "UpdateOrg of no organisation", err)
		})

		t.Run("EnsureOrg", func(t *testing.T) {
			o := org.Org{ID: "org_2abc", Name: "From the provider", CreatedAt: base}
			got, err := s.EnsureOrg(ctx, o, orgEvent(o.ID, "alice", "org.created", base))
			if err != nil || got != o {
				t.Fatalf("EnsureOrg (insert) = %+v, %v; want %+v", got, err, o)
			}
			again := org.Org{ID: o.ID, Name: "Renamed", CreatedAt: base.Add(time.Hour)}
			got, err = s.EnsureOrg(ctx, again, orgEvent(o.ID, "bob", "org.created", base))
			if err != nil || got != o {
				t.Errorf("EnsureOrg (existing) = %+v, %v; want the stored %+v", got, err, o)
			}
			if got := actions(orgEvents(t, s, o.ID)); !slices.Equal(got, []string{"org.created"}) {
				t.Errorf("events %v, want one org.created", got)
			}
			if members, err := s.Members(ctx, o.ID); err != nil || len(members) != 0 {
				t.Errorf("Members = %+v, %v; want none", members, err)
			}

			// Deleted, then named again: live again, as the provider names it now.
			if _, err := s.DeleteOrg(ctx, o.ID, base.Add(time.Hour), audit.Event{}); err != nil {
				t.Fatal(err)
			}
			got, err = s.EnsureOrg(ctx, again, orgEvent(o.ID, "bob", "org.created", base.Add(2*time.Hour)))
			if err != nil || got != again {
				t.Errorf("EnsureOrg (deleted) = %+v, %v; want %+v", got, err, again)
			}
			if got, err := s.GetOrg(ctx, o.ID); err != nil || got != again {
				t.Errorf("GetOrg = %+v, %v; want %+v", got, err, again)
			}
			if got := actions(orgEvents(t, s, o.ID)); !slices.Equal(got, []string{"org.created", "org.created"}) {
				t.Errorf("events %v, want two org.created", got)
			}
		})

		t.Run("ConcurrentEnsureOrgInsertsOnce", func(t *testing.T) {
			const n = 8
			for round := range 3 {
				o := org.Org{ID: "concurrent-" + uuid.NewString(), Name: "Org", CreatedAt: base.Add(time.Duration(round) * time.Second)}
				var wg sync.WaitGroup
				for range n {
					wg.Go(func() {
						got, err := s.EnsureOrg(ctx, o, orgEvent(o.ID, "alice", "org.created", base))
						if err != nil || got != o {
							t.Errorf("EnsureOrg = %+v, %v; want %+v", got, err, o)
						}
					})
				}
				wg.Wait()
				if got := orgEvents(t, s, o.ID); len(got) != 1 {
					t.Errorf("%d concurrent EnsureOrg recorded %d events, want 1 (one insert)", n, len(got))
				}
			}
		})

		t.Run("MembersAndEmails", func(t *testing.T) {
			u := newUser(t, "Dana@Example.com", base)
			if err := s.CreateUser(ctx, u, audit.Event{}); err != nil {
				t.Fatal(err)
			}
			o := newOrg(t, s, "Acme", u.ID, base)
			noAccount := uuid.NewString()
			addMember(t, s, o.ID, u.ID, "idp|subject-1", apikey.RoleAdmin, base.Add(time.Second))
			addMember(t, s, o.ID, u.ID, noAccount, apikey.RoleMember, base.Add(2*time.Second))
			addMember(t, s, o.ID, u.ID, "UPPER-"+u.ID, apikey.RoleMember, base.Add(3*time.Second))

			members, err := s.Members(ctx, o.ID)
			if err != nil {
				t.Fatal(err)
			}
			type line struct {
				user  string
				email string
				role  apikey.Role
				at    time.Time
			}
			var got []line
			for _, m := range members {
				email := "<nil>"
				if m.Email != nil {
					email = *m.Email
				}
				got = append(got, line{m.UserID, email, m.Role, m.JoinedAt})
			}
			want := []line{
				{u.ID, "Dana@Example.com", apikey.RoleOwner, base},
				{"idp|subject-1", "<nil>", apikey.RoleAdmin, base.Add(time.Second)},
				{noAccount, "<nil>", apikey.RoleMember, base.Add(2 * time.Second)},
				{"UPPER-" + u.ID, "<nil>", apikey.RoleMember, base.Add(3 * time.Second)},
			}
			if !slices.Equal(got, want) {
				t.Errorf("Members =\n%v\nwant\n%v", got, want)
			}

			for user, want := range map[string]string{u.ID: "Dana@Example.com", noAccount: "<nil>", "idp|subject-1": "<nil>", "": "<nil>"} {
				email, err := s.UserEmail(ctx, user)
				got := "<nil>"
				if email != nil {
					got = *email
				}
				if err != nil || got != want {
					t.Errorf("UserEmail(%q) = %s, %v; want %s", user, got, err, want)
				}
			}
			_, err = s.Members(ctx, uuid.NewString())
			wantNotFound(t, "Members of no organisation", err)
		})

		t.Run("UpdateAndRemoveMember", func(t *testing.T) {
			o := newOrg(t, s, "Acme", "alice", base)
			addMember(t, s, o.ID, "alice", "bob", apikey.RoleMember, base)
			at := base.Add(time.Minute)
			got, err := s.UpdateMember(ctx, o.ID, "bob", func(m org.Member, owners int) (org.Member, audit.Event, error) {
				if m.UserID != "bob" || m.Role != apikey.RoleMember || owners != 1 {
					t.Errorf("change saw %+v with %d owners; want bob, member, 1", m, owners)
				}
				m.Role = apikey.RoleAdmin
				return m, orgEvent(o.ID, "alice", "org.member.role_changed", at), nil
			})
			if err != nil || got.UserID != "bob" || got.Role != apikey.RoleAdmin || !got.JoinedAt.Equal(base) {
				t.Errorf("UpdateMember = %+v, %v; want bob as admin", got, err)
			}
			if m, err := s.Membership(ctx, o.ID, "bob"); err != nil || m.Role != apikey.RoleAdmin {
				t.Errorf("Membership = %+v, %v; want admin", m, err)
			}
			_, err = s.UpdateMember(ctx, o.ID, "alice", setRole(apikey.RoleAdmin, nil, nil))
			if !errors.Is(err, errLastOwner) {
				t.Errorf("demoting the last owner: err %v, want the change's as is", err)
			}
			_, err = s.UpdateMember(ctx, o.ID, "carol", setRole(apikey.RoleAdmin, nil, nil))
			wantNotFound(t, "UpdateMember of a non-member", err)

			refused := errors.New("refused")
			err = s.RemoveMember(ctx, o.ID, "bob", func(m org.Member, owners int) (audit.Event, error) {
				return orgEvent(o.ID, "alice", "org.member.removed", at), refused
			})
			if !errors.Is(err, refused) {
				t.Errorf("a refusing check: err %v, want it as is", err)
			}
			if _, err := s.Membership(ctx, o.ID, "bob"); err != nil {
				t.Errorf("bob removed by a refusing check: %v", err)
			}
			err = s.RemoveMember(ctx, o.ID, "bob", func(m org.Member, owners int) (audit.Event, error) {
				if m.UserID != "bob" || m.Role != apikey.RoleAdmin || owners != 1 {
					t.Errorf("check saw %+v with %d owners; want bob, admin, 1", m, owners)
				}
				return orgEvent(o.ID, "alice", "org.member.removed", at), nil
			})
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Membership(ctx, o.ID, "bob")
			wantNotFound(t, "Membership of a removed member", err)
			err = s.RemoveMember(ctx, o.ID, "bob", func(org.Member, int) (audit.Event, error) { return audit.Event{}, nil })
			wantNotFound(t, "RemoveMember of a non-member", err)
			want := []string{"org.member.removed", "org.member.role_changed", "org.invitation.accepted", "org.member.added", "org.invitation.created", "org.created"}
			if got := actions(orgEvents(t, s, o.ID)); !slices.Equal(got, want) {
				t.Errorf("events %v, want %v", got, want)
			}
		})

		t.Run("ConcurrentDemotionsOfTheLastTwoOwners", func(t *testing.T) {
			for round := range 5 {
				o := newOrg(t, s, "Acme", "alice", base)
				addMember(t, s, o.ID, "alice", "bob", apikey.RoleOwner, base)
				var mu sync.Mutex
				var seen []int
				var changed, refused atomic.Int32
				var wg sync.WaitGroup
				for _, user := range []string{"alice", "bob"} {
					wg.Go(func() {
						_, err := s.UpdateMember(ctx, o.ID, user, setRole(apikey.RoleAdmin, &seen, &mu))
						switch {
						case err == nil:
							changed.Add(1)
						case errors.Is(err, errLastOwner):
							refused.Add(1)
						default:
							t.Errorf("UpdateMember(%s): %v", user, err)
						}
					})
				}
				wg.Wait()
				slices.Sort(seen)
				if changed.Load() != 1 || refused.Load() != 1 || !slices.Equal(seen, []int{1, 2}) {
					t.Fatalf("round %d: %d changed, %d refused, owners seen %v; want 1, 1, [1 2]", round, changed.Load(), refused.Load(), seen)
				}
				members, err := s.Members(ctx, o.ID)
				if err != nil {
					t.Fatal(err)
				}
				owners := 0
				for _, m := range members {
					if m.Role == apikey.RoleOwner {
						owners++
					}
				}
				if owners != 1 {
					t.Fatalf("round %d: %d owners left, want 1", round, owners)
				}
			}
		})

		t.Run("Invitations", func(t *testing.T) {
			o := newOrg(t, s, "Acme", "alice", base)
			other := newOrg(t, s, "Globex", "alice", base)
			first, _ := invite(t, s, o.ID, "alice", apikey.RoleAdmin, base)
			email := "erin@example.com"
			withEmail := org.NewInvitation{
				Invitation: org.Invitation{ID: uuid.NewString(), OrgID: o.ID, Role: apikey.RoleMember, Email: &email, CreatedBy: "alice",
					CreatedAt: base.Add(time.Second), ExpiresAt: base.Add(time.Hour)},
				TokenHash: tokenHash("second"),
			}
			if err := s.CreateInvitation(ctx, withEmail); err != nil {
				t.Fatal(err)
			}
			revoked, _ := invite(t, s, o.ID, "alice", apikey.RoleMember, base.Add(2*time.Second))
			_, acceptedHash := invite(t, s, o.ID, "alice", apikey.RoleMember, base.Add(3*time.Second))
			if _, err := join(s, acceptedHash, "frank", base.Add(4*time.Second)); err != nil {
				t.Fatal(err)
			}
			invite(t, s, other.ID, "alice", apikey.RoleMember, base)

			now := base.Add(5 * time.Second)
			if err := s.RevokeInvitation(ctx, o.ID, revoked.ID, now, orgEvent(o.ID, "alice", "org.invitation.revoked", now)); err != nil {
				t.Fatal(err)
			}
			list, err := s.Invitations(ctx, o.ID, now)
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 2 || list[0] != first || list[1].ID != withEmail.ID || list[1].Email == nil || *list[1].Email != email {
				t.Errorf("Invitations = %+v, want %+v then the one for %s", list, first, email)
			}
			// At its expiry an invitation is no longer pending.
			if list, err := s.Invitations(ctx, o.ID, base.Add(time.Hour)); err != nil || len(list) != 1 || list[0].ID != first.ID {
				t.Errorf("Invitations an hour later = %+v, %v; want the first only", list, err)
			}

			for name, id := range map[string]string{
				"again":                revoked.ID,
				"malformed":            "not-a-uuid",
				"upper case":           "ABCDEF00-0000-0000-0000-000000000000",
				"of another org":       "",
				"unknown":              uuid.NewString(),
				"expired (an hour on)": withEmail.ID,
			} {
				at := now
				switch name {
				case "of another org":
					err := s.RevokeInvitation(ctx, other.ID, first.ID, now, orgEvent(other.ID, "alice", "org.invitation.revoked", now))
					wantNotFound(t, "RevokeInvitation "+name, err)
					continue
				case "expired (an hour on)":
					at = base.Add(time.Hour)
				}
				err := s.RevokeInvitation(ctx, o.ID, id, at, orgEvent(o.ID, "alice", "org.invitation.revoked", at))
				wantNotFound(t, "RevokeInvitation "+name, err)
			}
			want := []string{"org.invitation.revoked", "org.invitation.accepted", "org.member.added", "org.invitation.created", "org.invitation.created", "org.invitation.created", "org.created"}
			if got := actions(orgEvents(t, s, o.ID)); !slices.Equal(got, want) {
				t.Errorf("events %v, want %v (nothing recorded by a revoke that found nothing)", got, want)
			}
			_, err = s.Invitations(ctx, uuid.NewString(), now)
			wantNotFound(t, "Invitations of no organisation", err)
			_, err = invite2(s, uuid.NewString(), now)
			wantNotFound(t, "CreateInvitation in no organisation", err)
		})

		t.Run("AcceptInvitation", func(t *testing.T) {
			o := newOrg(t, s, "Acme", "alice", base)
			inv, hash := invite(t, s, o.ID, "alice", apikey.RoleAdmin, base)
			at := base.Add(time.Minute)
			var saw org.Invitation
			got, err := s.AcceptInvitation(ctx, hash, "bob", at, func(i org.Invitation, oo org.Org, current *org.Member) (*org.Member, []audit.Event, error) {
				saw = i
				if oo != o || current != nil {
					t.Errorf("accept saw %+v, %+v; want %+v and no membership", oo, current, o)
				}
				return &org.Member{UserID: "bob", Role: i.Role, JoinedAt: at}, []audit.Event{orgEvent(o.ID, "bob", "org.member.added", at)}, nil
			})
			want := o
			want.Role = apikey.RoleAdmin
			if err != nil || got != want {
				t.Errorf("AcceptInvitation = %+v, %v; want %+v", got, err, want)
			}
			if saw != inv {
				t.Errorf("accept saw %+v, want %+v", saw, inv)
			}
			if m, err := s.Membership(ctx, o.ID, "bob"); err != nil || m.Role != apikey.RoleAdmin {
				t.Errorf("Membership = %+v, %v; want admin", m, err)
			}
			if list, err := s.Invitations(ctx, o.ID, at); err != nil || len(list) != 0 {
				t.Errorf("Invitations = %+v, %v; want none pending", list, err)
			}

			// Used: accept sees it accepted, by whom is not its business.
			_, err = s.AcceptInvitation(ctx, hash, "carol", at, func(i org.Invitation, _ org.Org, _ *org.Member) (*org.Member, []audit.Event, error) {
				if i.AcceptedAt == nil || !i.AcceptedAt.Equal(at) {
					t.Errorf("accept saw accepted_at %v, want %v", i.AcceptedAt, at)
				}
				return nil, nil, apperr.New(apperr.NotFound, "invitation not found")
			})
			wantNotFound(t, "AcceptInvitation of a used invitation", err)
			// The store lets no invitation be used twice, whatever accept says.
			_, err = s.AcceptInvitation(ctx, hash, "carol", at, func(i org.Invitation, _ org.Org, _ *org.Member) (*org.Member, []audit.Event, error) {
				return &org.Member{UserID: "carol", Role: i.Role, JoinedAt: at}, []audit.Event{orgEvent(o.ID, "carol", "org.member.added", at)}, nil
			})
			wantNotFound(t, "AcceptInvitation of a used invitation that accept lets through", err)
			_, err = s.Membership(ctx, o.ID, "carol")
			wantNotFound(t, "Membership of carol", err)

			// A member keeps the higher role; the invitation is used all the same.
			_, lower := invite(t, s, o.ID, "alice", apikey.RoleMember, at)
			got, err = s.AcceptInvitation(ctx, lower, "bob", at, func(i org.Invitation, _ org.Org, current *org.Member) (*org.Member, []audit.Event, error) {
				if current == nil || current.Role != apikey.RoleAdmin || current.UserID != "bob" {
					t.Errorf("accept saw membership %+v, want bob as admin", current)
				}
				return nil, nil, nil
			})
			if err != nil || got.Role != apikey.RoleAdmin {
				t.Errorf("AcceptInvitation by a member = %+v, %v; want admin", got, err)
			}
			_, err = join(s, lower, "dave", at)
			wantNotFound(t, "AcceptInvitation after a member used it", err)
			// A member raised by an invitation.
			_, higher := invite(t, s, o.ID, "alice", apikey.RoleOwner, at)
			if got, err := join(s, higher, "bob", at); err != nil || got.Role != apikey.RoleOwner {
				t.Errorf("AcceptInvitation of a higher role = %+v, %v; want owner", got, err)
			}
			if m, err := s.Membership(ctx, o.ID, "bob"); err != nil || m.Role != apikey.RoleOwner || !m.CreatedAt.Equal(o.CreatedAt) {
				t.Errorf("Membership = %+v, %v; want owner", m, err)
			}

			_, err = join(s, tokenHash("unknown"), "bob", at)
			wantNotFound(t, "AcceptInvitation of an unknown token", err)
			// Refused by accept: nothing changes.
			_, pendingHash := invite(t, s, o.ID, "alice", apikey.RoleMember, at)
			refused := errors.New("refused")
			_, err = s.AcceptInvitation(ctx, pendingHash, "erin", at, func(i org.Invitation, _ org.Org, _ *org.Member) (*org.Member, []audit.Event, error) {
				return &org.Member{UserID: "erin", Role: i.Role, JoinedAt: at}, []audit.Event{orgEvent(o.ID, "erin", "org.member.added", at)}, refused
			})
			if !errors.Is(err, refused) {
				t.Errorf("a refusing accept: err %v, want it as is", err)
			}
			if _, err := join(s, pendingHash, "erin", at); err != nil {
				t.Errorf("the invitation was used by a refused accept: %v", err)
			}
		})

		t.Run("ConcurrentAcceptsOfOneInvitation", func(t *testing.T) {
			o := newOrg(t, s, "Acme", "alice", base)
			_, hash := invite(t, s, o.ID, "alice", apikey.RoleMember, base)
			const n = 8
			var pending, joined atomic.Int32
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					user := "user-" + string(rune('a'+i))
					_, err := s.AcceptInvitation(ctx, hash, user, base, func(inv org.Invitation, _ org.Org, _ *org.Member) (*org.Member, []audit.Event, error) {
						if inv.AcceptedAt != nil {
							return nil, nil, apperr.New(apperr.NotFound, "invitation not found")
						}
						pending.Add(1)
						return &org.Member{UserID: user, Role: inv.Role, JoinedAt: base}, nil, nil
					})
					switch apperr.CodeOf(err) {
					case "":
						joined.Add(1)
					case apperr.NotFound:
					default:
						t.Errorf("AcceptInvitation: %v", err)
					}
				})
			}
			wg.Wait()
			members, err := s.Members(ctx, o.ID)
			if err != nil {
				t.Fatal(err)
			}
			if pending.Load() != 1 || joined.Load() != 1 || len(members) != 2 {
				t.Errorf("%d accepts saw it pending, %d joined, %d members; want 1, 1 and 2", pending.Load(), joined.Load(), len(members))
			}
		})

		t.Run("DeleteOrg", func(t *testing.T) {
			o := newOrg(t, s, "Acme", "olivia", base)
			addMember(t, s, o.ID, "olivia", "paul", apikey.RoleAdmin, base)
			_, pendingHash := invite(t, s, o.ID, "olivia", apikey.RoleMember, base)
			pendingInv, _ := invite(t, s, o.ID, "olivia", apikey.RoleMember, base)
			other := newOrg(t, s, "Globex", "olivia", base)

			orgKey := func(user, orgID string) apikey.NewKey {
				k, _ := newKey(t, user, base)
				k.OrgID = orgID
				if err := s.CreateKey(ctx, k, 100); err != nil {
					t.Fatal(err)
				}
				return k
			}
			live1, live2 := orgKey("olivia", o.ID), orgKey("paul", o.ID)
			revoked := orgKey("paul", o.ID)
			if _, err := s.RevokeKey(ctx, apikey.OrgOwner(o.ID), revoked.ID, base, audit.Event{}); err != nil {
				t.Fatal(err)
			}
			personal := orgKey("paul", "")
			otherKey := orgKey("paul", other.ID)

			at := base.Add(time.Hour)
			hashes, err := s.DeleteOrg(ctx, o.ID, at, orgEvent(o.ID, "olivia", "org.deleted", at))
			if err != nil {
				t.Fatal(err)
			}
			slices.Sort(hashes)
			want := []string{live1.Hash, live2.Hash}
			slices.Sort(want)
			if !slices.Equal(hashes, want) {
				t.Errorf("DeleteOrg returned %d hashes, want the %d of the unrevoked keys", len(hashes), len(want))
			}
			if evs := allEvents(t, s, "olivia"); evs[0].Action != "org.deleted" || evs[0].Details["keys_revoked"] != float64(2) {
				t.Errorf("olivia's last event %s with details %v; want org.deleted with keys_revoked 2", evs[0].Action, evs[0].Details)
			}
			for _, k := range []apikey.NewKey{live1, live2} {
				got, err := s.FindKeyByHash(ctx, k.Hash)
				if err != nil || got.RevokedAt == nil || !got.RevokedAt.Equal(at) {
					t.Errorf("key %s: revoked_at %v, %v; want %v", k.ID, got.RevokedAt, err, at)
				}
			}
			if got, err := s.FindKeyByHash(ctx, revoked.Hash); err != nil || got.RevokedAt == nil || !got.RevokedAt.Equal(base) {
				t.Errorf("the key revoked before: revoked_at %v, %v; want %v", got.RevokedAt, err, base)
			}
			for _, k := range []apikey.NewKey{personal, otherKey} {
				if got, err := s.FindKeyByHash(ctx, k.Hash); err != nil || got.RevokedAt != nil {
					t.Errorf("key %s of another owner: %+v, %v; want unrevoked", k.ID, got, err)
				}
			}
			if keys, err := s.ListKeys(ctx, apikey.UserOwner("paul")); err != nil || len(keys) != 1 || keys[0].ID != personal.ID {
				t.Errorf("paul's personal keys = %+v, %v; want the one", keys, err)
			}

			// Everything of a deleted organisation is NOT_FOUND.
			_, err = s.GetOrg(ctx, o.ID)
			wantNotFound(t, "GetOrg", err)
			_, err = s.Membership(ctx, o.ID, "olivia")
			wantNotFound(t, "Membership", err)
			if list, err := s.ListOrgs(ctx, "paul"); err != nil || len(list) != 0 {
				t.Errorf("ListOrgs(paul) = %+v, %v; want none", list, err)
			}
			if list, err := s.ListOrgs(ctx, "olivia"); err != nil || len(list) != 1 || list[0].ID != other.ID {
				t.Errorf("ListOrgs(olivia) = %+v, %v; want Globex only", list, err)
			}
			_, err = s.UpdateOrg(ctx, o.ID, func(old org.Org) (org.Org, audit.Event, error) { return old, audit.Event{}, nil })
			wantNotFound(t, "UpdateOrg", err)
			_, err = s.DeleteOrg(ctx, o.ID, at, orgEvent(o.ID, "olivia", "org.deleted", at))
			wantNotFound(t, "DeleteOrg", err)
			_, err = s.Members(ctx, o.ID)
			wantNotFound(t, "Members", err)
			_, err = s.UpdateMember(ctx, o.ID, "olivia", setRole(apikey.RoleAdmin, nil, nil))
			wantNotFound(t, "UpdateMember", err)
			err = s.RemoveMember(ctx, o.ID, "paul", func(org.Member, int) (audit.Event, error) { return audit.Event{}, nil })
			wantNotFound(t, "RemoveMember", err)
			_, err = invite2(s, o.ID, at)
			wantNotFound(t, "CreateInvitation", err)
			_, err = s.Invitations(ctx, o.ID, base)
			wantNotFound(t, "Invitations", err)
			err = s.RevokeInvitation(ctx, o.ID, pendingInv.ID, at, audit.Event{})
			wantNotFound(t, "RevokeInvitation", err)
			_, err = join(s, pendingHash, "quinn", at)
			wantNotFound(t, "AcceptInvitation", err)
			_, err = s.ListOrgEvents(ctx, o.ID, "", 10)
			wantNotFound(t, "ListOrgEvents", err)
			k, _ := newKey(t, "olivia", at)
			k.OrgID = o.ID
			err = s.CreateKey(ctx, k, 100)
			wantNotFound(t, "CreateKey", err)

			// The organisation's log, as its members last saw it, gained
			// org.deleted alone: a newly named organisation shows it.
			if _, err := s.EnsureOrg(ctx, o, audit.Event{}); err != nil {
				t.Fatal(err)
			}
			wantEvents := []string{"org.deleted", "org.invitation.created", "org.invitation.created", "org.invitation.accepted", "org.member.added", "org.invitation.created", "org.created"}
			if got := actions(orgEvents(t, s, o.ID)); !slices.Equal(got, wantEvents) {
				t.Errorf("events %v, want %v", got, wantEvents)
			}
		})

		t.Run("DeleteOrgRevokesTheKeysCreatedMeanwhile", func(t *testing.T) {
			o := newOrg(t, s, "Acme", "rita", base)
			const creators, each = 6, 8
			var mu sync.Mutex
			created := map[string]bool{} // hashes
			someCreated := make(chan struct{}, creators*each)
			var wg sync.WaitGroup
			for range creators {
				wg.Go(func() {
					for range each {
						k, _ := newKey(t, "rita", base)
						k.OrgID = o.ID
						err := s.CreateKey(ctx, k, 1000)
						if apperr.CodeOf(err) == apperr.NotFound {
							return // deleted
						}
						if err != nil {
							t.Errorf("CreateKey: %v", err)
							return
						}
						mu.Lock()
						created[k.Hash] = true
						mu.Unlock()
						someCreated <- struct{}{}
					}
				})
			}
			for range creators {
				<-someCreated
			}
			at := base.Add(time.Hour)
			hashes, err := s.DeleteOrg(ctx, o.ID, at, audit.Event{})
			if err != nil {
				t.Fatal(err)
			}
			wg.Wait()
			revoked := map[string]bool{}
			for _, h := range hashes {
				revoked[h] = true
			}
			if len(revoked) != len(created) {
				t.Errorf("%d keys created, %d revoked by the deletion; want every one", len(created), len(revoked))
			}
			for h := range created {
				k, err := s.FindKeyByHash(ctx, h)
				if err != nil || k.RevokedAt == nil || !revoked[h] {
					t.Errorf("key %s, created, is left unrevoked by the deletion: revoked_at %v, %v; among the hashes returned: %v", k.ID, k.RevokedAt, err, revoked[h])
				}
			}
		})

		t.Run("ListOrgEventsPages", func(t *testing.T) {
			o := newOrg(t, s, "Acme", "alice", base)
			other := newOrg(t, s, "Globex", "alice", base)
			for i := range 5 {
				at := base.Add(time.Duration(i+1) * time.Second)
				if err := s.AddEvent(ctx, orgEvent(o.ID, "grace", "org.updated", at)); err != nil {
					t.Fatal(err)
				}
				if err := s.AddEvent(ctx, eventOf("grace", audit.KeyCreated, at)); err != nil {
					t.Fatal(err)
				}
			}
			all := orgEvents(t, s, o.ID)
			if len(all) != 6 {
				t.Fatalf("%d events, want 6", len(all))
			}
			var paged []audit.Event
			before := ""
			for {
				page, err := s.ListOrgEvents(ctx, o.ID, before, 4)
				if err != nil {
					t.Fatal(err)
				}
				if len(page) == 0 {
					break
				}
				paged = append(paged, page...)
				before = page[len(page)-1].ID
			}
			ids := func(evs []audit.Event) (out []string) {
				for _, ev := range evs {
					out = append(out, ev.ID)
				}
				return out
			}
			if !slices.Equal(ids(paged), ids(all)) || !slices.IsSortedFunc(all, func(a, b audit.Event) int { return strings.Compare(b.ID, a.ID) }) {
				t.Errorf("pages %v, want %v newest first", ids(paged), ids(all))
			}
			// A cursor of another log.
			otherEvents := orgEvents(t, s, other.ID)
			_, err := s.ListOrgEvents(ctx, o.ID, otherEvents[0].ID, 10)
			wantNotFound(t, "ListOrgEvents after another organisation's event", err)
			_, err = s.ListOrgEvents(ctx, o.ID, uuid.NewString(), 10)
			wantNotFound(t, "ListOrgEvents after an unknown event", err)
			_, err = s.ListOrgEvents(ctx, uuid.NewString(), "", 10)
			wantNotFound(t, "ListOrgEvents of no organisation", err)
			// The personal log is unchanged.
			if got := allEvents(t, s, "grace"); len(got) != 10 {
				t.Errorf("grace's log has %d events, want 10", len(got))
			}
		})
	})
}

// invite2 creates an invitation to orgID at at, returning its id.
func invite2(s *store.Store, orgID string, at time.Time) (string, error) {
	inv := org.NewInvitation{
		Invitation: org.Invitation{ID: uuid.NewString(), OrgID: orgID, Role: apikey.RoleMember, CreatedBy: "alice", CreatedAt: at, ExpiresAt: at.Add(time.Hour)},
		TokenHash:  tokenHash(uuid.NewString()),
	}
	return inv.ID, s.CreateInvitation(context.Background(), inv)
}

// TestDeleteOrgNotifiesOtherServers checks that deleting an organisation
// tells every server listening on the database each revoked key's hash,
// once it commits.
func TestDeleteOrgNotifiesOtherServers(t *testing.T) {
	ctx := context.Background()
	dsn := dbtest.DSN(t, "postgres")
	writer := store.New(dbtest.OpenDSN(t, dsn), store.Config{})
	cache := newRecordingCache()
	runListener(t, &store.RevocationListener{DB: dbtest.OpenDSN(t, dsn), Cache: cache})
	cache.expect(t, "resume", "suspend")

	at := time.Now().UTC().Truncate(time.Millisecond)
	o := newOrg(t, writer, "Acme", "alice", at)
	want := map[string]bool{}
	for range 3 {
		k, _ := newKey(t, "alice", at)
		k.OrgID = o.ID
		if err := writer.CreateKey(ctx, k, 100); err != nil {
			t.Fatal(err)
		}
		want[k.Hash] = true
	}
	personal := revoke(t, writer, "alice") // published before the deletion
	cache.expect(t, personal)

	hashes, err := writer.DeleteOrg(ctx, o.ID, at, audit.Event{})
	if err != nil {
		t.Fatal(err)
	}
	if len(hashes) != len(want) {
		t.Fatalf("DeleteOrg returned %d hashes, want %d", len(hashes), len(want))
	}
	for range want {
		h := cache.next(t)
		if !want[h] {
			t.Fatalf("listener got %q, not one of the organisation's keys", h)
		}
		delete(want, h)
	}
}
