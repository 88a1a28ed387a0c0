package redislimit_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/redislimit"
	"github.com/apikeyd/apikeyd/internal/redistest"
)

// newLimiter returns a limiter on the Redis at u, closed when the test ends.
func newLimiter(t *testing.T, cfg redislimit.Config) *redislimit.Limiter {
	t.Helper()
	l, err := redislimit.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// observed records what a limiter tells its observer.
type observed struct {
	mu    sync.Mutex
	calls []bool
}

func (o *observed) RateLimitFallback(on bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.calls = append(o.calls, on)
}

func (o *observed) get() []bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.calls)
}

// Two servers (two limiters, each with its own connections) share one
// bucket: a burst from many goroutines through both gets exactly the limit.
// A token comes back every 72s, far longer than the burst takes, so nothing
// refills meanwhile.
func TestSharedBucketAcrossServers(t *testing.T) {
	u := redistest.URL(t)
	// The burst dials its connections as it goes; under the race detector
	// on a busy machine that may take longer than the default timeout,
	// which this test is not about.
	cfg := redislimit.Config{URL: u, Timeout: 5 * time.Second}
	servers := []*redislimit.Limiter{newLimiter(t, cfg), newLimiter(t, cfg)}
	bucket := redistest.Unique("burst-")
	l := apikey.RateLimit{Limit: 50, Period: time.Hour}

	const goroutines, each = 32, 10
	var (
		mu        sync.Mutex
		remaining []int64
		refused   []apikey.Quota
		wg        sync.WaitGroup
	)
	start := make(chan struct{})
	for g := range goroutines {
		wg.Go(func() {
			<-start
			for range each {
				q := servers[g%2].Take(context.Background(), bucket, l, time.Now())
				mu.Lock()
				if q.Allowed {
					remaining = append(remaining, q.Remaining)
				} else {
					refused = append(refused, q)
				}
				mu.Unlock()
			}
		})
	}
	close(start)
	wg.Wait()
	for _, s := range servers {
		if s.Fallback() {
			t.Fatal("a limiter fell back during the burst")
		}
	}
	if len(remaining) != int(l.Limit) {
		t.Fatalf("%d of %d requests allowed, want exactly %d", len(remaining), goroutines*each, l.Limit)
	}
	// One after the other: each allowed request left one token fewer.
	slices.Sort(remaining)
	for i, r := range remaining {
		if r != int64(i) {
			t.Fatalf("remaining counts %v, want 0…%d once each", remaining, l.Limit-1)
		}
	}
	for _, q := range refused {
		if q.Remaining != 0 || q.RetryAfter <= 0 || q.RetryAfter > 72*time.Second || q.Reset <= 59*time.Minute || q.Reset > time.Hour {
			t.Fatalf("refused: %+v, want a token back within 72s and the bucket full in an hour", q)
		}
	}
}

