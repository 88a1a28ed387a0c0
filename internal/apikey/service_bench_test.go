package apikey_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/apikey/apikeytest"
	"github.com/apikeyd/apikeyd/internal/dbtest"
	"github.com/apikeyd/apikeyd/internal/store"
)

// Benchmarks of the service over real databases. The PostgreSQL ones need
// APIKEYD_TEST_POSTGRES_URL (./scripts/test sets it); run them with
//
//	go test -run '^$' -bench . -benchmem ./internal/apikey/

// benchService returns a service over a fresh database of the named kind.
func benchService(b *testing.B, db string, cfg apikey.Config) *apikey.Service {
	b.Helper()
	return apikey.NewService(store.New(dbtest.Open(b, db), store.Config{}), cfg)
}

func signedIn(user string) context.Context {
	return apikey.WithPrincipal(context.Background(), apikey.Principal{UserID: user, Method: apikey.MethodJWT})
}

func benchKey(b *testing.B, svc *apikey.Service) string {
	b.Helper()
	k, err := svc.Create(signedIn("alice"), apikey.CreateInput{})
	if err != nil {
		b.Fatal(err)
	}
	return k.Secret
}

func BenchmarkVerify(b *testing.B) {
	ctx := context.Background()
	b.Run("CacheHit", func(b *testing.B) {
		svc := benchService(b, "sqlite", apikey.Config{})
		key := benchKey(b, svc)
		if _, err := svc.Verify(ctx, apikey.VerifyRequest{Key: key}); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := svc.Verify(ctx, apikey.VerifyRequest{Key: key}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("CacheHitParallel", func(b *testing.B) {
		svc := benchService(b, "sqlite", apikey.Config{})
		keys := make([]string, 64)
		for i := range keys {
			keys[i] = benchKey(b, svc)
			if _, err := svc.Verify(ctx, apikey.VerifyRequest{Key: keys[i]}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := svc.Verify(ctx, apikey.VerifyRequest{Key: keys[i%len(keys)]}); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
	for _, db := range dbtest.Names {
		b.Run("CacheMiss/"+db, func(b *testing.B) {
			svc := benchService(b, db, apikey.Config{CacheSize: -1})
			key := benchKey(b, svc)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := svc.Verify(ctx, apikey.VerifyRequest{Key: key}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("UnknownCached", func(b *testing.B) {
		svc := benchService(b, "sqlite", apikey.Config{})
		key := svc.Format().Generate()
		b.ReportAllocs()
		for b.Loop() {
			if _, err := svc.Verify(ctx, apikey.VerifyRequest{Key: key}); err == nil {
				b.Fatal("an unknown key verified")
			}
		}
	})
	b.Run("BadChecksum", func(b *testing.B) {
		svc := benchService(b, "sqlite", apikey.Config{})
		key := benchKey(b, svc)
		key = apikeytest.BadChecksum(key)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := svc.Verify(ctx, apikey.VerifyRequest{Key: key}); err == nil {
				b.Fatal("a bad checksum verified")
			}
		}
	})
}

func BenchmarkCreate(b *testing.B) {
	for _, db := range dbtest.Names {
		b.Run(db, func(b *testing.B) {
			svc := benchService(b, db, apikey.Config{})
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				// A user per key: the per-user count stays small.
				if _, err := svc.Create(signedIn(fmt.Sprintf("user-%d", i)), apikey.CreateInput{}); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

func BenchmarkList(b *testing.B) {
	for _, db := range dbtest.Names {
		b.Run(db+"/10keys", func(b *testing.B) {
			svc := benchService(b, db, apikey.Config{})
			ctx := signedIn("alice")
			for range 10 {
				if _, err := svc.Create(ctx, apikey.CreateInput{}); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportAllocs()
			for b.Loop() {
				keys, err := svc.List(ctx)
				if err != nil || len(keys) != 10 {
					b.Fatalf("%d keys, %v", len(keys), err)
				}
			}
		})
	}
}
