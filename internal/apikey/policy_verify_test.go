package apikey_test

import (
	"context"
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apperr"
	"github.com/apikeyd/apikeyd/internal/audit"
	"github.com/apikeyd/apikeyd/internal/dbtest"
	"github.com/apikeyd/apikeyd/internal/store"
)

func ptr[T any](v T) *T { return &v }

// verifyAs verifies key as req says (req.Key is set from key).
func (f *fixture) verifyAs(t *testing.T, key string, req apikey.VerifyRequest) (apikey.Verification, apperr.Code) {
	t.Helper()
	req.Key = key
	v, err := f.svc.Verify(context.Background(), req)
	if err != nil {
		return v, apperr.CodeOf(err)
	}
	return v, ""
}

// createWith makes a key for alice with in, failing the test otherwise.
func (f *fixture) createWith(t *testing.T, in apikey.CreateInput) apikey.Created {
	t.Helper()
	k, err := f.svc.Create(f.jwt, in)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// listed returns alice's key id as listed.
func (f *fixture) listed(t *testing.T, id string) apikey.APIKey {
	t.Helper()
	keys, err := f.svc.List(f.jwt)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if k.ID == id {
			return k
		}
	}
	t.Fatalf("key %s is not listed", id)
	return apikey.APIKey{}
}

