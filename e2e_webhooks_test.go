package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/apikeyd/apikeyd/internal/auth"
	"github.com/apikeyd/apikeyd/internal/config"
	"github.com/apikeyd/apikeyd/internal/dbtest"
	"github.com/apikeyd/apikeyd/internal/store"
	"github.com/apikeyd/apikeyd/internal/webhook"
	"github.com/apikeyd/apikeyd/internal/webhooksecret"
)

// testWebhookSecret is a Standard Webhooks secret for the tests.
var testWebhookSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("apikeyd test webhook signing key"))

// receivedHook is one webhook as a receiver verified it.
type receivedHook struct {
	ID   string
	Raw  []byte // the body as sent
	Body struct {
		Type      string         `json:"type"`
		Timestamp string         `json:"timestamp"`
		Data      map[string]any `json:"data"`
	}
}

// hookReceiver is a webhook endpoint on loopback that verifies every
// signature, answers with answer (200 when nil), and counts attempts and
// attempts in flight per webhook-id.
type hookReceiver struct {
	t   testing.TB
	URL string
	key []byte

	mu        sync.Mutex
	answer    func(w http.ResponseWriter, r *http.Request) // nil: 200
	attempts  map[string]int
	inFlight  map[string]int
	overlaps  int // an attempt that began while another of the same id ran
	delivered []receivedHook
	arrived   chan string // each attempt's id, when it begins
}

func newHookReceiver(t testing.TB) *hookReceiver {
	key, err := webhooksecret.Parse(testWebhookSecret)
	if err != nil {
		t.Fatal(err)
	}
	h := &hookReceiver{t: t, key: key, attempts: map[string]int{}, inFlight: map[string]int{}, arrived: make(chan string, 1000)}
	srv := httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(srv.Close)
	h.URL = srv.URL + "/hooks"
	return h
}

func (h *hookReceiver) serve(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	if r.URL.Path != "/hooks" || r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
		h.t.Errorf("webhook %s %s (%s): want POST /hooks, application/json", r.Method, r.URL.Path, r.Header.Get("Content-Type"))
		w.WriteHeader(http.StatusNotFound)
		return
	}
	id, err := webhook.Verify(h.key, r.Header, body, time.Now())
	if err != nil {
		h.t.Errorf("webhook does not verify: %v", err)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	got := receivedHook{ID: id, Raw: body}
	if err := json.Unmarshal(body, &got.Body); err != nil {
		h.t.Errorf("webhook body %q: %v", body, err)
	}
	h.mu.Lock()
	h.attempts[id]++
	h.inFlight[id]++
	if h.inFlight[id] > 1 {
		h.overlaps++
	}
	answer := h.answer
	h.mu.Unlock()
	h.arrived <- id
	rec := httptest.NewRecorder()
	if answer != nil {
		answer(rec, r)
	}
	h.mu.Lock()
	h.inFlight[id]--
	if rec.Code/100 == 2 && r.Context().Err() == nil { // not when the sender hung up
		h.delivered = append(h.delivered, got)
	}
	h.mu.Unlock()
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
}

// setAnswer replaces how the receiver answers.
func (h *hookReceiver) setAnswer(f func(w http.ResponseWriter, r *http.Request)) {
	h.mu.Lock()
	h.answer = f
	h.mu.Unlock()
}

// waitDelivered waits until n webhooks were accepted and returns them.
func (h *hookReceiver) waitDelivered(n int) []receivedHook {
	h.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		h.mu.Lock()
		got := append([]receivedHook(nil), h.delivered...)
		h.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%d webhooks delivered, want %d", len(got), n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// webhooksTo configures webhooks to r, retrying along schedule.
func webhooksTo(r *hookReceiver, schedule ...time.Duration) func(*config.Config) {
	return func(c *config.Config) {
		c.WebhookURL = mustURL(r.URL)
		c.WebhookKey = r.key
		c.WebhookRetrySchedule = schedule
	}
}

// runWebhooks runs e's dispatcher until the test ends.
func runWebhooks(t testing.TB, e *testEnv) {
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { e.App.Webhooks.Run(ctx) })
	t.Cleanup(func() { stop(); wg.Wait() })
}

