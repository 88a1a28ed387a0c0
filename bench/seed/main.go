// Command seed prepares the load benchmark (bench/load).
//
//	seed -database-url URL [-users N] [-keys N] -out DIR
//
// fills the database with N users of N keys each, generated in the real key
// format, holding the scopes orders:read and reports:read, and inserted in
// batches, and writes what the load generator needs
// to DIR:
//
//	keys.txt    one plaintext key per user (its newest), for /auth/verify
//	tokens.txt  one login token (JWT) per user, in the same order
//
//	seed -warm http://127.0.0.1:PORT -out DIR
//
// verifies every key of keys.txt once against a running server, so the
// verify run that follows measures cache hits.
//
// It is a benchmark tool: never point it at a database that matters.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/auth"
	"github.com/apikeyd/apikeyd/internal/store"
)

// benchScopes are every seeded key's scopes, so that the verify runs read
// and answer a scoped key, and the ?scope= run has something to check.
var benchScopes = []string{"orders:read", "reports:read"}

func main() {
	if err := run(context.Background()); err != nil {
		fmt.Fprintln(os.Stderr, "seed:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	dsn := flag.String("database-url", os.Getenv("DATABASE_URL"), "database to fill (DATABASE_URL)")
	users := flag.Int("users", 10_000, "users to create")
	keys := flag.Int("keys", 10, "keys per user")
	out := flag.String("out", ".", "directory for keys.txt and tokens.txt")
	prefix := flag.String("api-key-prefix", apikey.DefaultPrefix, "key prefix")
	warm := flag.String("warm", "", "verify every key of keys.txt once against the server at this URL, and do nothing else")
	flag.Parse()
	if *warm != "" {
		return warmUp(ctx, *warm, filepath.Join(*out, "keys.txt"))
	}
	jwtSecret := os.Getenv("JWT_SECRET")
	switch {
	case *dsn == "":
		return errors.New("set -database-url or DATABASE_URL")
	case len(jwtSecret) < 32:
		return errors.New("set JWT_SECRET (at least 32 bytes) to the server's secret")
	case *users < 1 || *keys < 1:
		return errors.New("-users and -keys must be positive")
	}

	db, err := store.Open(*dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := store.MigrateUp(ctx, db); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}

	keysOut, err := create(filepath.Join(*out, "keys.txt"))
	if err != nil {
		return err
	}
	tokensOut, err := create(filepath.Join(*out, "tokens.txt"))
	if err != nil {
		return err
	}

	start := time.Now()
	format := apikey.NewFormat(*prefix)
	// Created a day ago, a second apart per key, so listings have a
	// well-defined order and nothing is in the future.
	created := time.Now().UTC().Add(-24 * time.Hour).Truncate(time.Millisecond)
	const batch = 2000
	rows := make([]apikey.NewKey, 0, batch)
	flush := func() error {
		if len(rows) == 0 {
			return nil
		}
		if err := store.InsertKeys(ctx, db, rows); err != nil {
			return fmt.Errorf("insert: %w", err)
		}
		rows = rows[:0]
		return nil
	}
	for u := range *users {
		user := fmt.Sprintf("bench-user-%05d", u)
		var last string
		for k := range *keys {
			key := format.Generate()
			id, err := uuid.NewV7()
			if err != nil {
				return err
			}
			name := fmt.Sprintf("key %d", k)
			rows = append(rows, apikey.NewKey{
				APIKey: apikey.APIKey{
					ID:        id.String(),
					UserID:    user,
					KeyPrefix: format.DisplayPrefix(key),
					Name:      &name,
					CreatedAt: created.Add(time.Duration(u**keys+k) * time.Millisecond),
					Scopes:    benchScopes,
				},
				Hash: apikey.Hash(key),
			})
			last = key
			if len(rows) == batch {
				if err := flush(); err != nil {
					return err
				}
			}
		}
		tok, err := auth.MintToken([]byte(jwtSecret), user, 2*time.Hour, "", "")
		if err != nil {
			return err
		}
		fmt.Fprintln(keysOut, last)
		fmt.Fprintln(tokensOut, tok)
	}
	if err := flush(); err != nil {
		return err
	}
	for _, w := range []*output{keysOut, tokensOut} {
		if err := w.Close(); err != nil {
			return err
		}
	}
	if store.IsPostgres(*dsn) {
		// Fresh statistics, as a long-running database would have.
		if _, err := db.ExecContext(ctx, "ANALYZE api_keys"); err != nil {
			return err
		}
	}
	fmt.Printf("seeded %d users x %d keys in %s\n", *users, *keys, time.Since(start).Round(time.Millisecond))
	return nil
}

// output is a buffered file.
type output struct {
	*bufio.Writer
	f *os.File
}

func create(path string) (*output, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, err
	}
	return &output{Writer: bufio.NewWriter(f), f: f}, nil
}

func (o *output) Close() error {
	if err := o.Flush(); err != nil {
		o.f.Close()
		return err
	}
	return o.f.Close()
}

// warmUp verifies each key of the file once against the server at base,
// over 64 connections, and fails unless every key verifies.
func warmUp(ctx context.Context, base, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	keys := strings.Fields(string(b))
	const conns = 64
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: conns},
	}
	work := make(chan string)
	var failed atomic.Int64
	var wg sync.WaitGroup
	for range conns {
		wg.Go(func() {
			for key := range work {
				if err := verify(ctx, client, base, key); err != nil {
					if failed.Add(1) == 1 {
						fmt.Fprintln(os.Stderr, "seed: warm-up:", err)
					}
				}
			}
		})
	}
	start := time.Now()
	for _, k := range keys {
		work <- k
	}
	close(work)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		return fmt.Errorf("warm-up: %d of %d keys did not verify", n, len(keys))
	}
	fmt.Printf("verified %d keys in %s\n", len(keys), time.Since(start).Round(time.Millisecond))
	return nil
}

func verify(ctx context.Context, client *http.Client, base, key string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/auth/verify", nil)
	if err != nil {
		return err
	}
	req.Header.Set("X-Api-Key", key)
	res, err := client.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, res.Body)
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("status %d", res.StatusCode)
	}
	return nil
}
