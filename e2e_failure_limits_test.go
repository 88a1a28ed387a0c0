package main

import (
	"fmt"
	"net/http"
	"net/netip"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/apikeyd/apikeyd/internal/config"
	"github.com/apikeyd/apikeyd/internal/leak/leaktest"
)

// failBurst is the failure budget of the tests below, per address and per
// account.
const failBurst = 10

// limitedBehindProxy gives every address and account a budget of failBurst
// failures and trusts X-Forwarded-For from the loopback, so that each test
// sends from addresses of its own.
func limitedBehindProxy(c *config.Config) {
	c.AuthFailBurst, c.LoginFailBurst = failBurst, failBurst
	c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")}
}

// fromAddr returns h (cloned; nil: empty) sent on behalf of addr.
func fromAddr(addr string, h http.Header) http.Header {
	if h == nil {
		h = http.Header{}
	}
	h = h.Clone()
	h.Set("X-Forwarded-For", addr)
	return h
}

// TestFailureLimitsHoldInParallel: a burst of failed authentications sent
// all at once cannot outrun a failure budget, on any route that checks a
// credential: no more attempts are evaluated (401) than the budget holds,
// plus what refilled while the burst was served; the others are refused
// with 429 and Retry-After, before their credential is checked.
func TestFailureLimitsHoldInParallel(t *testing.T) {
	const n = 64
	const gitlab = "glrt-0123456789abcdef0123456789abcdef"
	gh := leaktest.NewSigner(t, "gh-1")
	keys := keySetFile(t, gh)
	configure := func(c *config.Config) {
		limitedBehindProxy(c)
		keys(c)
		c.LeakRevocation = gitlab
	}
	eachDBWith(t, configure, func(t *testing.T, e *testEnv) {
		e.remember(gitlab)
		e.mustRegister("hana@example.com", "correct horse battery staple")
		unknown := e.unknownKey()
		forged := e.sign("alice", signedWith(jwt.SigningMethodHS256, []byte("another secret of at least 32 bytes, not the server's")))
		report := reportBody(unknown)
		stranger := leaktest.NewSigner(t, gh.ID) // the right identifier, another key
		leakHeaders := hdr("Github-Public-Key-Identifier", gh.ID, "Github-Public-Key-Signature", stranger.Sign(t, []byte(report)))
		revoke := `[{"type":"apikeyd_api_key","token":"` + unknown + `","location":"https://gitlab.example/o/r"}]`

		for i, tc := range []struct {
			name string
			// req is the i-th request of the burst, sent from addr.
			req  func(i int, addr string) (method, path string, h http.Header, body *string)
			code string // of the 401 of an attempt evaluated
			rate float64
		}{
			{"LoginPerAccount", func(i int, _ string) (string, string, http.Header, *string) {
				// From n addresses: only the account's budget holds them.
				return "POST", "/auth/login", fromAddr(fmt.Sprintf("198.51.100.%d", i+1), nil), credentials("hana@example.com", "wrong password")
			}, "INVALID_CREDENTIALS", 1.0 / 60},
			{"LoginPerAddress", func(i int, addr string) (string, string, http.Header, *string) {
				// To n accounts: only the address's budget holds them.
				return "POST", "/auth/login", fromAddr(addr, nil), credentials(fmt.Sprintf("user%d@example.com", i), "wrong password")
			}, "INVALID_CREDENTIALS", 1},
			{"APIKeyVerify", func(_ int, addr string) (string, string, http.Header, *string) {
				return "GET", "/auth/verify", fromAddr(addr, hdr("X-Api-Key", unknown)), nil
			}, "INVALID_OR_EXPIRED_TOKEN", 1},
			{"APIKeyMiddleware", func(_ int, addr string) (string, string, http.Header, *string) {
				return "GET", "/auth/api-keys", fromAddr(addr, bearer(unknown)), nil
			}, "INVALID_OR_EXPIRED_TOKEN", 1},
			{"JWT", func(_ int, addr string) (string, string, http.Header, *string) {
				return "GET", "/auth/verify", fromAddr(addr, bearer(forged)), nil
			}, "INVALID_OR_EXPIRED_TOKEN", 1},
			{"LeakReport", func(_ int, addr string) (string, string, http.Header, *string) {
				return "POST", "/auth/leaks", fromAddr(addr, leakHeaders), &report
			}, "INVALID_SIGNATURE", 1},
			{"GitLab", func(_ int, addr string) (string, string, http.Header, *string) {
				return "POST", "/auth/leaks/gitlab/revoke_tokens", fromAddr(addr, hdr("Authorization", "guess")), &revoke
			}, "INVALID_OR_EXPIRED_TOKEN", 1},
		} {
			t.Run(tc.name, func(t *testing.T) {
				addr := fmt.Sprintf("203.0.113.%d", i+1)
				start := time.Now()
				rs := e.sendAll(t, n, func(i int) (string, string, http.Header, *string) { return tc.req(i, addr) })
				refilled := int(time.Since(start).Seconds() * tc.rate)
				evaluated := 0
				for _, res := range rs {
					switch res.Status {
					case http.StatusUnauthorized:
						wantError(t, res, http.StatusUnauthorized, tc.code)
						evaluated++
					default:
						wantRateLimited(t, res)
					}
				}
				t.Logf("%d of %d evaluated, %d refilled meanwhile", evaluated, n, refilled)
				if evaluated < failBurst || evaluated > failBurst+refilled {
					t.Errorf("%d of %d failed attempts sent at once were evaluated; want %d (+%d refilled meanwhile)", evaluated, n, failBurst, refilled)
				}
			})
		}
	})
}

