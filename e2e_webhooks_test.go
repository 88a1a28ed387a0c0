package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
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
)

// testWebhookSecret is a Standard Webhooks secret for the tests.
var testWebhookSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("apikeyd test webhook signing key"))

// receivedHook is one webhook as a receiver verified it.
type receivedHook struct {
	ID   string
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
	key, err := webhook.ParseSecret(testWebhookSecret)
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
	var got receivedHook
	got.ID = id
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
	if n, err := store.New(e.App.DB).QueueDepth(context.Background()); err != nil || n != 0 {
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

func TestWebhooksTwoServersNeverSendOneAttemptTwice(t *testing.T) {
	dsn := dbtest.DSN(t, "postgres")
	r := newHookReceiver(t)
	r.setAnswer(func(w http.ResponseWriter, _ *http.Request) { time.Sleep(5 * time.Millisecond) })
	sharedSecret := func(c *config.Config) { c.JWTSecret = strings.Repeat("s", 40) }
	a := newEnvDSN(t, dsn, webhooksTo(r, 50*time.Millisecond), sharedSecret)
	b := newEnvDSN(t, dsn, webhooksTo(r, 50*time.Millisecond), sharedSecret)
	a.remember(testWebhookSecret)
	b.remember(testWebhookSecret)
	tok := a.token("dave")
	b.remember(tok)
	const keys = 30
	for i := range keys {
		e := a
		if i%2 == 1 {
			e = b
		}
		e.create(tok, nil)
	}
	runWebhooks(t, a)
	runWebhooks(t, b)
	r.waitDelivered(keys)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.attempts) != keys {
		t.Errorf("%d events attempted, want %d", len(r.attempts), keys)
	}
	for id, n := range r.attempts {
		if n != 1 {
			t.Errorf("event %s sent %d times", id, n)
		}
	}
	if r.overlaps != 0 {
		t.Errorf("%d attempts overlapped another of the same event", r.overlaps)
	}
}

// TestWebhookSurvivesKill9 kills the real binary with SIGKILL while a
// delivery is in flight: the restarted server delivers it.
func TestWebhookSurvivesKill9(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "apikeyd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	r := newHookReceiver(t)
	hang := make(chan struct{})
	r.setAnswer(func(w http.ResponseWriter, req *http.Request) {
		select {
		case <-hang:
		case <-req.Context().Done():
		}
	})
	secret := strings.Repeat("k", 40)
	env := append(os.Environ(),
		"ADDR=127.0.0.1:0",
		"DATABASE_URL=file:"+filepath.Join(dir, "apikeyd.db"),
		"JWT_SECRET="+secret,
		"WEBHOOK_URL="+r.URL,
		"WEBHOOK_SECRET="+testWebhookSecret,
		"WEBHOOK_RETRY_SCHEDULE=1s",
	)
	start := func() (*exec.Cmd, string) {
		cmd := exec.Command(bin, "serve")
		cmd.Env = env
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		addr := make(chan string, 1)
		go func() {
			sc := bufio.NewScanner(stderr)
			for sc.Scan() {
				if strings.Contains(sc.Text(), testWebhookSecret) {
					t.Error("WEBHOOK_SECRET appears in the log")
				}
				var line struct {
					Msg  string `json:"msg"`
					Addr string `json:"addr"`
				}
				if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "apikeyd listening" {
					addr <- line.Addr
				}
			}
		}()
		select {
		case a := <-addr:
			return cmd, "http://" + a
		case <-time.After(30 * time.Second):
			cmd.Process.Kill()
			t.Fatal("the server did not start")
		}
		return nil, ""
	}

	first, url := start()
	tok, err := auth.MintToken([]byte(secret), "erin", time.Hour, "", "")
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("POST", url+"/auth/api-keys", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != http.StatusCreated {
		t.Fatalf("create: %v %v", res, err)
	}
	res.Body.Close()
	id := <-r.arrived // the first attempt is in flight
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = first.Wait()
	close(hang)

	second, _ := start()
	defer func() {
		_ = second.Process.Signal(syscall.SIGTERM)
		_ = second.Wait()
	}()
	got := r.waitDelivered(1)
	if got[0].ID != id || got[0].Body.Type != "api_key.created" {
		t.Errorf("delivered %+v, want event %s", got[0], id)
	}
}
