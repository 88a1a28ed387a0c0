package apikey_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/clocktest"
)

var limiterEpoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// take takes a token of bucket at clock's time.
func take(m *apikey.MemoryLimiter, bucket string, l apikey.RateLimit, clock *clocktest.Clock) apikey.Quota {
	return m.Take(context.Background(), bucket, l, clock.Now())
}

func TestMemoryLimiterBurstThenRefill(t *testing.T) {
	m := apikey.NewMemoryLimiter(0)
	clock := clocktest.Stopped(limiterEpoch)
	l := apikey.RateLimit{Limit: 10, Period: time.Minute} // a token every 6s

	for i := range 10 {
		q := take(m, "k", l, clock)
		want := apikey.Quota{Allowed: true, Limit: 10, Period: time.Minute, Remaining: int64(9 - i), Reset: time.Duration(i+1) * 6 * time.Second}
		if q != want {
			t.Fatalf("take %d: %+v, want %+v", i+1, q, want)
		}
	}
	refused := apikey.Quota{Limit: 10, Period: time.Minute, RetryAfter: 6 * time.Second, Reset: time.Minute}
	if q := take(m, "k", l, clock); q != refused {
		t.Fatalf("take 11: %+v, want %+v", q, refused)
	}

	clock.Advance(4 * time.Second)
	refused = apikey.Quota{Limit: 10, Period: time.Minute, RetryAfter: 2 * time.Second, Reset: 56 * time.Second}
	if q := take(m, "k", l, clock); q != refused {
		t.Fatalf("4s later: %+v, want %+v", q, refused)
	}
	clock.Advance(2 * time.Second)
	want := apikey.Quota{Allowed: true, Limit: 10, Period: time.Minute, Remaining: 0, Reset: time.Minute}
	if q := take(m, "k", l, clock); q != want {
		t.Fatalf("6s later: %+v, want %+v", q, want)
	}
	if q := take(m, "k", l, clock); q.Allowed {
		t.Fatalf("the token that came back was taken twice: %+v", q)
	}

	// Half the period refills half the bucket.
	clock.Advance(30 * time.Second)
	for i := range 5 {
		if q := take(m, "k", l, clock); !q.Allowed || q.Remaining != int64(4-i) {
			t.Fatalf("30s later, take %d: %+v, want allowed with %d left", i+1, q, 4-i)
		}
	}
	if q := take(m, "k", l, clock); q.Allowed {
		t.Fatalf("30s later, take 6: %+v, want refused", q)
	}

	// An idle bucket is full, never fuller.
	clock.Advance(time.Hour)
	if q := take(m, "k", l, clock); !q.Allowed || q.Remaining != 9 || q.Reset != 6*time.Second {
		t.Fatalf("an hour later: %+v, want allowed with 9 left, full in 6s", q)
	}
}

// A rate whose emission interval is not a whole number of nanoseconds is
// still exact: 3 per second lets 3 through at once and the 4th exactly a
// third of a second later (333333333.33ns, rounded up).
func TestMemoryLimiterFractionalInterval(t *testing.T) {
	m := apikey.NewMemoryLimiter(0)
	clock := clocktest.Stopped(limiterEpoch)
	l := apikey.RateLimit{Limit: 3, Period: time.Second}
	for i := range 3 {
		if q := take(m, "k", l, clock); !q.Allowed || q.Remaining != int64(2-i) {
			t.Fatalf("take %d: %+v", i+1, q)
		}
	}
	q := take(m, "k", l, clock)
	if q.Allowed || q.RetryAfter != 333333334 || q.Reset != time.Second {
		t.Fatalf("take 4: %+v, want refused, retry after 333333334ns, full in 1s", q)
	}
	clock.Advance(333333333)
	if q := take(m, "k", l, clock); q.Allowed || q.RetryAfter != 1 {
		t.Fatalf("333333333ns later: %+v, want refused for 1ns more", q)
	}
	clock.Advance(1)
	if q := take(m, "k", l, clock); !q.Allowed || q.Remaining != 0 {
		t.Fatalf("a third of a second later: %+v, want allowed", q)
	}

	// The largest rate over the longest period: exact too.
	l = apikey.RateLimit{Limit: apikey.MaxRateLimit, Period: apikey.MaxRateLimitPeriod}
	for i := range 3 {
		if q := take(m, "big", l, clock); !q.Allowed || q.Remaining != apikey.MaxRateLimit-1-int64(i) {
			t.Fatalf("big take %d: %+v", i+1, q)
		}
	}
}

// Limit requests sent at once from many goroutines: exactly Limit are
// allowed, and as many again on each of many other buckets.
func TestMemoryLimiterConcurrentBurst(t *testing.T) {
	m := apikey.NewMemoryLimiter(0)
	at := limiterEpoch
	l := apikey.RateLimit{Limit: 100, Period: time.Hour}
	const buckets, goroutines, each = 8, 32, 40 // 1280 requests a bucket
	var allowed [buckets]atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for g := range goroutines {
		wg.Go(func() {
			<-start
			for i := range each * buckets {
				b := (g + i) % buckets
				if m.Take(context.Background(), fmt.Sprint("bucket-", b), l, at).Allowed {
					allowed[b].Add(1)
				}
			}
		})
	}
	close(start)
	wg.Wait()
	for b := range buckets {
		if n := allowed[b].Load(); n != l.Limit {
			t.Errorf("bucket %d let %d requests through, want exactly %d", b, n, l.Limit)
		}
	}
}

