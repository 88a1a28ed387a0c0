package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/clocktest"
	"github.com/apikeyd/apikeyd/internal/dbtest"
	"github.com/apikeyd/apikeyd/internal/redistest"
)

// serverGroup is several apikeyd processes on one PostgreSQL database and
// one Redis, with one JWT secret.
type serverGroup struct {
	t       *testing.T
	procs   []serverProcess
	servers []*testEnv // the harness's client for each process
	tok     string     // alice's login token, valid on every server

	bin, secret string
	env         []string
	transport   *http.Transport
}

// startServerGroup starts n apikeyd processes, built from this tree, on a
// new PostgreSQL database, sharing the Redis at redisURL ("" for none).
func startServerGroup(t *testing.T, n int, redisURL string) *serverGroup {
	t.Helper()
	dsn := dbtest.DSN(t, "postgres")
	secret := strings.Repeat("p", 40)
	g := &serverGroup{
		t:      t,
		bin:    buildServer(t),
		secret: secret,
		env:    []string{"DATABASE_URL=" + dsn, "JWT_SECRET=" + secret, "REDIS_URL=" + redisURL},
		// Enough idle connections for a burst to every server at once.
		transport: &http.Transport{MaxIdleConnsPerHost: 256},
	}
	t.Cleanup(g.transport.CloseIdleConnections)
	for range n {
		g.add()
	}
	g.tok = g.servers[0].token("alice")
	return g
}

// add starts one more process in g and returns the harness's client for
// it.
func (g *serverGroup) add() *testEnv {
	g.t.Helper()
	p := startServer(g.t, g.bin, g.env...)
	e := &testEnv{t: g.t, URL: p.URL, Secret: []byte(g.secret), Clock: clocktest.Running(), client: contractClient(g.t, g.transport)}
	g.procs = append(g.procs, p)
	g.servers = append(g.servers, e)
	return e
}

// create makes a key through server 0 with body and returns it.
func (g *serverGroup) create(body string) createdKey {
	g.t.Helper()
	return g.servers[0].create(g.tok, str(body))
}

// verify asks server i to verify key, with the query string q ("" for
// none); any goroutine may call it.
func (g *serverGroup) verify(i int, key, q string) (response, error) {
	path := "/auth/verify"
	if q != "" {
		path += "?" + q
	}
	return g.servers[i%len(g.servers)].send("GET", path, hdr("X-Api-Key", key), nil)
}

// creditsLeft returns the balance of key id as its owner lists it.
func (g *serverGroup) creditsLeft(id string) int64 {
	g.t.Helper()
	res := g.servers[0].do("GET", "/auth/api-keys", bearer(g.tok), nil)
	var out struct {
		APIKeys []struct {
			ID      string `json:"id"`
			Credits *struct {
				Remaining int64 `json:"remaining"`
			} `json:"credits"`
		} `json:"api_keys"`
	}
	if err := json.Unmarshal(res.Body, &out); err != nil {
		g.t.Fatalf("list: %v %s", err, res.Body)
	}
	for _, k := range out.APIKeys {
		if k.ID == id {
			if k.Credits == nil {
				g.t.Fatalf("key %s is listed without credits", id)
			}
			return k.Credits.Remaining
		}
	}
	g.t.Fatalf("key %s is not listed", id)
	return 0
}