// TestFailureLimitsSparesSuccesses: a success costs no budget, also while it
// is being evaluated: successes sent at once when a single failure is left
// in the budget are all served (those that find the last token held by an
// attempt in flight wait for it instead of being refused), and they leave
// that failure in the budget.
func TestFailureLimitsSparesSuccesses(t *testing.T) {
	eachDBWith(t, limitedBehindProxy, func(t *testing.T, e *testEnv) {
		const password = "correct horse battery staple"
		e.mustRegister("ivan@example.com", password)
		key := e.create(e.token("ivan"), nil).Key

		for i, tc := range []struct {
			name          string
			fail, succeed func(addr string) (method, path string, h http.Header, body *string)
			n             int
			// slow: the budget refills too slowly (per account, one a
			// minute) to refill during the test, so it can be seen spent.
			slow bool
		}{
			{"Login", func(addr string) (string, string, http.Header, *string) {
				return "POST", "/auth/login", fromAddr(addr, nil), credentials("ivan@example.com", "wrong password")
			}, func(addr string) (string, string, http.Header, *string) {
				return "POST", "/auth/login", fromAddr(addr, nil), credentials("ivan@example.com", password)
			}, 2 * failBurst, true},
			{"APIKey", func(addr string) (string, string, http.Header, *string) {
				return "GET", "/auth/verify", fromAddr(addr, hdr("X-Api-Key", e.unknownKey())), nil
			}, func(addr string) (string, string, http.Header, *string) {
				return "GET", "/auth/verify", fromAddr(addr, hdr("X-Api-Key", key)), nil
			}, 64, false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				addr := fmt.Sprintf("203.0.113.%d", 50+i)
				e.remember(password)
				send := func(req func(string) (string, string, http.Header, *string)) response {
					t.Helper()
					return e.do(req(addr))
				}
				start := time.Now()
				for range failBurst - 1 {
					if res := send(tc.fail); res.Status != http.StatusUnauthorized {
						t.Fatalf("a failure within the budget: %d %s", res.Status, res.Body)
					}
				}
				if res := send(tc.succeed); res.Status != http.StatusOK {
					t.Fatalf("a success after %d failures: %d %s", failBurst-1, res.Status, res.Body)
				}
				for i, res := range e.sendAll(t, tc.n, func(int) (string, string, http.Header, *string) { return tc.succeed(addr) }) {
					if res.Status != http.StatusOK {
						t.Fatalf("success %d of %d sent at once: %d %s", i, tc.n, res.Status, res.Body)
					}
				}
				if !tc.slow || time.Since(start) >= time.Minute {
					return // the budget may have refilled
				}
				// The successes left the last failure of the budget.
				if res := send(tc.fail); res.Status != http.StatusUnauthorized {
					t.Fatalf("the last failure of the budget: %d %s", res.Status, res.Body)
				}
				wantRateLimited(t, send(tc.succeed))
			})
		}
	})
}

// TestFailureLimitsPerNetwork: the failures of an IPv6 client count against
// its /64, whichever of its addresses it sends from; another /64 and an
// IPv4 address have budgets of their own (an IPv4-mapped address is the
// IPv4 address).
func TestFailureLimitsPerNetwork(t *testing.T) {
	eachDBWith(t, limitedBehindProxy, func(t *testing.T, e *testEnv) {
		bad := hdr("X-Api-Key", e.unknownKey())
		for i := range failBurst {
			wantError(t, e.do("GET", "/auth/verify", fromAddr(fmt.Sprintf("2001:db8:1:2::%x", i+1), bad), nil), 401, "INVALID_OR_EXPIRED_TOKEN")
			wantError(t, e.do("GET", "/auth/verify", fromAddr("203.0.113.9", bad), nil), 401, "INVALID_OR_EXPIRED_TOKEN")
		}
		wantRateLimited(t, e.do("GET", "/auth/verify", fromAddr("2001:db8:1:2:ffff:ffff:ffff:ffff", bad), nil))
		wantRateLimited(t, e.do("GET", "/auth/verify", fromAddr("::ffff:203.0.113.9", bad), nil))
		wantError(t, e.do("GET", "/auth/verify", fromAddr("2001:db8:1:3::1", bad), nil), 401, "INVALID_OR_EXPIRED_TOKEN")
		wantError(t, e.do("GET", "/auth/verify", fromAddr("203.0.113.10", bad), nil), 401, "INVALID_OR_EXPIRED_TOKEN")
	})
}