// events returns alice's audit events of action about key id, newest first.
func (f *fixture) events(t *testing.T, action, id string) []audit.Event {
	t.Helper()
	all, err := f.store.Store.(*store.Store).ListEvents(context.Background(), "alice", "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Event
	for _, ev := range all {
		if ev.Action == action && ev.KeyID == id {
			out = append(out, ev)
		}
	}
	return out
}

var (
	office   = netip.MustParseAddr("203.0.113.7")
	outsider = netip.MustParseAddr("198.51.100.1")
)

func TestCreatePolicy(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		t.Run("Canonical", func(t *testing.T) {
			f := newFixture(t, dsn, apikey.Config{})
			k := f.createWith(t, apikey.CreateInput{
				Enabled:   ptr(false),
				RateLimit: &apikey.RateLimit{Limit: 10, Period: time.Minute},
				Credits:   &apikey.Credits{Remaining: 500, Refill: &apikey.Refill{Amount: 500, Interval: apikey.RefillMonthly}},
				AllowedIPs: []string{
					"10.1.2.3/8", " 192.168.0.1 ", "::ffff:10.0.0.1", "2001:db8::1/32", "::ffff:10.0.0.0/104", "2001:db8::7",
				},
				Meta: json.RawMessage(`{ "plan": "pro",  "seats": [1, 2] }`),
			})
			want := []string{"10.0.0.0/8", "192.168.0.1/32", "10.0.0.1/32", "2001:db8::/32", "2001:db8::7/128"}
			for what, got := range map[string]apikey.APIKey{"created": k.APIKey, "listed": f.listed(t, k.ID)} {
				var ips []string
				for _, p := range got.AllowedIPs {
					ips = append(ips, p.String())
				}
				if strings.Join(ips, " ") != strings.Join(want, " ") {
					t.Errorf("%s allowed_ips %v, want %v", what, ips, want)
				}
				if !got.Disabled || got.RateLimit == nil || *got.RateLimit != (apikey.RateLimit{Limit: 10, Period: time.Minute}) {
					t.Errorf("%s: disabled %v, rate limit %+v", what, got.Disabled, got.RateLimit)
				}
				if got.Credits == nil || got.Credits.Remaining != 500 || got.Credits.Refill == nil ||
					*got.Credits.Refill != (apikey.Refill{Amount: 500, Interval: apikey.RefillMonthly, DayOfMonth: 1}) {
					t.Errorf("%s credits %+v, want 500 refilled monthly on the 1st", what, got.Credits)
				}
				if string(got.Meta) != `{"plan":"pro","seats":[1,2]}` {
					t.Errorf("%s meta %s, want it compact", what, got.Meta)
				}
				if got.Lineage != k.ID {
					t.Errorf("%s lineage %q, want its own id %s", what, got.Lineage, k.ID)
				}
			}
			created := f.events(t, audit.KeyCreated, k.ID)
			if len(created) != 1 || created[0].Details["enabled"] != false || created[0].Details["rate_limit"] == nil {
				t.Errorf("created event %+v, want the policy in its details", created)
			}
		})

		t.Run("NoPolicy", func(t *testing.T) {
			f := newFixture(t, dsn, apikey.Config{})
			k := f.create(t, nil)
			v, code := f.verifyAs(t, k.Secret, apikey.VerifyRequest{})
			if code != "" || v.Principal.Policy != nil || v.Quota.Limit != 0 || v.Credited || v.Meta != nil {
				t.Fatalf("a key without a policy verified as %+v, %s", v, code)
			}
		})

		t.Run("Refused", func(t *testing.T) {
			f := newFixture(t, dsn, apikey.Config{})
			before, err := f.svc.List(f.jwt)
			if err != nil {
				t.Fatal(err)
			}
			long := `{"a":"` + strings.Repeat("x", apikey.MaxMetaBytes) + `"}`
			many := make([]string, apikey.MaxAllowedIPs+1)
			for i := range many {
				many[i] = netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}).String()
			}
			for _, c := range []struct {
				name  string
				in    apikey.CreateInput
				field string // named by the message
			}{
				{"LimitZero", apikey.CreateInput{RateLimit: &apikey.RateLimit{Limit: 0, Period: time.Second}}, "rate_limit.limit"},
				{"LimitTooHigh", apikey.CreateInput{RateLimit: &apikey.RateLimit{Limit: apikey.MaxRateLimit + 1, Period: time.Second}}, "rate_limit.limit"},
				{"PeriodZero", apikey.CreateInput{RateLimit: &apikey.RateLimit{Limit: 1}}, "rate_limit.period_seconds"},
				{"PeriodTooLong", apikey.CreateInput{RateLimit: &apikey.RateLimit{Limit: 1, Period: 24*time.Hour + time.Second}}, "rate_limit.period_seconds"},
				{"PeriodFraction", apikey.CreateInput{RateLimit: &apikey.RateLimit{Limit: 1, Period: 1500 * time.Millisecond}}, "rate_limit.period_seconds"},
				{"CreditsNegative", apikey.CreateInput{Credits: &apikey.Credits{Remaining: -1}}, "credits.remaining"},
				{"CreditsTooMany", apikey.CreateInput{Credits: &apikey.Credits{Remaining: apikey.MaxCredits + 1}}, "credits.remaining"},
				{"RefillZero", apikey.CreateInput{Credits: &apikey.Credits{Refill: &apikey.Refill{Interval: apikey.RefillDaily}}}, "credits.refill.amount"},
				{"RefillInterval", apikey.CreateInput{Credits: &apikey.Credits{Refill: &apikey.Refill{Amount: 1, Interval: "week"}}}, "credits.refill.interval"},
				{"DayOfDailyRefill", apikey.CreateInput{Credits: &apikey.Credits{Refill: &apikey.Refill{Amount: 1, Interval: apikey.RefillDaily, DayOfMonth: 3}}}, "credits.refill.day_of_month"},
				{"DayOutOfRange", apikey.CreateInput{Credits: &apikey.Credits{Refill: &apikey.Refill{Amount: 1, Interval: apikey.RefillMonthly, DayOfMonth: 32}}}, "credits.refill.day_of_month"},
				{"MalformedCIDR", apikey.CreateInput{AllowedIPs: []string{"10.0.0.0/8", "10.0.0.0/33"}}, `allowed_ips[1] "10.0.0.0/33"`},
				{"MalformedAddress", apikey.CreateInput{AllowedIPs: []string{"10.0.0.300"}}, `allowed_ips[0] "10.0.0.300"`},
				{"ZonedAddress", apikey.CreateInput{AllowedIPs: []string{"fe80::1%eth0"}}, "allowed_ips[0]"},
				{"Hostname", apikey.CreateInput{AllowedIPs: []string{"example.com"}}, "allowed_ips[0]"},
				{"NoAddress", apikey.CreateInput{AllowedIPs: []string{}}, "allowed_ips"},
				{"TooManyAddresses", apikey.CreateInput{AllowedIPs: many}, "allowed_ips"},
				{"MetaArray", apikey.CreateInput{Meta: json.RawMessage(`[1]`)}, "meta"},
				{"MetaString", apikey.CreateInput{Meta: json.RawMessage(`"pro"`)}, "meta"},
				{"MetaMalformed", apikey.CreateInput{Meta: json.RawMessage(`{"a":`)}, "meta"},
				{"MetaTooLarge", apikey.CreateInput{Meta: json.RawMessage(long)}, "meta"},
			} {
				t.Run(c.name, func(t *testing.T) {
					_, err := f.svc.Create(f.jwt, c.in)
					if apperr.CodeOf(err) != apperr.InvalidRequest || !strings.HasPrefix(apperr.MessageOf(err), c.field) {
						t.Fatalf("err %v, want INVALID_REQUEST naming %s", err, c.field)
					}
				})
			}
			if keys, err := f.svc.List(f.jwt); err != nil || len(keys) != len(before) {
				t.Fatalf("refused creates left %d keys (%v)", len(keys), err)
			}
		})
	})
}