func TestWebhooks(t *testing.T) {
	for _, db := range dbtest.Names {
		t.Run(db, func(t *testing.T) {
			r := newHookReceiver(t)
			e := newEnv(t, db, webhooksTo(r, 50*time.Millisecond))
			e.remember(testWebhookSecret)
			runWebhooks(t, e)
			tok := e.token("alice")
			k := e.create(tok, str(`{"name": "hooked"}`))
			if res := e.do("DELETE", "/auth/api-keys/"+k.ID, bearer(tok), nil); res.Status != http.StatusNoContent {
				t.Fatalf("revoke: %d", res.Status)
			}
			got := r.waitDelivered(2)
			events, _ := e.auditPage(tok, "")
			byID := map[string]auditEvent{}
			for _, ev := range events {
				byID[ev.ID] = ev
			}
			for _, hook := range got {
				ev, ok := byID[hook.ID]
				if !ok {
					t.Fatalf("webhook-id %s is no audit event", hook.ID)
				}
				if hook.Body.Type != ev.Action || hook.Body.Timestamp != ev.OccurredAt || hook.Body.Data["id"] != ev.ID || hook.Body.Data["key_id"] != k.ID {
					t.Errorf("webhook %+v does not match event %+v", hook.Body, ev)
				}
				if strings.Contains(hook.Body.Data["key_prefix"].(string), k.Key) {
					t.Error("a webhook holds the key")
				}
			}
			// Deliveries run in parallel: their order is not the events'.
			types := []string{got[0].Body.Type, got[1].Body.Type}
			slices.Sort(types)
			if !slices.Equal(types, []string{"api_key.created", "api_key.revoked"}) {
				t.Errorf("types %v", types)
			}
		})
	}
}

// TestWebhookQueuedBodyIsDelivered: a row that an earlier apikeyd queued
// holds the body itself, not the event; after an upgrade it is still
// delivered, byte for byte.
func TestWebhookQueuedBodyIsDelivered(t *testing.T) {
	for _, db := range dbtest.Names {
		t.Run(db, func(t *testing.T) {
			r := newHookReceiver(t)
			e := newEnv(t, db, webhooksTo(r, 50*time.Millisecond))
			e.remember(testWebhookSecret)
			id, at := "0190a1b2-0000-7000-8000-0000000000aa", time.Now().UTC()
			body := `{"type":"api_key.revoked","timestamp":"2026-11-30T10:00:00.000Z","data":{"id":"` + id +
				`","action":"api_key.revoked","occurred_at":"2026-11-30T10:00:00.000Z","actor":{"type":"user","id":"alice"},` +
				`"key_id":null,"key_prefix":null,"ip":null,"user_agent":null,"details":{}}}`
			_, err := e.App.DB.NewRaw(`INSERT INTO webhook_outbox (event_id, event_type, payload, attempts, next_attempt_at, created_at)
VALUES (?, 'api_key.revoked', ?, 0, ?, ?)`, id, body, at, at).Exec(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			runWebhooks(t, e)
			got := r.waitDelivered(1)
			if got[0].ID != id || string(got[0].Raw) != body {
				t.Errorf("delivered %s %s\nwant %s %s", got[0].ID, got[0].Raw, id, body)
			}
		})
	}
}

func TestWebhookRetriesThenGivesUp(t *testing.T) {
	r := newHookReceiver(t)
	var followed atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { followed.Add(1) }))
	defer other.Close()
	// A redirect is not followed: it is a failed attempt like any non-2xx.
	r.setAnswer(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Location", other.URL)
		w.WriteHeader(http.StatusTemporaryRedirect)
	})
	e := newEnv(t, "sqlite", webhooksTo(r, 10*time.Millisecond, 10*time.Millisecond))
	e.remember(testWebhookSecret)
	runWebhooks(t, e)
	e.create(e.token("bob"), nil)

	deadline := time.Now().Add(30 * time.Second)
	for {
		res := e.do("GET", "/metrics", nil, nil)
		if strings.Contains(string(res.Body), `apikeyd_webhook_deliveries_total{outcome="given_up"} 1`) {
			if !strings.Contains(string(res.Body), `apikeyd_webhook_deliveries_total{outcome="failed"} 2`) {
				t.Errorf("metrics: want 2 failed attempts before giving up")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the webhook was not given up")
		}
		time.Sleep(20 * time.Millisecond)
	}
	r.mu.Lock()
	attempts := maps.Clone(r.attempts)
	r.mu.Unlock()
	if len(attempts) != 1 {
		t.Fatalf("attempts %v", attempts)
	}
	for id, n := range attempts {
		if n != 3 {
			t.Errorf("event %s attempted %d times, want 3 (the first and two retries)", id, n)
		}
	}
	if n := followed.Load(); n != 0 {
		t.Errorf("a redirect was followed %d times", n)
	}
	if n, err := store.New(e.App.DB, store.Config{}).QueueDepth(context.Background()); err != nil || n != 0 {
		t.Errorf("queue depth %d %v after giving up", n, err)
	}
}

