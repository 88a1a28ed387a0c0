package apikey_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/dbtest"
)

func TestValidScope(t *testing.T) {
	for _, s := range []string{"a", "orders:read", "billing.invoices:write", "a-b_c.d:e9", "z" + strings.Repeat("9", 63)} {
		if !apikey.ValidScope(s) {
			t.Errorf("%q refused", s)
		}
	}
	for _, s := range []string{"", "Orders", "9a", ":a", "-a", "a b", "a,b", "a*", "é", "a\x00", "z" + strings.Repeat("9", 64)} {
		if apikey.ValidScope(s) {
			t.Errorf("%q accepted", s)
		}
	}
}

func TestParseScopeList(t *testing.T) {
	for in, want := range map[string][]string{
		"":                           nil,
		"  ":                         nil,
		"b,a, b ,c":                  {"a", "b", "c"},
		"orders:read":                {"orders:read"},
		"reports:read,reports:write": {"reports:read", "reports:write"},
	} {
		got, err := apikey.ParseScopeList(in)
		if err != nil || !slices.Equal(got, want) || (got == nil) != (want == nil) {
			t.Errorf("%q: %#v, %v; want %#v", in, got, err, want)
		}
	}
	for _, in := range []string{"a,", ",a", "a,,b", "A", "a b", ","} {
		if _, err := apikey.ParseScopeList(in); apperr.CodeOf(err) != apperr.InvalidRequest {
			t.Errorf("%q: %v, want INVALID_REQUEST", in, err)
		}
	}
}

func TestCreateScopes(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		t.Run("Normalised", func(t *testing.T) {
			f := newFixture(t, dsn, apikey.Config{})
			for _, c := range []struct{ in, want []string }{
				{nil, nil},
				{[]string{}, []string{}},
				{[]string{"b", "a", "b"}, []string{"a", "b"}},
			} {
				k, err := f.svc.Create(f.jwt, apikey.CreateInput{Scopes: c.in})
				if err != nil {
					t.Fatal(err)
				}
				keys, err := f.svc.List(f.jwt)
				if err != nil {
					t.Fatal(err)
				}
				v, err := f.svc.Verify(context.Background(), apikey.VerifyRequest{Key: k.Secret})
				p := v.Principal
				if err != nil {
					t.Fatal(err)
				}
				for what, got := range map[string][]string{"created": k.Scopes, "listed": keys[0].Scopes, "verified": p.Scopes} {
					if (got == nil) != (c.want == nil) || !slices.Equal(got, c.want) {
						t.Errorf("%#v %s as %#v, want %#v", c.in, what, got, c.want)
					}
				}
			}
		})

		t.Run("Refused", func(t *testing.T) {
			f := newFixture(t, dsn, apikey.Config{Scopes: []string{"orders:read", "orders:write"}})
			tooMany := make([]string, 0, 51)
			for i := range 51 {
				tooMany = append(tooMany, fmt.Sprintf("s%02d", i))
			}
			g := newFixture(t, dsn, apikey.Config{})
			for _, c := range []struct {
				f       *fixture
				scopes  []string
				mention string
			}{
				{f, []string{"orders:read", "Orders:Write"}, `"Orders:Write"`},
				{f, []string{"orders:delete"}, `"orders:delete"`},
				{f, []string{""}, `""`},
				{g, tooMany, `"s50"`},
				{g, []string{strings.Repeat("a", 1000)}, `"aaaa`},
			} {
				before, _ := c.f.svc.List(c.f.jwt)
				_, err := c.f.svc.Create(c.f.jwt, apikey.CreateInput{Scopes: c.scopes})
				if apperr.CodeOf(err) != apperr.InvalidRequest || !strings.Contains(apperr.MessageOf(err), c.mention) {
					t.Errorf("%.40q: %v, want INVALID_REQUEST naming %s", c.scopes, err, c.mention)
				}
				if len(apperr.MessageOf(err)) > 300 {
					t.Errorf("message of %d bytes", len(apperr.MessageOf(err)))
				}
				if keys, _ := c.f.svc.List(c.f.jwt); len(keys) != len(before) {
					t.Errorf("%.40q: a refused create stored a key", c.scopes)
				}
			}
			if _, err := g.svc.Create(g.jwt, apikey.CreateInput{Scopes: tooMany[:50]}); err != nil {
				t.Errorf("50 scopes: %v", err)
			}
		})

		t.Run("Catalogue", func(t *testing.T) {
			f := newFixture(t, dsn, apikey.Config{Scopes: []string{"b", "a", "b"}})
			got, err := f.svc.AvailableScopes(f.jwt)
			if err != nil || !slices.Equal(got, []string{"a", "b"}) {
				t.Fatalf("catalogue %#v, %v", got, err)
			}
			free := newFixture(t, dsn, apikey.Config{})
			if got, err := free.svc.AvailableScopes(free.jwt); err != nil || got != nil {
				t.Fatalf("free-form catalogue %#v, %v; want nil", got, err)
			}
			k, _ := f.svc.Create(f.jwt, apikey.CreateInput{Scopes: []string{"a"}})
			v, _ := f.svc.Verify(context.Background(), apikey.VerifyRequest{Key: k.Secret})
			p := v.Principal
			if _, err := f.svc.AvailableScopes(apikey.WithPrincipal(context.Background(), p)); apperr.CodeOf(err) != apperr.JWTRequired {
				t.Fatalf("with an API key: %v, want JWT_REQUIRED", err)
			}
		})
	})
}