// TestVerifyPolicyOrder checks each refusal of a valid key, in the
// documented order: the first check that fails answers, and nothing later
// in the list is spent (a token, credits, a use).
func TestVerifyPolicyOrder(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		f := newFixture(t, dsn, apikey.Config{})
		k := f.createWith(t, apikey.CreateInput{
			Scopes:     []string{"orders:read"},
			RateLimit:  &apikey.RateLimit{Limit: 2, Period: time.Hour},
			Credits:    &apikey.Credits{Remaining: 5},
			AllowedIPs: []string{"203.0.113.0/24"},
			Meta:       json.RawMessage(`{"plan":"pro"}`),
		})
		write := []string{"orders:write"}
		check := func(req apikey.VerifyRequest, code apperr.Code, o apikey.Outcome) apikey.Verification {
			t.Helper()
			v, got := f.verifyAs(t, k.Secret, req)
			if got != code || v.Outcome != o {
				t.Fatalf("%+v: %q (%s), want %q (%s)", req, got, v.Outcome, code, o)
			}
			if v.Principal.KeyID != k.ID || string(v.Meta) != `{"plan":"pro"}` {
				t.Fatalf("a valid key's verification lacks its principal or meta: %+v", v)
			}
			return v
		}
		used := func() bool {
			t.Helper()
			if err := f.svc.FlushUsage(context.Background()); err != nil {
				t.Fatal(err)
			}
			return f.listed(t, k.ID).LastUsedAt != nil
		}

		// Disabled comes first, whatever else is wrong.
		if _, err := f.svc.Update(f.jwt, k.ID, apikey.UpdateInput{Enabled: apikey.Optional[bool]{Set: true, Value: false}}); err != nil {
			t.Fatal(err)
		}
		check(apikey.VerifyRequest{Addr: outsider, Required: write, Cost: 100}, apperr.KeyDisabled, apikey.OutcomeDisabled)
		if _, err := f.svc.Update(f.jwt, k.ID, apikey.UpdateInput{Enabled: apikey.Optional[bool]{Set: true, Value: true}}); err != nil {
			t.Fatal(err)
		}
		// Then the address (an unknown one is outside any allowlist)...
		check(apikey.VerifyRequest{Addr: outsider, Required: write, Cost: 100}, apperr.IPNotAllowed, apikey.OutcomeIPNotAllowed)
		check(apikey.VerifyRequest{Required: write}, apperr.IPNotAllowed, apikey.OutcomeIPNotAllowed)
		// ...then the scopes...
		check(apikey.VerifyRequest{Addr: office, Required: write, Cost: 100}, apperr.InsufficientScope, apikey.OutcomeInsufficientScope)
		// ...and none of these took a token, spent credits or was a use.
		if used() {
			t.Fatal("a refusal was recorded as a use")
		}
		v := check(apikey.VerifyRequest{Addr: office, Cost: 0}, "", apikey.OutcomeOK)
		if v.Quota.Limit != 2 || v.Quota.Remaining != 1 || !v.Credited || v.Credits != 5 {
			t.Fatalf("first success: quota %+v, credits %d (%v); want 1 of 2 tokens left and 5 credits", v.Quota, v.Credits, v.Credited)
		}
		// Then the credits: above the balance is refused, spending nothing,
		// with no Retry-After (no refill), but the token is taken.
		v = check(apikey.VerifyRequest{Addr: office, Cost: 6}, apperr.UsageExceeded, apikey.OutcomeUsageExceeded)
		if v.Credits != 5 || v.RetryAfter != 0 || v.Quota.Remaining != 0 {
			t.Fatalf("usage exceeded: %+v", v)
		}
		// Then the bucket, empty now: refused before the credits.
		v = check(apikey.VerifyRequest{Addr: office, Cost: 1}, apperr.RateLimited, apikey.OutcomeRateLimited)
		if v.RetryAfter <= 0 || v.Quota.Allowed || v.Credited {
			t.Fatalf("rate limited: %+v", v)
		}
		f.clock.Advance(30 * time.Minute) // one token back
		v = check(apikey.VerifyRequest{Addr: netip.MustParseAddr("::ffff:203.0.113.9"), Cost: 5}, "", apikey.OutcomeOK)
		if v.Credits != 0 {
			t.Fatalf("credits after spending the 5 left: %d", v.Credits)
		}
		if !used() {
			t.Fatal("a success was not recorded as a use")
		}

		// Each verification is counted once, under the check that answered.
		if err := f.svc.FlushCounts(context.Background()); err != nil {
			t.Fatal(err)
		}
		u, err := f.svc.KeyUsage(f.jwt, k.ID, apikey.UsageRange{})
		if err != nil {
			t.Fatal(err)
		}
		var total apikey.Counts
		for _, b := range u.Buckets {
			total.Add(b.Counts)
		}
		want := apikey.Counts{Valid: 2, Disabled: 1, IPNotAllowed: 2, InsufficientScope: 1, RateLimited: 1, UsageExceeded: 1, CreditsSpent: 5}
		if total != want {
			t.Fatalf("counts %+v, want %+v", total, want)
		}
	})
}

