package main

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/apikey"
	"github.com/apikeyd/apikeyd/internal/dbtest"
)

// stallingStore is a Store whose listings wait until their request is
// abandoned, then fail as a database driver does when its context ends.
type stallingStore struct {
	apikey.Store
	started chan struct{}
}

func (s stallingStore) ListKeys(ctx context.Context, _ apikey.Owner) ([]apikey.APIKey, error) {
	s.started <- struct{}{}
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestClientHangUpIsNoError: a client that hangs up mid-request interrupts
// what the request was doing; that is no error of the server's, so it is
// logged at INFO, on both faces, never at ERROR.
func TestClientHangUpIsNoError(t *testing.T) {
	started := make(chan struct{}, 1)
	e := newEnvStore(t, dbtest.DSN(t, "sqlite"), func(st apikey.Store) apikey.Store { return stallingStore{st, started} })
	tok := e.token("alice")
	for i, c := range []struct {
		name, method, path, body string
	}{
		{"REST", "GET", "/auth/api-keys", ""},
		{"GraphQL", "POST", "/graphql", `{"query":"{ apiKeys { id } }"}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			req, err := http.NewRequestWithContext(ctx, c.method, e.URL+c.path, strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			done := make(chan error, 1)
			go func() {
				res, err := http.DefaultClient.Do(req) // abandoned: nothing to check against the contract
				if err == nil {
					res.Body.Close()
				}
				done <- err
			}()
			<-started
			cancel()
			if err := <-done; err == nil {
				t.Fatal("the request was answered although the client hung up")
			}
			// The server notices, fails the listing and logs the request.
			deadline := time.Now().Add(10 * time.Second)
			for strings.Count(e.Logs.String(), "client closed the request") < i+1 {
				if time.Now().After(deadline) {
					t.Fatalf("the hang-up was not logged:\n%s", e.Logs.String())
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	for line := range strings.Lines(e.Logs.String()) {
		var rec struct{ Level, Msg string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatal(err)
		}
		if rec.Level == "ERROR" {
			t.Errorf("a hang-up was logged as an error: %s", line)
		}
		if rec.Msg == "client closed the request before it was answered" && rec.Level != "INFO" {
			t.Errorf("hang-up logged at %s: %s", rec.Level, line)
		}
	}
}