// A changed rate applies to the bucket's debt as it stands.
func TestMemoryLimiterRateChanged(t *testing.T) {
	m := apikey.NewMemoryLimiter(0)
	clock := clocktest.Stopped(limiterEpoch)
	for range 3 {
		take(m, "k", apikey.RateLimit{Limit: 3, Period: time.Second}, clock)
	}
	// The bucket is full in 1s; at 10 per 10s that is one token owed.
	q := take(m, "k", apikey.RateLimit{Limit: 10, Period: 10 * time.Second}, clock)
	if !q.Allowed || q.Remaining != 8 {
		t.Fatalf("after the change: %+v, want allowed with 8 left", q)
	}
}

func TestMemoryLimiterEviction(t *testing.T) {
	const capacity = 8
	m := apikey.NewMemoryLimiter(capacity)
	clock := clocktest.Stopped(limiterEpoch)
	l := apikey.RateLimit{Limit: 2, Period: 2 * time.Second} // a token a second
	name := func(prefix string, i int) string { return fmt.Sprint(prefix, i) }

	// Eight buckets; half of them drained, then a second passes: the
	// others are full again, the drained ones owe a token.
	for i := range capacity {
		take(m, name("k", i), l, clock)
		if i%2 == 0 {
			take(m, name("k", i), l, clock)
		}
	}
	clock.Advance(time.Second)

	// Four new buckets take the places of the four full ones, never of a
	// bucket that owes.
	for i := range capacity / 2 {
		take(m, name("new", i), l, clock)
	}
	if n := m.Len(); n != capacity {
		t.Fatalf("%d buckets, want %d", n, capacity)
	}
	for i := 0; i < capacity; i += 2 {
		if q := take(m, name("k", i), l, clock); !q.Allowed || q.Remaining != 0 {
			t.Fatalf("drained bucket %d after the new ones: %+v, want its last token (it was forgotten)", i, q)
		}
	}

	// Past capacity, with every bucket owing, memory stays bounded.
	for i := range 1000 {
		take(m, name("flood", i), l, clock)
	}
	if n := m.Len(); n > capacity {
		t.Fatalf("%d buckets after a flood, want at most %d", n, capacity)
	}
}

func TestMemoryLimiterBoundedByDefault(t *testing.T) {
	m := apikey.NewMemoryLimiter(0)
	at := limiterEpoch
	l := apikey.RateLimit{Limit: 1, Period: time.Hour}
	for i := range apikey.DefaultMaxBuckets + 5000 {
		at = at.Add(time.Microsecond)
		m.Take(context.Background(), fmt.Sprint(i), l, at)
	}
	if n := m.Len(); n > apikey.DefaultMaxBuckets {
		t.Fatalf("%d buckets, want at most %d", n, apikey.DefaultMaxBuckets)
	}
}

func TestMemoryLimiterRefusesARateWithoutTokens(t *testing.T) {
	m := apikey.NewMemoryLimiter(0)
	for _, l := range []apikey.RateLimit{{Limit: 0, Period: time.Second}, {Limit: 1}} {
		if q := m.Take(context.Background(), "k", l, limiterEpoch); q.Allowed {
			t.Errorf("%+v: allowed", l)
		}
	}
}

func TestNewServiceLimitsInMemoryByDefault(t *testing.T) {
	svc := apikey.NewService(nil, apikey.Config{})
	if _, ok := apikey.RateLimiterOf(svc).(*apikey.MemoryLimiter); !ok {
		t.Fatalf("rate limiter %T, want *apikey.MemoryLimiter", apikey.RateLimiterOf(svc))
	}
	shared := apikey.NewMemoryLimiter(1)
	if got := apikey.RateLimiterOf(apikey.NewService(nil, apikey.Config{RateLimiter: shared})); got != shared {
		t.Fatalf("rate limiter %v, want the configured one", got)
	}
}

// BenchmarkMemoryLimiterTake measures Take alone: each goroutine moves a
// clock of its own, since reading the time may cost more than Take.
func BenchmarkMemoryLimiterTake(b *testing.B) {
	l := apikey.RateLimit{Limit: apikey.MaxRateLimit, Period: time.Second}
	b.Run("OneKeyParallel", func(b *testing.B) {
		m := apikey.NewMemoryLimiter(0)
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			at := limiterEpoch
			for pb.Next() {
				at = at.Add(time.Microsecond)
				m.Take(context.Background(), "one", l, at)
			}
		})
	})
	b.Run("ManyKeysParallel", func(b *testing.B) {
		m := apikey.NewMemoryLimiter(0)
		names := make([]string, 10_000)
		for i := range names {
			names[i] = fmt.Sprintf("01930000-0000-7000-8000-%012d", i)
		}
		var next atomic.Int64
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i, at := int(next.Add(7919)), limiterEpoch
			for pb.Next() {
				at = at.Add(time.Microsecond)
				m.Take(context.Background(), names[i%len(names)], l, at)
				i++
			}
		})
	})
}