func TestVerifyCredits(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		t.Run("CostZeroSpendsNothing", func(t *testing.T) {
			f := newFixture(t, dsn, apikey.Config{})
			k := f.createWith(t, apikey.CreateInput{Credits: &apikey.Credits{Remaining: 3}})
			for range 3 {
				if v, code := f.verifyAs(t, k.Secret, apikey.VerifyRequest{Cost: 0}); code != "" || v.Credits != 3 {
					t.Fatalf("cost 0: %s, %d credits, want 3", code, v.Credits)
				}
			}
			if v, code := f.verifyAs(t, k.Secret, apikey.VerifyRequest{Cost: 2}); code != "" || v.Credits != 1 {
				t.Fatalf("cost 2: %s, %d credits", code, v.Credits)
			}
			if got := f.listed(t, k.ID).Credits; got == nil || got.Remaining != 1 {
				t.Fatalf("listed credits %+v, want 1", got)
			}
			// A balance of 0 still answers cost 0.
			f.verifyAs(t, k.Secret, apikey.VerifyRequest{Cost: 1})
			if v, code := f.verifyAs(t, k.Secret, apikey.VerifyRequest{Cost: 0}); code != "" || v.Credits != 0 {
				t.Fatalf("cost 0 on an empty balance: %s, %d", code, v.Credits)
			}
			if _, code := f.verifyAs(t, k.Secret, apikey.VerifyRequest{Cost: 1}); code != apperr.UsageExceeded {
				t.Fatalf("cost 1 on an empty balance: %q", code)
			}
		})

		t.Run("DailyRefill", func(t *testing.T) {
			f := newFixtureAt(t, dsn, apikey.Config{}, time.Date(2026, 3, 5, 23, 59, 0, 0, time.UTC))
			k := f.createWith(t, apikey.CreateInput{Credits: &apikey.Credits{Remaining: 2, Refill: &apikey.Refill{Amount: 3, Interval: apikey.RefillDaily}}})
			f.verifyAs(t, k.Secret, apikey.VerifyRequest{Cost: 2})
			v, code := f.verifyAs(t, k.Secret, apikey.VerifyRequest{Cost: 1})
			if code != apperr.UsageExceeded || v.RetryAfter != time.Minute {
				t.Fatalf("empty before midnight: %q, Retry-After %v, want a minute (until 00:00 UTC)", code, v.RetryAfter)
			}
			f.clock.Advance(time.Minute)
			if v, code := f.verifyAs(t, k.Secret, apikey.VerifyRequest{Cost: 1}); code != "" || v.Credits != 2 {
				t.Fatalf("after the refill: %q, %d credits, want 3 - 1", code, v.Credits)
			}
		})

		// A refill that fell due shows in the listing from its time on,
		// before any spend applies it; a change of the balance replaces the
		// refilled one (its event says so).
		t.Run("RefillShowsWhenDue", func(t *testing.T) {
			f := newFixtureAt(t, dsn, apikey.Config{}, time.Date(2026, 3, 5, 23, 0, 0, 0, time.UTC))
			k := f.createWith(t, apikey.CreateInput{Credits: &apikey.Credits{Remaining: 2, Refill: &apikey.Refill{Amount: 5, Interval: apikey.RefillDaily}}})
			if got := f.listed(t, k.ID).Credits.Remaining; got != 2 {
				t.Fatalf("listed before the refill: %d, want 2", got)
			}
			f.clock.Advance(time.Hour)
			if got := f.listed(t, k.ID).Credits.Remaining; got != 5 {
				t.Fatalf("listed at the refill time, before any spend: %d, want 5", got)
			}
			refill := &apikey.Refill{Amount: 5, Interval: apikey.RefillDaily}
			up, err := f.svc.Update(f.jwt, k.ID, apikey.UpdateInput{Credits: apikey.Optional[*apikey.Credits]{Set: true, Value: &apikey.Credits{Remaining: 4, Refill: refill}}})
			if err != nil || up.Credits.Remaining != 4 {
				t.Fatalf("update: %v, %+v", err, up.Credits)
			}
			evs := f.events(t, audit.KeyUpdated, k.ID)
			if len(evs) != 1 || !strings.Contains(string(mustJSON(t, evs[0].Details["credits"])), `"old":{"refill":{"amount":5,"day_of_month":null,"interval":"day"},"remaining":5}`) {
				t.Fatalf("update events %+v, want the refilled balance as old", evs)
			}
			// The change replaced the refill that was due: the next is tomorrow's.
			if v, code := f.verifyAs(t, k.Secret, apikey.VerifyRequest{Cost: 1}); code != "" || v.Credits != 3 {
				t.Fatalf("spend after the change: %q, %d credits, want 4 - 1", code, v.Credits)
			}
		})

		t.Run("CachedButCountedEachTime", func(t *testing.T) {
			f := newFixture(t, dsn, apikey.Config{})
			k := f.createWith(t, apikey.CreateInput{Credits: &apikey.Credits{Remaining: 10}})
			for range 4 {
				f.verifyAs(t, k.Secret, apikey.VerifyRequest{Cost: 1})
			}
			f.wantLookups(t, 1)
			if n := f.store.spends.Load(); n != 4 {
				t.Fatalf("%d spends for 4 verifications", n)
			}
		})
	})
}

