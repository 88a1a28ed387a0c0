package apikey_test

import (
	"context"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/apikeyd/apikeyd/internal/apikey"
)

// BenchmarkVerifyCounting is what counting usage costs a verification
// answered from the cache (the fastest verification, so the one counting
// weighs on most): two services, one counting and one not, verify in turns
// of chunk verifications each, the order swapped every turn, so that a
// machine whose load moves (a shared one) weighs on both alike. It reports
// each one's ns per verification and the ratio of their rates (with /
// without; 1 is free). Serial is one goroutine; Parallel is one per CPU
// over 64 keys (BENCHMARKS.md, "Usage analytics").
func BenchmarkVerifyCounting(b *testing.B) {
	const chunk = 2000
	ctx := context.Background()
	setup := func(b *testing.B, counting bool, n int) (*apikey.Service, []string) {
		svc := benchService(b, "sqlite", apikey.Config{})
		if !counting {
			apikey.WithoutCounting(svc)
		}
		keys := make([]string, n)
		for i := range keys {
			keys[i] = benchKey(b, svc)
			if _, err := svc.Verify(ctx, apikey.VerifyRequest{Key: keys[i]}); err != nil {
				b.Fatal(err)
			}
		}
		return svc, keys
	}
	for _, c := range []struct {
		name    string
		workers int
	}{{"Serial", 1}, {"Parallel", runtime.GOMAXPROCS(0)}} {
		b.Run(c.name, func(b *testing.B) {
			without, keysWithout := setup(b, false, 64)
			with, keysWith := setup(b, true, 64)
			run := func(svc *apikey.Service, keys []string) time.Duration {
				start := time.Now()
				var wg sync.WaitGroup
				for w := range c.workers {
					wg.Go(func() {
						for i := range chunk / c.workers {
							if _, err := svc.Verify(ctx, apikey.VerifyRequest{Key: keys[(w+i*c.workers)%len(keys)]}); err != nil {
								b.Error(err)
								return
							}
						}
					})
				}
				wg.Wait()
				return time.Since(start)
			}
			var tWithout, tWith time.Duration
			var ratios []float64 // of each turn
			for b.Loop() {
				var dWithout, dWith time.Duration
				if len(ratios)%2 == 0 {
					dWithout = run(without, keysWithout)
					dWith = run(with, keysWith)
				} else {
					dWith = run(with, keysWith)
					dWithout = run(without, keysWithout)
				}
				tWithout += dWithout
				tWith += dWith
				ratios = append(ratios, float64(dWithout)/float64(dWith))
			}
			n := float64(len(ratios) * chunk)
			b.ReportMetric(float64(tWithout.Nanoseconds())/n, "ns/verify-without")
			b.ReportMetric(float64(tWith.Nanoseconds())/n, "ns/verify-with")
			// The median turn: a turn that another process interrupted
			// says nothing about counting.
			slices.Sort(ratios)
			b.ReportMetric(ratios[len(ratios)/2], "rate-ratio")
		})
	}
}

// BenchmarkCount is counting alone, without the verification around it.
func BenchmarkCount(b *testing.B) {
	svc := benchService(b, "sqlite", apikey.Config{})
	ids := make([]string, 64)
	for i := range ids {
		ids[i] = uuid.NewString()
	}
	now := time.Now()
	b.Run("Serial", func(b *testing.B) {
		for b.Loop() {
			svc.Count(ids[0], apikey.OutcomeOK, 1, now)
		}
	})
	b.Run("Parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				svc.Count(ids[i%len(ids)], apikey.OutcomeOK, 1, now)
				i++
			}
		})
	})
}