// TestCheckScopes: every required scope must be held; unrestricted keys
// and login tokens pass; and the check is answered from the cached
// principal, with no query.
func TestCheckScopes(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		f := newFixture(t, dsn, apikey.Config{})
		scoped, _ := f.svc.Create(f.jwt, apikey.CreateInput{Scopes: []string{"orders:read", "reports:read"}})
		empty, _ := f.svc.Create(f.jwt, apikey.CreateInput{Scopes: []string{}})
		free, _ := f.svc.Create(f.jwt, apikey.CreateInput{})
		as := func(key string) apikey.Principal {
			t.Helper()
			v, err := f.svc.Verify(context.Background(), apikey.VerifyRequest{Key: key})
			p := v.Principal
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		user, err := apikey.RequirePrincipal(f.jwt)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct {
			p        apikey.Principal
			required string
			missing  string // "" when the check passes
		}{
			{as(scoped.Secret), "", ""},
			{as(scoped.Secret), "orders:read", ""},
			{as(scoped.Secret), "orders:read,reports:read", ""},
			{as(scoped.Secret), "orders:write", "lacks the scope orders:write"},
			{as(scoped.Secret), "orders:write,orders:read,a", "lacks the scopes a, orders:write"},
			{as(empty.Secret), "", ""},
			{as(empty.Secret), "orders:read", "lacks the scope orders:read"},
			{as(free.Secret), "orders:read,anything", ""},
			{user, "orders:read,anything", ""},
		} {
			required, err := apikey.ParseScopeList(c.required)
			if err != nil {
				t.Fatal(err)
			}
			err = apikey.CheckScopes(c.p, required)
			switch {
			case c.missing == "" && err != nil:
				t.Errorf("%q: %v", c.required, err)
			case c.missing != "" && (apperr.CodeOf(err) != apperr.InsufficientScope || !strings.Contains(apperr.MessageOf(err), c.missing)):
				t.Errorf("%q: %v, want INSUFFICIENT_SCOPE saying %q", c.required, err, c.missing)
			}
		}

		t.Run("NoQueryOnCacheHit", func(t *testing.T) {
			before := f.store.lookups.Load()
			required := []string{"orders:read"}
			for range 10 {
				v, err := f.svc.Verify(context.Background(), apikey.VerifyRequest{Key: scoped.Secret})
				p := v.Principal
				if err != nil {
					t.Fatal(err)
				}
				if err := apikey.CheckScopes(p, required); err != nil {
					t.Fatal(err)
				}
			}
			if n := f.store.lookups.Load() - before; n != 0 {
				t.Fatalf("%d lookups for cached verifications with a scope check, want 0", n)
			}
		})
	})
}
