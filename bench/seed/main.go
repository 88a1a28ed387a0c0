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
//	seed -warm http://127.0.0.1:PORT [-keys-file keys.txt] -out DIR
//
// verifies every key of the file once against a running server, so the
// verify run that follows measures cache hits.
//
//	seed -policies http://127.0.0.1:PORT -out DIR
//
// creates, through the server's REST API, three more keys for each user of
// tokens.txt, each with the scopes of the seeded keys and a usage policy,
// and writes one file of keys per policy (see policyKeys).
//
//	seed -orgs http://127.0.0.1:PORT -out DIR
//
// creates, through the server's REST API, an organisation for each user of
// tokens.txt, owned by that user, and two keys alike but for their owner:
// an organisation key and a personal key (see orgKeys), and writes them to
// keys_org.txt and keys_personal.txt, in the users' order.
//
// It is a benchmark tool: never point it at a database that matters.
package main

import (
	"bufio"
	"context"
	"encoding/json"
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
	warm := flag.String("warm", "", "verify every key of -keys-file once against the server at this URL, and do nothing else")
	keysFile := flag.String("keys-file", "keys.txt", "the keys -warm verifies, in -out")
	policies := flag.String("policies", "", "create the keys with usage policies through the server at this URL, and do nothing else")
	orgs := flag.String("orgs", "", "create an organisation per user, with an organisation key and a personal key alike, through the server at this URL, and do nothing else")
	flag.Parse()
	switch {
	case *warm != "":
		return warmUp(ctx, *warm, filepath.Join(*out, *keysFile))
	case *policies != "":
		return createPolicyKeys(ctx, *policies, *out)
	case *orgs != "":
		return createOrgKeys(ctx, *orgs, *out)
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

// policyKeys are the keys createPolicyKeys makes for each user: the file
// they go to, and the create request's body. The limits are never reached
// in a benchmark run, so that every verification is a 200 doing the whole
// work of its policy: a policy without limits checks the address and
// returns meta; a rate-limited key takes a token from its bucket; a
// credited key spends a credit from its balance in the database.
var policyKeys = []struct{ file, body string }{
	{"keys_policy.txt", `{"name":"bench policy","scopes":["orders:read","reports:read"],"allowed_ips":["127.0.0.0/8","::1"],"meta":{"plan":"pro","customer":"bench"}}`},
	{"keys_ratelimit.txt", `{"name":"bench rate limit","scopes":["orders:read","reports:read"],"rate_limit":{"limit":1000000,"period_seconds":1}}`},
	{"keys_credits.txt", `{"name":"bench credits","scopes":["orders:read","reports:read"],"credits":{"remaining":1000000000000}}`},
}

// createPolicyKeys creates the policyKeys of every user of tokens.txt
// through the server at base, and writes each kind's keys to its file in
// dir, in the users' order.
func createPolicyKeys(ctx context.Context, base, dir string) error {
	files := make([]string, len(policyKeys))
	for i, p := range policyKeys {
		files[i] = p.file
	}
	return eachUser(ctx, dir, files, "keys with policies", func(client *http.Client, _ int, tok string) ([]string, error) {
		keys := make([]string, len(policyKeys))
		for i, p := range policyKeys {
			key, err := post(ctx, client, base+"/auth/api-keys", tok, p.body, "key")
			if err != nil {
				return nil, err
			}
			keys[i] = key
		}
		return keys, nil
	})
}

// orgKeyBody is the create request of both keys createOrgKeys makes for a
// user: the seeded keys' scopes, and one name, so that the two differ in
// their owner alone.
const orgKeyBody = `{"name":"bench owner","scopes":["orders:read","reports:read"]}`

// createOrgKeys creates, for every user of tokens.txt, through the server
// at base, an organisation (the user is its owner), an organisation key and
// a personal key, both with orgKeyBody, and writes the keys to
// keys_org.txt and keys_personal.txt in dir, in the users' order.
func createOrgKeys(ctx context.Context, base, dir string) error {
	return eachUser(ctx, dir, []string{"keys_org.txt", "keys_personal.txt"}, "keys of organisations and of their owners", func(client *http.Client, user int, tok string) ([]string, error) {
		org, err := post(ctx, client, base+"/auth/orgs", tok, fmt.Sprintf(`{"name":"bench org %05d"}`, user), "id")
		if err != nil {
			return nil, err
		}
		orgKey, err := post(ctx, client, base+"/auth/orgs/"+org+"/api-keys", tok, orgKeyBody, "key")
		if err != nil {
			return nil, err
		}
		personal, err := post(ctx, client, base+"/auth/api-keys", tok, orgKeyBody, "key")
		if err != nil {
			return nil, err
		}
		return []string{orgKey, personal}, nil
	})
}

// eachUser calls makeKeys for every user of tokens.txt in dir, over 64
// connections, with the user's number and login token; makeKeys returns one key for each
// of files. It writes each file's keys to it in dir, in the users' order,
// once every user has them; what names them in the summary it prints.
func eachUser(ctx context.Context, dir string, files []string, what string, makeKeys func(client *http.Client, user int, tok string) ([]string, error)) error {
	b, err := os.ReadFile(filepath.Join(dir, "tokens.txt"))
	if err != nil {
		return err
	}
	tokens := strings.Fields(string(b))
	made := make([][]string, len(tokens))
	const conns = 64
	client := &http.Client{
		Timeout:   10 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: conns},
	}
	work := make(chan int)
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	for range conns {
		wg.Go(func() {
			for user := range work {
				keys, err := makeKeys(client, user, tokens[user])
				if err == nil && len(keys) != len(files) {
					err = fmt.Errorf("%d keys made for %d files", len(keys), len(files))
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					continue
				}
				made[user] = keys
			}
		})
	}
	start := time.Now()
	for user := range tokens {
		work <- user
	}
	close(work)
	wg.Wait()
	if firstErr != nil {
		return fmt.Errorf("create: %w", firstErr)
	}
	for i, file := range files {
		var out strings.Builder
		for _, keys := range made {
			out.WriteString(keys[i] + "\n")
		}
		if err := os.WriteFile(filepath.Join(dir, file), []byte(out.String()), 0o600); err != nil {
			return err
		}
	}
	fmt.Printf("created %d %s in %s\n", len(files)*len(tokens), what, time.Since(start).Round(time.Millisecond))
	return nil
}

// post sends body to url as the owner of the login token tok, and returns
// the string field of the 201 answer.
func post(ctx context.Context, client *http.Client, url, tok, body, field string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	res, err := client.Do(req)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		msg, _ := io.ReadAll(io.LimitReader(res.Body, 512))
		return "", fmt.Errorf("POST %s: status %d: %s", req.URL.Path, res.StatusCode, msg)
	}
	var created map[string]any
	if err := json.NewDecoder(res.Body).Decode(&created); err != nil {
		return "", fmt.Errorf("POST %s: %w", req.URL.Path, err)
	}
	v, _ := created[field].(string)
	if v == "" {
		return "", fmt.Errorf("POST %s: the answer holds no %q", req.URL.Path, field)
	}
	return v, nil
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