// TestVerifyCachesPolicy: the policy is verified from the cache (no query
// for a key without credits), and a change of it is seen at once.
func TestVerifyCachesPolicy(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		f := newFixture(t, dsn, apikey.Config{})
		k := f.createWith(t, apikey.CreateInput{RateLimit: &apikey.RateLimit{Limit: 100, Period: time.Second}, AllowedIPs: []string{"203.0.113.0/24"}})
		for range 3 {
			if _, code := f.verifyAs(t, k.Secret, apikey.VerifyRequest{Addr: office}); code != "" {
				t.Fatal(code)
			}
		}
		if _, code := f.verifyAs(t, k.Secret, apikey.VerifyRequest{Addr: outsider}); code != apperr.IPNotAllowed {
			t.Fatalf("outsider: %q", code)
		}
		f.wantLookups(t, 1)
		if f.store.spends.Load() != 0 {
			t.Fatal("a key without credits spent credits")
		}
		if _, err := f.svc.Update(f.jwt, k.ID, apikey.UpdateInput{AllowedIPs: apikey.Optional[[]string]{Set: true, Value: []string{"198.51.100.0/24"}}}); err != nil {
			t.Fatal(err)
		}
		if f.svc.Cached(k.Secret) {
			t.Fatal("an updated key is still cached")
		}
		if _, code := f.verifyAs(t, k.Secret, apikey.VerifyRequest{Addr: office}); code != apperr.IPNotAllowed {
			t.Fatalf("after the allowlist changed: %q, want IP_NOT_ALLOWED", code)
		}
		if _, code := f.verifyAs(t, k.Secret, apikey.VerifyRequest{Addr: outsider}); code != "" {
			t.Fatalf("from the new allowlist: %q", code)
		}
	})
}