// waitFallback waits until every server's apikeyd_rate_limit_fallback is
// want (1: on its own buckets, Redis unreachable; 0: on Redis), failing
// the test after 10 s.
func (g *serverGroup) waitFallback(want float64, what string) {
	g.t.Helper()
	start := time.Now()
	for i, s := range g.servers {
		for {
			res, err := http.Get(s.URL + "/metrics")
			if err != nil {
				g.t.Fatal(err)
			}
			body, err := io.ReadAll(res.Body)
			res.Body.Close()
			if err != nil {
				g.t.Fatal(err)
			}
			if parseMetrics(g.t, body).value("apikeyd_rate_limit_fallback") == want {
				break
			}
			if time.Since(start) > 10*time.Second {
				g.t.Fatalf("server %d: apikeyd_rate_limit_fallback is not %v after 10 s: it never %s", i, want, what)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	g.t.Logf("every server %s within %s", what, time.Since(start).Round(time.Millisecond))
}

// burstResult counts the answers to a burst.
type burstResult struct {
	ok, limited int
	others      []string // any other answer, or a transport error
	elapsed     time.Duration
}

// burst sends n verifications of key at once, request j to server j mod
// the number of servers, and counts the answers. elapsed runs from before
// the first request to after the last answer.
func (g *serverGroup) burst(key string, n int) burstResult {
	var (
		mu    sync.Mutex
		r     burstResult
		wg    sync.WaitGroup
		ready sync.WaitGroup
		start = make(chan struct{})
	)
	ready.Add(n)
	for j := range n {
		wg.Go(func() {
			ready.Done()
			<-start
			res, err := g.verify(j, key, "")
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				r.others = append(r.others, err.Error())
			case res.Status == http.StatusOK:
				r.ok++
			case res.Status == http.StatusTooManyRequests && errorCode(res) == "RATE_LIMITED":
				r.limited++
			default:
				r.others = append(r.others, fmt.Sprintf("%d %s", res.Status, res.Body))
			}
		})
	}
	ready.Wait()
	began := time.Now()
	close(start)
	wg.Wait()
	r.elapsed = time.Since(began)
	return r
}

// errorCode returns the code of an error answer, "" for any other.
func errorCode(res response) string {
	var body struct {
		Code string `json:"code"`
	}
	_ = json.Unmarshal(res.Body, &body)
	return body.Code
}

// refill is how many whole tokens a bucket of limit per period gains in d.
func refill(limit int, period, d time.Duration) int {
	return int(int64(limit) * int64(d) / int64(period))
}

// TestPolicyAcrossServers runs three apikeyd processes on one PostgreSQL
// database and one Redis, and proves the usage policy's promises across
// servers: a policy changed through one server holds on the others within
// a second; a burst spread over all three gets the key's limit through,
// plus what refills meanwhile, never more; credits are exact whatever the
// concurrency, through a Redis outage (never a 5xx) and kill -9 of a
// server.
func TestPolicyAcrossServers(t *testing.T) {
	redis := redistest.Start(t)
	g := startServerGroup(t, 3, redis.URL().String())

	t.Run("ChangeSeenWithinOneSecond", func(t *testing.T) {
		k := g.create(`{"name":"changed"}`)
		// Every server caches the key.
		for i := range g.servers {
			for range 3 {
				if res, err := g.verify(i, k.Key, ""); err != nil || res.Status != http.StatusOK {
					t.Fatalf("server %d: %v %d %s", i, err, res.Status, res.Body)
				}
			}
		}
		patch := func(body string) time.Time {
			t.Helper()
			if res := g.servers[0].do("PATCH", "/auth/api-keys/"+k.ID, bearer(g.tok), str(body)); res.Status != http.StatusOK {
				t.Fatalf("PATCH %s: %d %s", body, res.Status, res.Body)
			}
			return time.Now()
		}
		// until verifies k on server i until done says the answer shows
		// the change, and fails unless it does within a second of at.
		until := func(i int, at time.Time, what string, done func(response) bool) {
			t.Helper()
			for {
				res, err := g.verify(i, k.Key, "")
				if err != nil {
					t.Fatal(err)
				}
				if done(res) {
					t.Logf("server %d: %s %s after the PATCH", i, what, time.Since(at).Round(time.Millisecond))
					return
				}
				if time.Since(at) > time.Second {
					t.Fatalf("server %d: not %s a second after the PATCH: %d %s", i, what, res.Status, res.Body)
				}
				time.Sleep(10 * time.Millisecond)
			}
		}
		isError := func(status int, code string) func(response) bool {
			return func(res response) bool { return res.Status == status && errorCode(res) == code }
		}

		at := patch(`{"enabled":false}`)
		if res, _ := g.verify(0, k.Key, ""); !isError(http.StatusForbidden, "KEY_DISABLED")(res) {
			t.Fatalf("the server that disabled the key answered %d %s after its 200", res.Status, res.Body)
		}
		until(1, at, "refusing the disabled key", isError(http.StatusForbidden, "KEY_DISABLED"))
		until(2, at, "refusing the disabled key", isError(http.StatusForbidden, "KEY_DISABLED"))

		at = patch(`{"enabled":true,"allowed_ips":["192.0.2.0/24"]}`)
		until(1, at, "refusing the test's address", isError(http.StatusForbidden, "IP_NOT_ALLOWED"))
		until(2, at, "refusing the test's address", isError(http.StatusForbidden, "IP_NOT_ALLOWED"))

		// One token an hour, shared: the first server to see the policy
		// takes it, and then every server refuses.
		at = patch(`{"allowed_ips":null,"rate_limit":{"limit":1,"period_seconds":3600}}`)
		for i := range g.servers {
			until(i, at, "enforcing the new rate limit", isError(http.StatusTooManyRequests, "RATE_LIMITED"))
		}
	})

	// limit tokens refilled every period, 500 ms apart: a burst over one or
	// two seconds gains a few tokens, counted exactly.
	const limit, period = 20, 10 * time.Second
	rateLimited := fmt.Sprintf(`{"rate_limit":{"limit":%d,"period_seconds":%d}}`, limit, int(period.Seconds()))

	t.Run("BurstSharesOneBucket", func(t *testing.T) {
		k := g.create(rateLimited)
		r := g.burst(k.Key, 3*limit)
		most := limit + refill(limit, period, r.elapsed)
		t.Logf("%d of %d let through in %s (at most %d), %d refused", r.ok, 3*limit, r.elapsed.Round(time.Millisecond), most, r.limited)
		if len(r.others) > 0 {
			t.Fatalf("answers other than 200 and 429 RATE_LIMITED: %q", r.others)
		}
		if r.ok < limit || r.ok > most {
			t.Fatalf("%d let through, want %d to %d: the servers do not share one bucket", r.ok, limit, most)
		}
	})

	t.Run("CreditsExact", func(t *testing.T) {
		testCreditsExact(t, g, nil)
	})

	t.Run("RedisOutage", func(t *testing.T) {
		k := g.create(fmt.Sprintf(`{"rate_limit":{"limit":%d,"period_seconds":1}}`, 50))
		var (
			answered, duringOutage atomic.Int64
			down                   atomic.Bool
			mu                     sync.Mutex
			bad                    []string
			wg                     sync.WaitGroup
		)
		stop := make(chan struct{})
		for w := range 6 {
			wg.Go(func() {
				for j := w; ; j++ {
					select {
					case <-stop:
						return
					default:
					}
					res, err := g.verify(j, k.Key, "")
					switch {
					case err != nil:
						mu.Lock()
						bad = append(bad, err.Error())
						mu.Unlock()
					case res.Status != http.StatusOK && res.Status != http.StatusTooManyRequests:
						mu.Lock()
						bad = append(bad, fmt.Sprintf("server %d: %d %s", j%3, res.Status, res.Body))
						mu.Unlock()
					}
					answered.Add(1)
					if down.Load() {
						duringOutage.Add(1)
					}
					time.Sleep(2 * time.Millisecond)
				}
			})
		}
		time.Sleep(500 * time.Millisecond)
		down.Store(true)
		redis.Kill()
		g.waitFallback(1, "falls back to its own buckets once Redis is gone")
		time.Sleep(500 * time.Millisecond) // verifications on the servers' own buckets
		redis.Restart()
		down.Store(false)
		g.waitFallback(0, "is back on Redis")

		// Back on Redis, every server takes from the one bucket again: a
		// server on buckets of its own would let its third of a burst
		// through on top of the shared limit.
		fresh := g.create(rateLimited)
		r := g.burst(fresh.Key, 3*limit)
		most := limit + refill(limit, period, r.elapsed)
		t.Logf("after the outage: %d of %d let through in %s (at most %d)", r.ok, 3*limit, r.elapsed.Round(time.Millisecond), most)
		if len(r.others) > 0 {
			t.Fatalf("answers other than 200 and 429 RATE_LIMITED after Redis came back: %q", r.others)
		}
		if r.ok < limit || r.ok > most {
			t.Fatalf("%d let through after Redis came back, want %d to %d", r.ok, limit, most)
		}
		close(stop)
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		if len(bad) > 0 {
			t.Fatalf("%d of %d verifications were not 200 or 429, e.g. %q", len(bad), answered.Load(), bad[:min(len(bad), 5)])
		}
		if duringOutage.Load() == 0 {
			t.Fatal("no verification was answered while Redis was down")
		}
		t.Logf("%d verifications, %d while Redis was down, all 200 or 429", answered.Load(), duringOutage.Load())
	})

	// Last: it kills a server.
	t.Run("CreditsExactThroughKill9", func(t *testing.T) {
		testCreditsExact(t, g, func() {
			if err := g.procs[2].Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			_ = g.procs[2].Wait()
		})
	})
}

// testCreditsExact spends a balance with hundreds of concurrent
// verifications of various costs spread over g's servers. The costs of the
// 200 answers never add up to more than the balance, and what is left is
// the balance less those costs; each 200 reports a different remaining
// balance. When kill is not nil it is called halfway through: then the
// requests to the killed server that got no answer may have spent too, but
// nothing else may be missing.
func testCreditsExact(t *testing.T, g *serverGroup, kill func()) {
	const (
		balance  = 1000
		requests = 400 // of costs 1…7: about 1,600 credits asked for
		workers  = 32
	)
	k := g.create(fmt.Sprintf(`{"credits":{"remaining":%d}}`, balance))
	var (
		mu                  sync.Mutex
		spent, unanswered   int64
		ok, exceeded        int
		remaining           []int64
		bad                 []string
		wg                  sync.WaitGroup
		next                atomic.Int64
		answers             atomic.Int64
		killed              = make(chan struct{})
		killOnce            sync.Once
		lostServer          = -1
		afterKillUnanswered int
	)
	if kill != nil {
		lostServer = len(g.servers) - 1
	}
	for range workers {
		wg.Go(func() {
			for {
				j := int(next.Add(1)) - 1
				if j >= requests {
					return
				}
				cost := int64(j%7 + 1)
				res, err := g.verify(j, k.Key, "cost="+strconv.FormatInt(cost, 10))
				if n := answers.Add(1); kill != nil && n == requests/2 {
					killOnce.Do(func() { kill(); close(killed) })
				}
				mu.Lock()
				switch {
				case err != nil && j%len(g.servers) == lostServer:
					unanswered += cost
					afterKillUnanswered++
				case err != nil:
					bad = append(bad, err.Error())
				case res.Status == http.StatusOK:
					var body struct {
						Credits *struct {
							Remaining int64 `json:"remaining"`
						} `json:"credits"`
					}
					if json.Unmarshal(res.Body, &body) != nil || body.Credits == nil {
						bad = append(bad, "200 without credits: "+string(res.Body))
						break
					}
					ok++
					spent += cost
					remaining = append(remaining, body.Credits.Remaining)
					if got := res.Header.Get("X-Auth-Credits-Remaining"); got != strconv.FormatInt(body.Credits.Remaining, 10) {
						bad = append(bad, fmt.Sprintf("X-Auth-Credits-Remaining %q with remaining %d", got, body.Credits.Remaining))
					}
				case res.Status == http.StatusTooManyRequests && errorCode(res) == "USAGE_EXCEEDED":
					exceeded++
				default:
					bad = append(bad, fmt.Sprintf("%d %s", res.Status, res.Body))
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if kill != nil {
		<-killed
	}
	if len(bad) > 0 {
		t.Fatalf("%d unexpected answers, e.g. %q", len(bad), bad[:min(len(bad), 5)])
	}
	left := g.creditsLeft(k.ID)
	t.Logf("%d answered 200 spending %d of %d, %d answered 429 USAGE_EXCEEDED, %d unanswered (asking %d); %d left",
		ok, spent, balance, exceeded, afterKillUnanswered, unanswered, left)
	if spent > balance {
		t.Fatalf("the 200 answers spent %d credits of a balance of %d", spent, balance)
	}
	if exceeded == 0 {
		t.Fatal("no verification was refused: the balance was never exhausted")
	}
	if kill == nil && left != balance-spent {
		t.Fatalf("%d credits left, want %d - %d = %d", left, balance, spent, balance-spent)
	}
	if kill != nil && (left > balance-spent || balance-spent-left > unanswered) {
		t.Fatalf("%d credits left: want at most %d, and at least that less the %d asked by requests the kill left unanswered",
			left, balance-spent, unanswered)
	}
	slices.Sort(remaining)
	if len(remaining) > 0 && remaining[0] < 0 {
		t.Fatalf("a 200 reported a negative balance: %d", remaining[0])
	}
	if len(slices.Compact(remaining)) != ok {
		t.Fatal("two 200 answers reported the same remaining balance: two spends saw the same balance")
	}
}