// The quota means what the memory limiter's means, field by field, and the
// bucket's key expires once the bucket is full again.
func TestQuotaAndExpiry(t *testing.T) {
	u := redistest.URL(t)
	// A call slower than the default timeout on a busy machine would be
	// answered from the server's own buckets, and Redis would hold no key.
	lim := newLimiter(t, redislimit.Config{URL: u, Timeout: 5 * time.Second})
	bucket := redistest.Unique("quota-")
	l := apikey.RateLimit{Limit: 3, Period: 2 * time.Second}
	for i := range 3 {
		q := lim.Take(context.Background(), bucket, l, time.Now())
		if !q.Allowed || q.Limit != 3 || q.Period != 2*time.Second || q.Remaining != int64(2-i) || q.RetryAfter != 0 {
			t.Fatalf("take %d: %+v", i+1, q)
		}
		// Full again after (i+1) thirds of the period, less what passed.
		if max := time.Duration(i+1) * 666667 * time.Microsecond; q.Reset > max || q.Reset < max-time.Second {
			t.Fatalf("take %d: reset in %s, want about %s", i+1, q.Reset, max)
		}
	}
	q := lim.Take(context.Background(), bucket, l, time.Now())
	if q.Allowed || q.Remaining != 0 || q.RetryAfter <= 0 || q.RetryAfter > 666667*time.Microsecond || q.Reset <= q.RetryAfter || q.Reset > 2*time.Second {
		t.Fatalf("take 4: %+v, want refused, a token back within a third of 2s", q)
	}

	c := redistest.Client(t, u)
	key := redislimit.KeyPrefix + bucket
	ttl, err := c.PTTL(context.Background(), key).Result()
	if err != nil || ttl <= 0 || ttl > 2*time.Second+time.Millisecond {
		t.Fatalf("PTTL %s: %s, %v; want at most the period", key, ttl, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for c.Exists(context.Background(), key).Val() == 1 {
		if time.Now().After(deadline) {
			t.Fatalf("%s still there long after its bucket is full", key)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if q := lim.Take(context.Background(), bucket, l, time.Now()); !q.Allowed || q.Remaining != 2 {
		t.Fatalf("after the bucket is full again: %+v, want the whole burst", q)
	}
}

// An outage: Redis killed mid-run. Take keeps answering, from this server's
// buckets, without calling Redis again (only the probe does), says so once
// in the log (never with the password) and to the observer; Redis started
// again, the probe takes the limiter back to it by itself.
func TestOutageFallsBackAndRecovers(t *testing.T) {
	srv := redistest.Start(t)
	var log bytes.Buffer // read once the probe has stopped
	obs := &observed{}
	lim := newLimiter(t, redislimit.Config{
		URL:           srv.URL(),
		ProbeInterval: 50 * time.Millisecond,
		Observer:      obs,
		Log:           slog.New(slog.NewTextHandler(&log, nil)),
	})
	var calls atomic.Int64 // commands sent to Redis
	redislimit.ClientOf(lim).AddHook(countHook{&calls})
	ctx, stop := context.WithCancel(context.Background())
	var probe sync.WaitGroup
	probe.Go(func() { lim.Run(ctx) })
	t.Cleanup(func() { stop(); probe.Wait() })

	bucket := redistest.Unique("outage-")
	l := apikey.RateLimit{Limit: 5, Period: time.Hour}
	take := func() apikey.Quota { return lim.Take(context.Background(), bucket, l, time.Now()) }
	for i := range 3 {
		if q := take(); !q.Allowed || q.Remaining != int64(4-i) {
			t.Fatalf("take %d on Redis: %+v", i+1, q)
		}
	}

	srv.Kill()
	// The first take after the kill finds Redis gone and falls back: this
	// server's bucket of the key is new, so full.
	if q := take(); !q.Allowed || q.Remaining != 4 {
		t.Fatalf("first take without Redis: %+v, want allowed from a new bucket here", q)
	}
	if !lim.Fallback() {
		t.Fatal("not in fallback after Redis failed")
	}
	before := calls.Load()
	for i := range 100 {
		if q := take(); q.Allowed != (i < 4) {
			t.Fatalf("take %d without Redis: %+v", i+2, q)
		}
	}
	// Only the probe calls Redis while it is down: a few pings at most
	// during a hundred takes.
	if n := calls.Load() - before; n > 10 {
		t.Errorf("%d calls to Redis during 100 takes while it was down, want only the probe's", n)
	}

	srv.Restart()
	deadline := time.Now().Add(10 * time.Second)
	for lim.Fallback() {
		if time.Now().After(deadline) {
			t.Fatal("the limiter did not go back to Redis once it answered again")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The restarted Redis kept nothing: the key's bucket there is new.
	if q := take(); !q.Allowed || q.Remaining != 4 {
		t.Fatalf("first take on Redis again: %+v", q)
	}
	if n := redistest.Client(t, srv.URL()).Exists(context.Background(), redislimit.KeyPrefix+bucket).Val(); n != 1 {
		t.Fatal("the take after recovery did not reach Redis")
	}

	stop()
	probe.Wait()
	if got := obs.get(); !slices.Equal(got, []bool{false, true, false}) {
		t.Errorf("observer told %v, want [false true false] (start, fallback, recovery)", got)
	}
	out := log.String()
	if n := strings.Count(out, "level=WARN"); n != 1 {
		t.Errorf("%d warnings, want one for the outage:\n%s", n, out)
	}
	if !strings.Contains(out, "Redis answers again") {
		t.Errorf("no word of the recovery in the log:\n%s", out)
	}
	if strings.Contains(out, srv.Password()) {
		t.Errorf("the log shows Redis's password:\n%s", out)
	}
}

// A Redis that answers but may not run scripts (its user lacks the right)
// is no Redis to go back to: the probe, which runs the script, keeps the
// limiter on its own buckets instead of flapping between the two.
func TestProbeNeedsTheScript(t *testing.T) {
	srv := redistest.Start(t)
	admin := redistest.Client(t, srv.URL())
	if err := admin.Do(context.Background(), "ACL", "SETUSER", "noscript", "on", ">noscript-pw", "~*", "+@all", "-@scripting").Err(); err != nil {
		t.Fatal(err)
	}
	u := srv.URL()
	u.User = url.UserPassword("noscript", "noscript-pw")
	obs := &observed{}
	lim := newLimiter(t, redislimit.Config{URL: u, ProbeInterval: 20 * time.Millisecond, Observer: obs, Log: slog.New(slog.DiscardHandler)})
	if err := redislimit.ClientOf(lim).Ping(context.Background()).Err(); err != nil {
		t.Fatalf("the user cannot even PING: %v", err)
	}
	var calls atomic.Int64
	redislimit.ClientOf(lim).AddHook(countHook{&calls})
	ctx, stop := context.WithCancel(context.Background())
	var probe sync.WaitGroup
	probe.Go(func() { lim.Run(ctx) })
	defer func() { stop(); probe.Wait() }()

	if q := lim.Take(context.Background(), "k", apikey.RateLimit{Limit: 1, Period: time.Minute}, time.Now()); !q.Allowed {
		t.Fatalf("%+v: want allowed from this server's bucket", q)
	}
	deadline := time.Now().Add(10 * time.Second)
	for calls.Load() < 10 { // a few probes
		if time.Now().After(deadline) {
			t.Fatal("the probe does not run")
		}
		time.Sleep(10 * time.Millisecond)
	}
	stop()
	probe.Wait()
	if !lim.Fallback() {
		t.Error("back on a Redis that cannot run the script")
	}
	if got := obs.get(); !slices.Equal(got, []bool{false, true}) {
		t.Errorf("observer told %v, want [false true]", got)
	}
}

// A Redis that does not answer at all (a port that accepts connections but
// never replies) holds a take no longer than the timeout, then falls back.
func TestUnresponsiveRedisFallsBack(t *testing.T) {
	redistest.URL(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	lim := newLimiter(t, redislimit.Config{URL: &url.URL{Scheme: "redis", Host: ln.Addr().String()}, Timeout: 50 * time.Millisecond, Log: slog.New(slog.DiscardHandler)})
	q := lim.Take(context.Background(), "k", apikey.RateLimit{Limit: 1, Period: time.Minute}, time.Now())
	if !q.Allowed || !lim.Fallback() {
		t.Fatalf("%+v, fallback %v: want allowed from this server's bucket", q, lim.Fallback())
	}
}

// A caller that gives up (its request ended) is no outage.
func TestCallerCancelIsNoOutage(t *testing.T) {
	u := redistest.URL(t)
	lim := newLimiter(t, redislimit.Config{URL: u, Timeout: 5 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	lim.Take(ctx, redistest.Unique("cancel-"), apikey.RateLimit{Limit: 1, Period: time.Minute}, time.Now())
	if lim.Fallback() {
		t.Fatal("a cancelled request put the limiter in fallback")
	}
}

func TestNewRefusesBadOptionsWithoutQuotingTheURL(t *testing.T) {
	u, _ := url.Parse("redis://:hunter2@redis:6379/0?pool_size=many")
	if _, err := redislimit.New(redislimit.Config{URL: u}); err == nil || strings.Contains(err.Error(), "hunter2") {
		t.Fatalf("New: %v, want an error without the password", err)
	}
}

type countHook struct{ n *atomic.Int64 }

func (h countHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h countHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}

func (h countHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

func BenchmarkTake(b *testing.B) {
	u := redistest.URL(b)
	// A benchmark on a busy machine may see a call slower than the
	// default timeout; it measures Redis, not the fallback.
	lim, err := redislimit.New(redislimit.Config{URL: u, Timeout: 5 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	defer lim.Close()
	l := apikey.RateLimit{Limit: apikey.MaxRateLimit, Period: time.Second}
	// A server has many verifications in flight, each waiting on Redis.
	const inFlight = 16
	b.Run("OneKeyParallel", func(b *testing.B) {
		bucket := redistest.Unique("bench-")
		b.SetParallelism(inFlight)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				lim.Take(context.Background(), bucket, l, time.Now())
			}
		})
	})
	b.Run("ManyKeysParallel", func(b *testing.B) {
		prefix := redistest.Unique("bench-")
		var next atomic.Int64
		b.SetParallelism(inFlight)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := next.Add(7919)
			for pb.Next() {
				lim.Take(context.Background(), prefix+string(rune('a'+i%26))+string(rune('a'+i/26%26)), l, time.Now())
				i++
			}
		})
	})
	if lim.Fallback() {
		b.Fatal("the benchmark ran on the fallback")
	}
}