func TestUpdate(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		t.Run("Events", func(t *testing.T) {
			f := newFixture(t, dsn, apikey.Config{})
			k := f.createWith(t, apikey.CreateInput{Name: ptr("ci"), Credits: &apikey.Credits{Remaining: 10}})
			got, err := f.svc.Update(f.jwt, k.ID, apikey.UpdateInput{
				Name:      apikey.Optional[*string]{Set: true, Value: ptr(" ci ")}, // the same once trimmed
				Enabled:   apikey.Optional[bool]{Set: true, Value: false},
				RateLimit: apikey.Optional[*apikey.RateLimit]{Set: true, Value: &apikey.RateLimit{Limit: 5, Period: time.Minute}},
				Credits:   apikey.Optional[*apikey.Credits]{Set: true, Value: nil},
				Meta:      apikey.Optional[json.RawMessage]{Set: true, Value: json.RawMessage(`{"plan": "pro"}`)},
			})
			if err != nil {
				t.Fatal(err)
			}
			if !got.Disabled || got.RateLimit == nil || got.Credits != nil || string(got.Meta) != `{"plan":"pro"}` || *got.Name != "ci" {
				t.Fatalf("updated key %+v", got)
			}
			evs := f.events(t, audit.KeyUpdated, k.ID)
			if len(evs) != 1 {
				t.Fatalf("%d update events, want 1", len(evs))
			}
			b, _ := json.Marshal(evs[0].Details)
			const want = `{"credits":{"new":null,"old":{"refill":null,"remaining":10}},"enabled":{"new":false,"old":true},"meta":{"new":{"plan":"pro"},"old":null},"rate_limit":{"new":{"limit":5,"period_seconds":60},"old":null}}`
			if string(b) != want {
				t.Fatalf("details %s\nwant    %s", b, want)
			}
			if evs[0].KeyID != k.ID {
				t.Errorf("event of key %q, want %s", evs[0].KeyID, k.ID)
			}

			// The same values again: no change, no event.
			if _, err := f.svc.Update(f.jwt, k.ID, apikey.UpdateInput{
				Enabled:    apikey.Optional[bool]{Set: true, Value: false},
				AllowedIPs: apikey.Optional[[]string]{Set: true},
				Meta:       apikey.Optional[json.RawMessage]{Set: true, Value: json.RawMessage(`{"plan":"pro"}`)},
			}); err != nil {
				t.Fatal(err)
			}
			if n := len(f.events(t, audit.KeyUpdated, k.ID)); n != 1 {
				t.Fatalf("an update that changed nothing recorded an event (%d)", n)
			}
		})

		t.Run("SetsTheBalance", func(t *testing.T) {
			f := newFixture(t, dsn, apikey.Config{})
			k := f.createWith(t, apikey.CreateInput{Credits: &apikey.Credits{Remaining: 1}})
			if _, code := f.verifyAs(t, k.Secret, apikey.VerifyRequest{Cost: 1}); code != "" {
				t.Fatal(code)
			}
			if _, code := f.verifyAs(t, k.Secret, apikey.VerifyRequest{Cost: 1}); code != apperr.UsageExceeded {
				t.Fatalf("spent: %q", code)
			}
			if _, err := f.svc.Update(f.jwt, k.ID, apikey.UpdateInput{Credits: apikey.Optional[*apikey.Credits]{Set: true, Value: &apikey.Credits{Remaining: 2}}}); err != nil {
				t.Fatal(err)
			}
			if v, code := f.verifyAs(t, k.Secret, apikey.VerifyRequest{Cost: 1}); code != "" || v.Credits != 1 {
				t.Fatalf("after setting 2: %q, %d left", code, v.Credits)
			}
			evs := f.events(t, audit.KeyUpdated, k.ID)
			if len(evs) != 1 || evs[0].Details["credits"] == nil {
				t.Fatalf("events %+v", evs)
			}
		})

		t.Run("RefusedChangesNothing", func(t *testing.T) {
			f := newFixture(t, dsn, apikey.Config{})
			k := f.createWith(t, apikey.CreateInput{Name: ptr("ci")})
			for _, c := range []struct {
				in    apikey.UpdateInput
				field string
			}{
				{apikey.UpdateInput{Name: apikey.Optional[*string]{Set: true, Value: ptr(strings.Repeat("n", 101))}}, "name"},
				{apikey.UpdateInput{
					Enabled:   apikey.Optional[bool]{Set: true, Value: false},
					RateLimit: apikey.Optional[*apikey.RateLimit]{Set: true, Value: &apikey.RateLimit{Limit: -1, Period: time.Second}},
				}, "rate_limit.limit"},
				{apikey.UpdateInput{
					Name:       apikey.Optional[*string]{Set: true, Value: ptr("other")},
					AllowedIPs: apikey.Optional[[]string]{Set: true, Value: []string{"nope"}},
				}, "allowed_ips[0]"},
				{apikey.UpdateInput{Credits: apikey.Optional[*apikey.Credits]{Set: true, Value: &apikey.Credits{Remaining: 1, Refill: &apikey.Refill{Amount: 1, Interval: "year"}}}}, "credits.refill.interval"},
				{apikey.UpdateInput{Meta: apikey.Optional[json.RawMessage]{Set: true, Value: json.RawMessage(`[]`)}}, "meta"},
			} {
				_, err := f.svc.Update(f.jwt, k.ID, c.in)
				if apperr.CodeOf(err) != apperr.InvalidRequest || !strings.HasPrefix(apperr.MessageOf(err), c.field) {
					t.Errorf("err %v, want INVALID_REQUEST naming %s", err, c.field)
				}
			}
			got := f.listed(t, k.ID)
			if *got.Name != "ci" || got.Disabled || got.RateLimit != nil || got.AllowedIPs != nil {
				t.Fatalf("refused updates changed the key: %+v", got)
			}
			if n := len(f.events(t, audit.KeyUpdated, k.ID)); n != 0 {
				t.Fatalf("refused updates recorded %d events", n)
			}
			if _, err := f.svc.Update(f.jwt, "01a213af-7098-770f-9058-153ce297df3b", apikey.UpdateInput{Enabled: apikey.Optional[bool]{Set: true}}); apperr.CodeOf(err) != apperr.NotFound {
				t.Fatalf("unknown key: %v", err)
			}
		})
	})
}