func TestWebhookSlowEndpointNeverSlowsRequests(t *testing.T) {
	r := newHookReceiver(t)
	release := make(chan struct{})
	r.setAnswer(func(w http.ResponseWriter, req *http.Request) {
		select {
		case <-release:
		case <-req.Context().Done():
		}
	})
	e := newEnv(t, "sqlite", webhooksTo(r, time.Hour))
	e.remember(testWebhookSecret)
	runWebhooks(t, e)
	tok := e.token("carol")
	e.create(tok, nil)
	<-r.arrived // an attempt is hanging now
	// The API answers while deliveries hang.
	for range 5 {
		e.create(tok, nil)
	}
	if keys := e.list(tok); len(keys) != 6 {
		t.Errorf("%d keys", len(keys))
	}
	close(release)
}

// TestWebhooksTwoServersNeverSendOneAttemptTwice runs two apikeyd processes
// on one PostgreSQL, each with its dispatcher, against a receiver that
// fails every first attempt and counts attempts: each event is attempted
// exactly twice (the failure, then its retry), never by both servers at
// once.
func TestWebhooksTwoServersNeverSendOneAttemptTwice(t *testing.T) {
	dsn := dbtest.DSN(t, "postgres")
	bin := buildServer(t)
	r := newHookReceiver(t)
	var mu sync.Mutex
	seen := map[string]bool{}
	r.setAnswer(func(w http.ResponseWriter, req *http.Request) {
		time.Sleep(5 * time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		if id := req.Header.Get("webhook-id"); !seen[id] {
			seen[id] = true
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	secret := strings.Repeat("s", 40)
	env := []string{
		"DATABASE_URL=" + dsn,
		"JWT_SECRET=" + secret,
		"WEBHOOK_URL=" + r.URL,
		"WEBHOOK_SECRET=" + testWebhookSecret,
		"WEBHOOK_RETRY_SCHEDULE=50ms",
	}
	servers := []serverProcess{startServer(t, bin, env...), startServer(t, bin, env...)}
	tok, err := auth.MintToken([]byte(secret), "dave", time.Hour, "", "")
	if err != nil {
		t.Fatal(err)
	}
	const keys = 30
	for i := range keys {
		servers[i%2].createKey(t, tok)
	}
	r.waitDelivered(keys)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.attempts) != keys {
		t.Errorf("%d events attempted, want %d", len(r.attempts), keys)
	}
	for id, n := range r.attempts {
		if n != 2 {
			t.Errorf("event %s attempted %d times, want 2 (a failure, then one retry)", id, n)
		}
	}
	if r.overlaps != 0 {
		t.Errorf("%d attempts overlapped another of the same event", r.overlaps)
	}
	// Both servers took part: the test proves the locking, not the luck of
	// one server doing all the work.
	total := 0.0
	for i, srv := range servers {
		res, err := http.Get(srv.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		n := parseMetrics(t, body).value("apikeyd_webhook_deliveries_total")
		if n == 0 {
			t.Errorf("server %d attempted no delivery", i)
		}
		total += n
	}
	if total != 2*keys {
		t.Errorf("the servers count %v attempts, want %d", total, 2*keys)
	}
}

// TestWebhookSurvivesKill9 kills the real binary with SIGKILL while a
// delivery is in flight: a server started afterwards on the same database
// delivers it once the attempt's lease has run out. That server runs in
// the test process, so that its clock moves past the lease instead of the
// test waiting for it.
func TestWebhookSurvivesKill9(t *testing.T) {
	dsn := "file:" + filepath.Join(t.TempDir(), "apikeyd.db")
	bin := buildServer(t)
	r := newHookReceiver(t)
	hang := make(chan struct{})
	r.setAnswer(func(w http.ResponseWriter, req *http.Request) {
		select {
		case <-hang:
		case <-req.Context().Done():
		}
	})
	secret := strings.Repeat("k", 40)
	env := []string{
		"DATABASE_URL=" + dsn,
		"JWT_SECRET=" + secret,
		"WEBHOOK_URL=" + r.URL,
		"WEBHOOK_SECRET=" + testWebhookSecret,
		"WEBHOOK_RETRY_SCHEDULE=1s",
	}

	first := startServer(t, bin, env...)
	tok, err := auth.MintToken([]byte(secret), "erin", time.Hour, "", "")
	if err != nil {
		t.Fatal(err)
	}
	first.createKey(t, tok)
	id := <-r.arrived // the first attempt is in flight
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	close(hang)

	e := newEnvDSN(t, dsn, webhooksTo(r, time.Second))
	e.remember(testWebhookSecret)
	var leased time.Time // until when the killed server's attempt holds the event
	err = e.App.DB.NewSelect().Table("webhook_outbox").Column("next_attempt_at").Where("event_id = ?", id).Scan(context.Background(), &leased)
	if err != nil {
		t.Fatalf("the event in flight is not queued: %v", err)
	}
	e.advancePast(leased)
	runWebhooks(t, e)
	got := r.waitDelivered(1)
	if got[0].ID != id || got[0].Body.Type != "api_key.created" {
		t.Errorf("delivered %+v, want event %s", got[0], id)
	}
}

// buildServer builds the apikeyd binary for a test that runs it as a
// process, and returns its path. It builds with scripts/build, as the
// container image does (see TestImage): the processes the tests run are the
// binary that ships, and the build shares Go's cache with the image's
// instead of compiling every package a second way.
func buildServer(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "apikeyd")
	if out, err := exec.Command("./scripts/build", bin).CombinedOutput(); err != nil {
		t.Fatalf("./scripts/build: %v\n%s", err, out)
	}
	return bin
}

// serverProcess is apikeyd running as a process, serving at URL.
type serverProcess struct {
	*exec.Cmd
	URL string
}

// createKey creates a key with the login token tok, failing the test unless
// the server answers 201.
func (p serverProcess) createKey(t testing.TB, tok string) {
	t.Helper()
	req, err := http.NewRequest("POST", p.URL+"/auth/api-keys", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("create on %s: %d", p.URL, res.StatusCode)
	}
}

// startServer runs bin serve on a free loopback port with the environment
// plus env, waits until it listens, and stops it (SIGTERM) when the test
// ends, unless the test killed it first. It fails the test if the secret
// of WEBHOOK_SECRET ever appears in the server's log.
func startServer(t testing.TB, bin string, env ...string) serverProcess {
	t.Helper()
	p, err := launchServer(t, bin, env...)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// launchServer is startServer returning, instead of failing the test, an
// error when the server does not listen: if it exits first, the error
// holds its exit status and what it wrote. It may run on any goroutine.
func launchServer(t testing.TB, bin string, env ...string) (serverProcess, error) {
	cmd := exec.Command(bin, "serve")
	cmd.Env = append(append(os.Environ(), "ADDR=127.0.0.1:0"), env...)
	return launchCommand(t, cmd)
}

// launchCommand is launchServer for an `apikeyd serve` the caller has
// prepared (its environment, user, directory); ADDR must be loopback.
func launchCommand(t testing.TB, cmd *exec.Cmd) (serverProcess, error) {
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return serverProcess{}, err
	}
	if err := cmd.Start(); err != nil {
		return serverProcess{}, err
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_ = cmd.Wait()
		}
	})
	addr := make(chan string, 1)
	exited := make(chan []string, 1) // the log of a server that never listened
	go func() {
		var log []string
		listening := false
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if strings.Contains(sc.Text(), testWebhookSecret) {
				t.Error("WEBHOOK_SECRET appears in the log")
			}
			if listening {
				continue
			}
			log = append(log, sc.Text())
			var line struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "apikeyd listening" {
				listening = true
				addr <- line.Addr
			}
		}
		if !listening {
			exited <- log
		}
	}()
	select {
	case a := <-addr:
		return serverProcess{Cmd: cmd, URL: "http://" + a}, nil
	case log := <-exited:
		err := cmd.Wait()
		return serverProcess{}, fmt.Errorf("the server exited (%v) without listening:\n%s", err, strings.Join(log, "\n"))
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		return serverProcess{}, errors.New("the server did not start within 30s")
	}
}