// TestRollSharesTheBucketAndBalance: during the grace, the old key and the
// new one are limited by one bucket and spend from one balance.
func TestRollSharesTheBucketAndBalance(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, dsn string) {
		f := newFixture(t, dsn, apikey.Config{})
		old := f.createWith(t, apikey.CreateInput{
			RateLimit: &apikey.RateLimit{Limit: 4, Period: time.Hour},
			Credits:   &apikey.Credits{Remaining: 3},
		})
		if v, code := f.verifyAs(t, old.Secret, apikey.VerifyRequest{Cost: 1}); code != "" || v.Credits != 2 {
			t.Fatalf("before the roll: %q, %d credits", code, v.Credits)
		}
		rolled, err := f.svc.Roll(f.jwt, old.ID, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if f.svc.Cached(old.Secret) {
			t.Fatal("the rolled key is still cached")
		}
		if rolled.Lineage != old.ID || rolled.RateLimit == nil || rolled.Credits == nil || rolled.Credits.Remaining != 2 {
			t.Fatalf("the new key %+v does not take over the policy and balance", rolled.APIKey)
		}
		// One bucket (4 tokens, 1 taken) and one balance (2 left).
		if v, code := f.verifyAs(t, rolled.Secret, apikey.VerifyRequest{Cost: 1}); code != "" || v.Credits != 1 || v.Quota.Remaining != 2 {
			t.Fatalf("new key: %q, %+v", code, v)
		}
		if v, code := f.verifyAs(t, old.Secret, apikey.VerifyRequest{Cost: 1}); code != "" || v.Credits != 0 || v.Quota.Remaining != 1 {
			t.Fatalf("old key in its grace: %q, %+v", code, v)
		}
		if _, code := f.verifyAs(t, rolled.Secret, apikey.VerifyRequest{Cost: 1}); code != apperr.UsageExceeded {
			t.Fatalf("new key once the shared balance is spent: %q", code)
		}
		if _, code := f.verifyAs(t, old.Secret, apikey.VerifyRequest{Cost: 0}); code != apperr.RateLimited {
			t.Fatalf("old key once the shared bucket is empty: %q", code)
		}
	})
}

// TestVerifyWithoutPolicyAllocatesNothing: a key without a policy costs
// its verification from the cache no allocation.
func TestVerifyWithoutPolicyAllocatesNothing(t *testing.T) {
	f := newFixture(t, dbtest.DSN(t, "sqlite"), apikey.Config{})
	k := f.create(t, nil)
	req := apikey.VerifyRequest{Key: k.Secret, Addr: office, Cost: 1}
	ctx := context.Background()
	if _, err := f.svc.Verify(ctx, req); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = f.svc.Verify(ctx, req) }); n != 0 {
		t.Fatalf("%v allocations per verification, want 0", n)
	}
}

// mustJSON is v as JSON.
func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
